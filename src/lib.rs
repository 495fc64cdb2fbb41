//! asycamore: an HTTP/1.1 server built from hand-written coroutines over `poll(2)`.
#![deny(missing_docs)]

pub use asycamore_executor as executor;

pub mod detect;
