//! The `io::Error`s the socket API returns, with the kinds Linux would give.
//!
//! One place names every error so that callers can match on
//! [`io::ErrorKind`] exactly as they would on a kernel socket's errno.

use std::io::{Error, ErrorKind};

/// `EAGAIN`: the call would block.
pub(crate) fn would_block() -> Error {
    Error::new(ErrorKind::WouldBlock, "operation would block")
}

/// `EBADF`: no such socket.
pub(crate) fn bad_fd() -> Error {
    Error::new(ErrorKind::InvalidInput, "bad file descriptor")
}

/// `EINVAL` with what was wrong.
pub(crate) fn invalid(what: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, what.to_string())
}

/// `ENOTCONN`.
pub(crate) fn not_connected() -> Error {
    Error::new(ErrorKind::NotConnected, "socket is not connected")
}

/// `EADDRINUSE`.
pub(crate) fn addr_in_use(port: u16) -> Error {
    Error::new(ErrorKind::AddrInUse, format!("port {port} is already in use"))
}

/// `EADDRNOTAVAIL`: no local port or address can be used.
pub(crate) fn addr_not_available(what: &str) -> Error {
    Error::new(ErrorKind::AddrNotAvailable, what.to_string())
}

/// `ECONNREFUSED`: the peer answered the SYN with a reset.
pub(crate) fn refused() -> Error {
    Error::new(ErrorKind::ConnectionRefused, "connection refused")
}

/// `ECONNRESET`.
pub(crate) fn reset() -> Error {
    Error::new(ErrorKind::ConnectionReset, "connection reset by peer")
}

/// `EPIPE`: writing after shutdown or close.
pub(crate) fn broken_pipe() -> Error {
    Error::new(ErrorKind::BrokenPipe, "broken pipe")
}

/// `EOPNOTSUPP` / `EISCONN`-style misuse of a socket in the wrong state.
pub(crate) fn wrong_state(what: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, what.to_string())
}
