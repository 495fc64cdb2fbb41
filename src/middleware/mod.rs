//! Middleware: applications that wrap other applications.
//!
//! - [`router`]: mounts applications by path prefix, as a WSGI dispatcher does.
//! - [`access_log`]: one line per request (Common, Combined or JSON), written off the loop.

pub mod access_log;
pub mod router;

pub use access_log::AccessLog;
pub use router::Router;
