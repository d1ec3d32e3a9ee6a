//! Opening a TAP device: `/dev/net/tun` and the `TUNSETIFF` ioctl.
//!
//! The only module of the crate with `unsafe` code: the ioctl takes a
//! pointer to a C `struct ifreq`, which rustix cannot type for us. The
//! struct is declared here with the kernel's layout (16 bytes of name, then
//! a union of at most 24 bytes whose first member for this call is the
//! `short` flags), and the call passes a pointer to a value we own for its
//! whole duration.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags};
use rustix::ioctl::{ioctl, opcode, Setter};

use crate::netns::TUN_DEVICE;

/// `IFF_TAP`: an Ethernet device (frames, not IP packets).
const IFF_TAP: i16 = 0x0002;
/// `IFF_NO_PI`: no 4-byte packet information header before each frame.
const IFF_NO_PI: i16 = 0x1000;
/// `IFNAMSIZ`.
const IFNAMSIZ: usize = 16;
/// `TUNSETIFF` is `_IOW('T', 202, int)`.
const TUNSETIFF: rustix::ioctl::Opcode = opcode::write::<rustix::ffi::c_int>(b'T', 202);

/// `struct ifreq` as `TUNSETIFF` reads it: the name, the flags, and the
/// rest of the union.
#[repr(C)]
struct IfReq {
    name: [u8; IFNAMSIZ],
    flags: i16,
    _rest: [u8; 22],
}

/// Creates TAP device `name` (without packet information headers) in the
/// calling thread's network namespace and returns its non-blocking
/// descriptor. The device lives while the descriptor is open.
pub(crate) fn open_tap(name: &str) -> io::Result<OwnedFd> {
    if name.is_empty() || name.len() >= IFNAMSIZ || name.contains(['/', ' ', '\0']) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad interface name {name:?}")));
    }
    let fd = rustix::fs::open(TUN_DEVICE, OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty())?;
    let mut req = IfReq { name: [0; IFNAMSIZ], flags: IFF_TAP | IFF_NO_PI, _rest: [0; 22] };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads a `struct ifreq` through the pointer Setter
    // passes; `IfReq` has its layout (40 bytes: a NUL-terminated name of at
    // most 15 bytes, checked above, then the flags), and Setter owns `req`
    // until the call returns, so the pointer is valid for the whole call.
    unsafe { ioctl(&fd, Setter::<TUNSETIFF, IfReq>::new(req)) }?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_has_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
        assert_eq!(std::mem::offset_of!(IfReq, flags), IFNAMSIZ);
        assert_eq!(TUNSETIFF, 0x4004_54ca);
    }

    #[test]
    fn names_that_are_not_interface_names_are_refused_before_any_syscall() {
        for bad in ["", "sixteen-bytes-xx", "a/b", "a b"] {
            assert_eq!(open_tap(bad).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
    }
}
