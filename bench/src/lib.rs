//! asycamore-bench: load and probing tools for asycamore, written as coroutines on its own executor.
//!
//! - [`load`]: the load generator (pipelining, GET/POST mixes, open-loop rates, latency
//!   percentiles from a [`histogram`], every response's framing checked by [`framing`]);
//! - [`pending`]: holds connection attempts beyond the server's accept rate and watches a normal
//!   client's latency meanwhile;
//! - [`idle`]: many idle keep-alive connections, woken together;
//! - [`oneraw`] and [`bulkfetch`]: one raw request, and many URLs fetched at once;
//! - [`compare`]: the side-by-side with hyper, may_minihttp and nginx;
//! - [`profiles`]: what each kind of application costs the server, against hyper;
//! - [`servers`]: building, starting and stopping the servers those two measure.
//!
//! The binary (`asycamore-bench <tool> --help`) is a thin argh front end over these modules.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub mod bulkfetch;
pub mod chart;
pub mod cli;
pub mod compare;
pub mod framing;
pub mod histogram;
pub mod idle;
pub mod load;
pub mod oneraw;
pub mod pending;
pub mod procfs;
pub mod profiles;
pub mod servers;
pub mod sys;
pub mod target;
pub mod ws;
