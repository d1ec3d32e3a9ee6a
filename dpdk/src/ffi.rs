//! Turning DPDK's error conventions into [`Error`]s: calls that return a
//! negative errno, and calls that return NULL or -1 and set `rte_errno`.

#![allow(unsafe_code)]

use std::ffi::CStr;

use dpdk_sys as sys;

use crate::error::{Error, Result};

/// `Ok(ret)` if `ret >= 0`, else the error of `call` with errno `-ret`.
pub(crate) fn check(ret: i32, call: impl FnOnce() -> String) -> Result<i32> {
    if ret >= 0 {
        Ok(ret)
    } else {
        Err(dpdk_error(call(), -ret))
    }
}

/// The error of `call`, with the calling thread's `rte_errno`.
pub(crate) fn errno_error(call: String) -> Error {
    // SAFETY: reads a thread-local int; no arguments.
    let errno = unsafe { sys::dtnet_rte_errno() };
    dpdk_error(call, errno)
}

/// The error of `call` with a positive `errno` and DPDK's text for it.
pub(crate) fn dpdk_error(call: String, errno: i32) -> Error {
    Error::Dpdk { call, errno, message: strerror(errno) }
}

/// DPDK's text for a positive `errno`.
pub(crate) fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror takes any int and returns a pointer to a static or
    // thread-local NUL-terminated string, valid until the next call on this
    // thread; it is copied at once.
    unsafe { CStr::from_ptr(sys::rte_strerror(errno)) }.to_string_lossy().into_owned()
}

/// A NUL-terminated C string field (device or driver names) as text.
pub(crate) fn text(bytes: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = bytes.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}
