//! Middleware: applications that wrap other applications.
//!
//! - [`router`]: mounts applications by path prefix, as a WSGI dispatcher does.
//! - [`access_log`]: one Common Log Format line per request, written off the loop.

pub mod access_log;
pub mod router;

pub use access_log::AccessLog;
pub use router::Router;
