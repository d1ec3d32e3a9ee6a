//! End-to-end tests across dtnet's crates live in `tests/`; this library
//! is empty so that the package can hold them.
