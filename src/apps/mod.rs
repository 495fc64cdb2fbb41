//! Demo applications, each a short tutorial of writing a handler as a step-state machine.
//!
//! - [`hello`]: the smallest handler — answers at once, never waits (the benchmark app).
//! - [`echo`]: streams the request body back as it arrives, with backpressure both ways.
//! - [`upload`]: consumes a body chunk by chunk without holding it, and answers with a summary.
//! - [`sleep`]: waits on a timer (`cx.wait_until`), no thread.
//! - [`health`]: `200 ok`, or `503` once the worker is shutting down.
//! - [`status`]: the worker's counters and the executor's profile as JSON.
//!
//! [`demo`] mounts them all on one [`Router`]: what the `asycamore` binary serves by default.

pub mod echo;
pub mod health;
pub mod hello;
pub mod sleep;
pub mod status;
pub mod upload;

use std::rc::Rc;

pub use echo::Echo;
pub use health::Health;
pub use hello::Hello;
pub use sleep::Sleep;
pub use status::Status;
pub use upload::Upload;

use crate::middleware::Router;
use crate::server::Worker;
use crate::service::App;

/// What the demo applications need from the command line. Shared by every worker thread.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {}

/// The demo router for one worker:
///
/// | path        | application                                   |
/// |-------------|-----------------------------------------------|
/// | `/`         | [`hello`]                                     |
/// | `/echo`     | [`echo`]                                      |
/// | `/upload`   | [`upload`]                                    |
/// | `/sleep`    | [`sleep`] (`?ms=N`)                           |
/// | `/healthz`  | [`health`]                                    |
/// | `/_status`  | [`status`]                                    |
pub fn demo(_options: &DemoOptions, worker: &Worker) -> Rc<dyn App> {
    Rc::new(
        Router::new()
            .exact("/", Hello)
            .mount("/echo", Echo)
            .mount("/upload", Upload)
            .mount("/sleep", Sleep)
            .exact("/healthz", Health::new(Rc::clone(&worker.shutting_down)))
            .exact(
                "/_status",
                Status::new(worker.index, Rc::clone(&worker.stats)),
            ),
    )
}
