//! Software Toeplitz RSS, compatible with DPDK's `rte_softrss`.
//!
//! A NIC spreads flows over receive queues by hashing the flow tuple with a
//! Toeplitz hash under a secret key and indexing a redirection table (RETA)
//! with the low bits of the hash. [`toeplitz::reference`] is the bit-serial
//! definition; [`Toeplitz`] is the table-driven fast path used on the data
//! path, checked against the reference by property tests. Because the hash
//! is linear in its input (XOR of one key window per set input bit), the fast
//! path precomputes, for every input byte position, the XOR for each of the
//! 256 byte values, so hashing costs one table load per input byte.
//! [`RssHashTypes`] chooses which fields of a parsed frame ([`hash_input`])
//! are hashed, and [`RssConf`] ties key, types and [`Reta`] together into the
//! frame-to-queue decision a port makes on receive.

mod conf;
mod input;
mod key;
mod reta;
pub mod toeplitz;

pub use conf::RssConf;
pub use input::{hash_input, HashInput};
pub use key::RssKey;
pub use reta::Reta;
pub use toeplitz::Toeplitz;

bitflags::bitflags! {
    /// Which packet types are hashed and over which fields (like `RTE_ETH_RSS_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct RssHashTypes: u32 {
        /// IPv4 packets (other than TCP/UDP when those are enabled) by addresses.
        const IPV4 = 1 << 0;
        /// IPv4 TCP by addresses and ports.
        const IPV4_TCP = 1 << 1;
        /// IPv4 UDP by addresses and ports.
        const IPV4_UDP = 1 << 2;
        /// IPv6 packets by addresses.
        const IPV6 = 1 << 3;
        /// IPv6 TCP by addresses and ports.
        const IPV6_TCP = 1 << 4;
        /// IPv6 UDP by addresses and ports.
        const IPV6_UDP = 1 << 5;
    }
}
