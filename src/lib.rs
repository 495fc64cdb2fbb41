//! asycamore: an HTTP/1.1 server built from hand-written coroutines over `poll(2)`.
//!
//! The crate is laid out as the request flows:
//!
//! - [`detect`]: where HTTP messages begin and end (head, Content-Length and chunked bodies);
//! - [`response`]: status lines, headers, `Date`, chunked framing, written into a buffer;
//! - [`conn`]: the connection coroutine (keep-alive, pipelining, timeouts, errors);
//! - [`service`]: the service model, our WSGI — [`service::App`], [`service::Handler`],
//!   [`service::Environ`], [`service::Exchange`];
//! - [`apps`] and [`middleware`]: demo applications and the router;
//! - [`pool`]: a bounded thread pool for the blocking work a handler must not do on the loop;
//! - [`server`]: binds, accepts and runs it all on an executor ([`executor`]);
//! - operating it: [`signal`] (signals as events), [`restart`] (a new process on the same
//!   listeners), [`bind`] (what `--bind` accepts), [`pid_file`], [`stats`], and [`units`] (sizes
//!   and durations on the command line);
//! - [`ws`]: WebSocket (RFC 6455) without I/O: handshake checks, frame and message codecs.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

/// The executor (the `asycamore-executor` package, whose library is named `executor` so that
/// compiler messages name its types by this path: `asycamore::executor::Step`).
pub use ::executor;

pub mod apps;
pub mod bind;
pub mod buffer;
pub mod config;
pub mod conn;
pub mod crc32;
pub mod detect;
pub mod json;
pub mod middleware;
pub mod pid_file;
pub mod pool;
pub mod response;
pub mod restart;
pub mod serve;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod signal;
pub mod socket_file;
pub mod stats;
mod sys;
pub mod units;
pub mod ws;

pub use serve::serve;
