//! Demo applications, each a short tutorial of writing a handler as a step-state machine.
//!
//! - [`hello`]: the smallest handler — answers at once, never waits (the benchmark app).
//! - [`echo`]: streams the request body back as it arrives, with backpressure both ways.
//! - [`upload`]: consumes a body chunk by chunk without holding it, and answers with a summary.
//! - [`sleep`]: waits on a timer (`cx.wait_until`), no thread.
//! - [`bytes`]: bytes out in pieces of a chosen size, or a body read and dropped (the profiles
//!   benchmark's app).
//! - [`blocking`]: hands blocking work to the [thread pool](crate::pool) and waits for its wake.
//! - [`files`]: streams files from a folder a piece at a time (ranges, conditional requests).
//! - [`proxy`]: a reverse proxy on a non-blocking outgoing socket the handler waits on itself.
//! - [`kv`]: an in-memory key-value store that every worker shares (`Arc<Mutex<_>>`).
//! - [`health`]: `200 ok`, or `503` once the worker is shutting down.
//! - [`status`]: the server's counters and the executor's profile as JSON.
//! - [`metrics`]: the same counters, and a request-duration histogram, for Prometheus.
//!
//! [`demo`] mounts them all on one [`Router`]: what the `asycamore` binary serves by default.

pub mod blocking;
pub mod bytes;
pub mod connect;
pub mod echo;
pub mod files;
pub mod health;
pub mod hello;
pub mod kv;
pub mod metrics;
pub mod proxy;
pub mod sleep;
pub mod status;
pub mod upload;
pub mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

pub use blocking::Blocking;
pub use bytes::Bytes;
pub use connect::ConnectProxy;
pub use echo::Echo;
pub use files::Files;
pub use health::Health;
pub use hello::Hello;
pub use kv::Kv;
pub use metrics::Metrics;
pub use proxy::Proxy;
pub use sleep::Sleep;
pub use status::Status;
pub use upload::Upload;
pub use ws::WsEcho;

use crate::middleware::Router;
use crate::pool::ThreadPool;
use crate::server::Worker;
use crate::service::App;

/// What the demo applications need from the command line. Shared by every worker thread.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The folder `/files/` serves.
    pub root: PathBuf,
    /// Whether `/files/` lists directories that have no `index.html`.
    pub list_dirs: bool,
    /// Whether `/files/` sends bodies with `sendfile(2)` (`--no-sendfile` turns it off).
    pub sendfile: bool,
    /// Where `/proxy/` forwards to; without one it answers 503.
    pub upstream: Option<SocketAddr>,
    /// How long the upstream may stay silent before `/proxy/` gives up (504).
    pub upstream_timeout: Duration,
    /// The pool `/blocking` runs its work on (one for the whole server).
    pub pool: Arc<ThreadPool>,
    /// The store `/kv/` serves (one for the whole server).
    pub kv: kv::Store,
    /// The largest message `/ws` echoes (`--ws-max-message`).
    pub ws_max_message: u64,
    /// The destinations `CONNECT` may tunnel to (`--allow-connect`), as written and resolved;
    /// empty: every CONNECT is a 405.
    pub allow_connect: Vec<(String, SocketAddr)>,
}

impl DemoOptions {
    /// Options with the given pool and everything else at its default: files from the current
    /// folder, no listings, no upstream.
    pub fn new(pool: Arc<ThreadPool>) -> DemoOptions {
        DemoOptions {
            root: PathBuf::from("."),
            list_dirs: false,
            sendfile: true,
            upstream: None,
            upstream_timeout: proxy::TIMEOUT,
            pool,
            kv: kv::Store::default(),
            ws_max_message: crate::ws::MAX_MESSAGE,
            allow_connect: Vec::new(),
        }
    }
}

/// The demo router for one worker:
///
/// | path        | application                                   |
/// |-------------|-----------------------------------------------|
/// | `/`         | [`hello`]                                     |
/// | `/echo`     | [`echo`]                                      |
/// | `/upload`   | [`upload`]                                    |
/// | `/files/`   | [`files`] from `root`                         |
/// | `/proxy/`   | [`proxy`] to `upstream`                       |
/// | `/sleep`    | [`sleep`] (`?ms=N`)                           |
/// | `/blocking` | [`blocking`] (`?ms=N`)                        |
/// | `/bytes`    | [`bytes`] (`?n=N&write=W`, or a body to drop) |
/// | `/kv/`      | [`kv`], one store shared by every worker      |
/// | `/ws`       | [`ws`], a WebSocket echo                      |
/// | `/healthz`  | [`health`]                                    |
/// | `/_status`  | [`status`]                                    |
/// | `/metrics`  | [`metrics`]                                   |
///
/// and `CONNECT` to the destinations of `allow_connect` ([`connect`]), if there are any.
pub fn demo(options: &DemoOptions, worker: &Worker) -> Rc<dyn App> {
    let router = if options.allow_connect.is_empty() {
        Router::new()
    } else {
        Router::new().connect(ConnectProxy::new(options.allow_connect.clone()))
    };
    Rc::new(
        router
            .exact("/", Hello)
            .mount("/echo", Echo)
            .mount("/upload", Upload)
            .mount(
                "/files",
                Files::new(&options.root, options.list_dirs).with_sendfile(options.sendfile),
            )
            .mount(
                "/proxy",
                Proxy::new(options.upstream, options.upstream_timeout),
            )
            .mount("/sleep", Sleep)
            .mount("/blocking", Blocking::new(Arc::clone(&options.pool)))
            .mount("/bytes", Bytes)
            .mount("/kv", Kv::new(Arc::clone(&options.kv)))
            .exact("/ws", WsEcho::new(options.ws_max_message))
            .exact("/healthz", Health::new(Rc::clone(&worker.shutting_down)))
            .exact(
                "/_status",
                Status::new(
                    worker.index,
                    Rc::clone(&worker.stats),
                    Arc::clone(&worker.board),
                ),
            )
            .exact(
                "/metrics",
                Metrics::new(
                    worker.index,
                    Rc::clone(&worker.stats),
                    Arc::clone(&worker.board),
                ),
            ),
    )
}
