//! Demo applications, each a short tutorial of writing a handler as a step-state machine.
//!
//! - [`hello`]: the smallest handler — answers at once, never waits (the benchmark app).
//! - [`echo`]: streams the request body back as it arrives, with backpressure both ways.
//! - [`upload`]: consumes a body chunk by chunk without holding it, and answers with a summary.

pub mod echo;
pub mod hello;
pub mod upload;

pub use echo::Echo;
pub use hello::Hello;
pub use upload::Upload;
