//! Middleware: applications that wrap other applications.
//!
//! - [`router`]: mounts applications by path prefix, as a WSGI dispatcher does.
//! - [`methods`]: one resource, a handler per method, with 405 and 501 answered for it.
//! - [`access_log`]: one line per request (Common, Combined or JSON), written off the loop.

pub mod access_log;
pub mod methods;
pub mod router;

pub use access_log::AccessLog;
pub use methods::Methods;
pub use router::Router;
