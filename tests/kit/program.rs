use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use asycamore::executor::{Cx, Step, ready};
use asycamore::middleware::{Methods, Router};
use asycamore::pool::{Pending, ThreadPool};
use asycamore::server::ServerOptions;
use asycamore::service::{App, Environ, Exchange, Handler, Reply, Timer, from_fn};

/// Waits 100 ms, then looks the key up on the pool; each state carries what it needs.
enum SlowLookup {
    Start(Arc<ThreadPool>, String),           // nothing done yet
    Sleeping(Timer, Arc<ThreadPool>, String), // waiting for the timer
    Looking(Pending<String>),                 // waiting for the pool thread
}

impl Handler for SlowLookup {
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            *self = match self {
                SlowLookup::Start(pool, key) => {
                    let timer = Timer::after(Duration::from_millis(100), cx);
                    SlowLookup::Sleeping(timer, Arc::clone(pool), std::mem::take(key))
                }
                SlowLookup::Sleeping(timer, pool, key) => {
                    ready!(timer.poll(cx));
                    let key = std::mem::take(key);
                    SlowLookup::Looking(pool.call(move || format!("value of {key}\n"), cx))
                }
                SlowLookup::Looking(pending) => {
                    match ready!(pending.poll(cx)) {
                        Ok(value) => ex.respond(200, &[], value.as_bytes()),
                        Err(e) => ex.fail(e.status(), &e.to_string()),
                    }
                    return Step::Ready(());
                }
            };
        }
    }
}

/// The key-value store every worker shares.
type Store = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// A PUT: reads the body (up to 1 MiB) over as many resumes as it takes, then stores it.
struct Put {
    store: Store,
    key: String,
    value: Vec<u8>,
}

impl Handler for Put {
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
        match ex.read_to_end(cx, &mut self.value, 1 << 20) {
            Ok(Step::WouldBlock) => return Step::WouldBlock,
            Ok(Step::Ready(())) => {
                let value = std::mem::take(&mut self.value);
                lock(&self.store).insert(self.key.clone(), value);
                ex.respond(204, &[], b"");
            }
            Err(e) => ex.fail(e.status(), &e.to_string()),
        }
        Step::Ready(())
    }
}

fn lock(store: &Store) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>> {
    store.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The key in `/kv/KEY`: the path below the mount point.
fn key(env: &Environ<'_>) -> String {
    env.path_info().trim_start_matches('/').to_owned()
}

/// GET, PUT and DELETE on `/kv/KEY`; other methods get 405 with `Allow`.
fn kv(store: Store) -> Methods {
    let (get, put, delete) = (Arc::clone(&store), Arc::clone(&store), store);
    Methods::new()
        .get(
            move |env: &mut Environ<'_>| match lock(&get).get(&key(env)) {
                Some(value) => Reply::new(200, value.clone()).boxed(),
                None => Reply::text(404, "no such key\n").boxed(),
            },
        )
        .put(move |env: &mut Environ<'_>| {
            let key = key(env);
            Box::new(Put {
                store: Arc::clone(&put),
                key,
                value: Vec::new(),
            })
        })
        .delete(
            move |env: &mut Environ<'_>| match lock(&delete).remove(&key(env)) {
                Some(_) => Reply::new(204, &b""[..]).boxed(),
                None => Reply::text(404, "no such key\n").boxed(),
            },
        )
}

/// Three routes; called once per worker, with what the workers share.
fn app(pool: &Arc<ThreadPool>, store: &Store) -> Rc<dyn App> {
    let pool = Arc::clone(pool);
    let lookup = move |env: &mut Environ<'_>| -> Box<dyn Handler> {
        let key = env.query_value("key").unwrap_or_default().into_owned();
        Box::new(SlowLookup::Start(Arc::clone(&pool), key))
    };
    Rc::new(
        Router::new()
            .exact(
                "/",
                from_fn(|_: &mut Environ<'_>| Reply::text(200, "hello\n").boxed()),
            )
            .exact("/lookup", from_fn(lookup))
            .mount("/kv", kv(Arc::clone(store))),
    )
}

fn main() -> std::io::Result<()> {
    let pool = Arc::new(ThreadPool::new(4, 64)?);
    let store = Store::default();
    let options = ServerOptions::new(([127, 0, 0, 1], 8080).into());
    // Until SIGTERM or Ctrl-C, then in-flight requests finish.
    asycamore::serve(options, move |_worker| app(&pool, &store))?;
    Ok(())
}
