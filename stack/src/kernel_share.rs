//! Flow bifurcation: the Linux kernel's share of the NIC.
//!
//! gazelle's `flow_bifurcation` hands what lstack does not serve to the
//! kernel through a virtio-user port, a TAP device the kernel sees with the
//! host's own MAC and addresses, so that one NIC serves both lstack's
//! sockets and the kernel's (an sshd, a monitoring agent) and the host
//! stays reachable the ordinary way. A group given a [`KernelShare`] does
//! the same. A TCP or UDP frame whose destination port none of the group's
//! sockets holds (bound, listening or connected from it, see the port
//! table) goes to the kernel instead of the stacks, as gazelle checks its
//! port map; a neighbour message goes to the stacks and a copy to the
//! kernel, which resolves its own peers; everything else (ICMP, fragments,
//! other protocols) stays with the stacks. What the kernel sends out of its
//! TAP leaves through the NIC queue of whichever stack polls next.
//!
//! The kernel's end is any [`Wire`] seen from the NIC side (kernel-peer's
//! TAP wire in practice): `put_rx` hands it frames, `take_tx` returns the
//! frames it sent. Its lock is only tried on the way out, so a stack never
//! waits for another to finish with the kernel there.

use std::sync::{Mutex, PoisonError, TryLockError};

use ethdev::packet::PacketMeta;
use ethdev::proto::{PROTO_TCP, PROTO_UDP};
use ethdev::{Mbuf, Wire};

use crate::ports::{PortTable, Proto};

/// Frames taken from the kernel per poll at most.
const KERNEL_BURST: usize = 32;

/// Who a received frame is for, with a kernel sharing the NIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Share {
    /// The stacks alone.
    Stacks,
    /// The kernel alone: a TCP or UDP port none of the group's sockets holds.
    Kernel,
    /// The stacks, and a copy to the kernel (a neighbour message).
    Both,
}

/// The kernel's end of a NIC shared with it (see the module doc).
pub(crate) struct KernelShare {
    kernel: Mutex<Kernel>,
}

/// The kernel's wire, and a burst kept for handing it frames.
struct Kernel {
    wire: Box<dyn Wire>,
    burst: Vec<Mbuf>,
}

impl KernelShare {
    /// Shares the NIC with the kernel behind `wire`.
    pub(crate) fn new(wire: Box<dyn Wire>) -> KernelShare {
        KernelShare { kernel: Mutex::new(Kernel { wire, burst: Vec::new() }) }
    }

    /// Who a frame described by `meta` is for, given the group's `ports`;
    /// `neighbour` says whether it is a neighbour message.
    pub(crate) fn share(meta: &PacketMeta, neighbour: bool, ports: &PortTable) -> Share {
        if neighbour {
            return Share::Both;
        }
        let proto = match meta.ip_proto {
            Some(PROTO_TCP) => Proto::Tcp,
            Some(PROTO_UDP) => Proto::Udp,
            _ => return Share::Stacks,
        };
        match meta.ports {
            Some((_, dst)) if !ports.in_use(proto, dst) => Share::Kernel,
            _ => Share::Stacks,
        }
    }

    /// Hands `frame` to the kernel (its wire counts what it cannot take).
    pub(crate) fn deliver(&self, frame: Mbuf) {
        let mut kernel = self.kernel.lock().unwrap_or_else(PoisonError::into_inner);
        let Kernel { wire, burst } = &mut *kernel;
        burst.push(frame);
        wire.put_rx(burst);
    }

    /// Appends the frames the kernel sent to `out`, unless another stack
    /// is at its wire right now; returns how many.
    pub(crate) fn take(&self, out: &mut Vec<Mbuf>) -> usize {
        match self.kernel.try_lock() {
            Ok(mut kernel) => kernel.wire.take_tx(out, KERNEL_BURST),
            Err(TryLockError::Poisoned(p)) => p.into_inner().wire.take_tx(out, KERNEL_BURST),
            Err(TryLockError::WouldBlock) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use ethdev::frame::FrameSpec;
    use ethdev::packet::IpAddrs;

    use super::*;

    const IPS: IpAddrs = IpAddrs::V4 { src: [10, 0, 0, 2], dst: [10, 0, 0, 1] };

    fn share(frame: &FrameSpec, neighbour: bool, ports: &PortTable) -> Share {
        let meta = PacketMeta::parse(&frame.build(b"x")).unwrap();
        KernelShare::share(&meta, neighbour, ports)
    }

    /// TCP and UDP go to the kernel exactly when no socket of the group
    /// holds their destination port (per protocol); neighbour messages go
    /// to both; other IP traffic stays with the stacks.
    #[test]
    fn the_kernel_gets_the_ports_no_socket_holds() {
        let mut ports = PortTable::default();
        ports.bind(Proto::Tcp, 7000, false).unwrap();
        ports.bind(Proto::Udp, 53, false).unwrap();
        let tcp = |dport| FrameSpec::tcp(IPS, 40000, dport);
        let udp = |dport| FrameSpec::udp(IPS, 40000, dport);
        assert_eq!(share(&tcp(7000), false, &ports), Share::Stacks);
        assert_eq!(share(&tcp(22), false, &ports), Share::Kernel);
        assert_eq!(share(&tcp(53), false, &ports), Share::Kernel, "UDP's port 53 is not TCP's");
        assert_eq!(share(&udp(53), false, &ports), Share::Stacks);
        assert_eq!(share(&udp(7000), false, &ports), Share::Kernel);
        assert_eq!(share(&tcp(7000), true, &ports), Share::Both, "a neighbour message goes to both");
        let mut icmp = PacketMeta::parse(&tcp(22).build(b"x")).unwrap();
        (icmp.ip_proto, icmp.ports) = (Some(ethdev::proto::PROTO_ICMP), None);
        assert_eq!(KernelShare::share(&icmp, false, &ports), Share::Stacks);
        ports.release(Proto::Tcp, 7000);
        assert_eq!(share(&tcp(7000), false, &ports), Share::Kernel, "a released port is the kernel's again");
    }
}
