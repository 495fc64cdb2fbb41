//! Middleware: applications that wrap other applications.
//!
//! - [`router`]: mounts applications by path prefix, as a WSGI dispatcher does.

pub mod router;

pub use router::Router;
