//! `kv`: an in-memory key-value store at `/kv/KEY`, one store for the whole server.
//!
//! A tutorial of state across workers. Each worker thread makes its own applications (see
//! [`App`]), so a store kept in an app's `RefCell` would be one store *per worker*: a value
//! written through one worker would be missing, or stale, through another. This store is made
//! once, before the workers start, as an `Arc<Mutex<_>>`, and every worker's `Kv` holds a clone
//! of the `Arc`. The lock is held only to copy a value in or out — never across a wait — so it
//! never blocks a loop for longer than a copy.
//!
//! - `GET /kv/KEY`: the value (200), or 404; `GET /kv/` lists the keys, one per line;
//! - `PUT /kv/KEY`: stores the body, read as it streams in up to [`MAX_VALUE`] bytes (larger is
//!   413): 201 for a new key, 204 for a replaced one;
//! - `DELETE /kv/KEY`: 204, or 404.
//!
//! ```
//! use std::rc::Rc;
//! use asycamore::apps::kv::{Kv, Store};
//! use asycamore::middleware::Router;
//! use asycamore::server::Worker;
//! use asycamore::service::App;
//!
//! // Once, before the workers start: the one store they share.
//! let store = Store::default();
//! // Each worker's apps (`make_app` runs once per worker) hold a clone of the `Arc`.
//! let make_app = move |_: &Worker| -> Rc<dyn App> {
//!     Rc::new(Router::new().mount("/kv", Kv::new(Store::clone(&store))))
//! };
//! # let _ = make_app;
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use executor::{Cx, Step};

use crate::service::{App, Environ, Exchange, Handler, Method, Reply};

/// The largest value `PUT` stores.
pub const MAX_VALUE: usize = 1 << 20;

/// The store every worker shares.
pub type Store = Arc<Mutex<BTreeMap<String, Vec<u8>>>>;

/// The `kv` application: one worker's handle on the shared [`Store`].
#[derive(Debug, Clone)]
pub struct Kv {
    store: Store,
}

impl Kv {
    /// Serves `store` (clone one `Store` into every worker's `Kv`).
    pub fn new(store: Store) -> Kv {
        Kv { store }
    }
}

/// The handler of a `PUT`: collecting the body, then storing it.
#[derive(Debug)]
pub struct PutHandler {
    store: Store,
    key: String,
    value: Vec<u8>,
}

impl App for Kv {
    fn methods(&self) -> Option<&[Method]> {
        Some(&[Method::Get, Method::Head, Method::Put, Method::Delete])
    }

    fn handler(&self, environ: &mut Environ<'_>) -> Box<dyn Handler> {
        let key = environ.path_info().trim_start_matches('/').to_owned();
        let store = || self.store.lock().unwrap_or_else(PoisonError::into_inner);
        match (environ.request_method(), key.is_empty()) {
            ("GET" | "HEAD", true) => {
                let keys: String = store().keys().map(|k| format!("{k}\n")).collect();
                Reply::text(200, keys).boxed()
            }
            ("GET" | "HEAD", false) => match store().get(&key) {
                Some(value) => Reply::new(200, value.clone())
                    .header("Content-Type", "application/octet-stream")
                    .boxed(),
                None => Reply::text(404, "no such key\n").boxed(),
            },
            (_, true) => Reply::text(400, "a key is needed: /kv/KEY\n").boxed(),
            ("PUT", false) => Box::new(PutHandler {
                store: Arc::clone(&self.store),
                key,
                value: Vec::new(),
            }),
            (_, false) => match store().remove(&key) {
                Some(_) => Reply::new(204, &b""[..]).boxed(),
                None => Reply::text(404, "no such key\n").boxed(),
            },
        }
    }
}

impl Handler for PutHandler {
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
        match ex.read_to_end(cx, &mut self.value, MAX_VALUE) {
            Ok(Step::WouldBlock) => Step::WouldBlock,
            Ok(Step::Ready(())) => {
                let value = std::mem::take(&mut self.value);
                let key = std::mem::take(&mut self.key);
                let old = self
                    .store
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(key, value);
                match old {
                    None => ex.respond(201, &[], b""),
                    Some(_) => ex.respond(204, &[], b""),
                }
                Step::Ready(())
            }
            Err(e) => {
                ex.fail(e.status(), &e.to_string());
                Step::Ready(())
            }
        }
    }

    fn kind(&self) -> &'static str {
        "kv"
    }
}
