//! The service model, our WSGI: an application is a step-state machine too.
//!
//! An [`App`] makes one [`Handler`] per request. The connection resumes the handler exactly as the
//! executor resumes a task — `Ready(())` when it is done, `WouldBlock` when it waits — and hands it
//! an [`Exchange`] on every resume: the request's [`Environ`] (PEP 3333's `environ`), its body as
//! events (`wsgi.input`), and the response (`start_response` and the body writes).
//!
//! | WSGI / the seed projects            | asycamore                                              |
//! |-------------------------------------|--------------------------------------------------------|
//! | `app(environ, start_response)`      | [`App::handler`] gets the [`Environ`], returns a [`Handler`] |
//! | iterating the returned body         | resuming the handler until it returns `Ready(())`     |
//! | `wsgi.input.read()`                 | [`Exchange::read_to_end`]: the whole body, up to a limit, over as many resumes as it takes (the usual way); [`Exchange::read_body`] for its events one by one: chunk start, data, end (with trailers) |
//! | `wsgi.input_sentinel` ("no bytes yet, come back") | `read_body` returns `WouldBlock`; the handler returns `WouldBlock` and is resumed when bytes arrive |
//! | `start_response(status, headers)`   | [`Exchange::start_response`]                           |
//! | yielding body strings               | [`Exchange::write`] (says `WouldBlock` while the peer is slow) |
//! | the Web-SIG "fdevent" proposal      | `cx.wait_readable(fd)`, `cx.wait_until(deadline)`, `cx.waker()` on the handler's own fds |
//!
//! Framing is the server's job: the handler never writes `Transfer-Encoding` or chunk sizes.
//!
//! ```
//! use asycamore::executor::{Cx, Step};
//! use asycamore::service::{App, Environ, Exchange, Handler};
//!
//! /// Answers every request with a fixed greeting.
//! struct Greeting;
//!
//! impl Handler for Greeting {
//!     fn resume(&mut self, ex: &mut Exchange<'_>, _cx: &mut Cx<'_>) -> Step<()> {
//!         ex.respond(200, &[("Content-Type", "text/plain")], b"hi\n");
//!         Step::Ready(())
//!     }
//! }
//!
//! struct GreetingApp;
//!
//! impl App for GreetingApp {
//!     fn handler(&self, _environ: &mut Environ<'_>) -> Box<dyn Handler> {
//!         Box::new(Greeting) // a unit struct: boxing it does not allocate
//!     }
//! }
//! ```
//!
//! ## Composing waits, and a three-route app
//!
//! Waits nest: a handler keeps a [`Timer`], a pool call's [`Pending`](crate::pool::Pending) or
//! [`Exchange::write_all`]'s count in one of its states and polls it, as a generator delegates with
//! `yield from`; [`ready!`](crate::executor::ready) is that `yield from` as one expression (the
//! value, or pass the inner `WouldBlock` up). A "slow lookup" — wait 100 ms, then do blocking work
//! on the pool — is one enum and one `match`, 29 lines:
//!
//! ```
//! use std::rc::Rc;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use asycamore::executor::{Cx, Step, ready};
//! use asycamore::middleware::{Methods, Router};
//! use asycamore::pool::{Pending, ThreadPool};
//! use asycamore::service::{App, Environ, Exchange, Handler, Reply, Timer, from_fn};
//!
//! enum SlowLookup {
//!     Start(Arc<ThreadPool>, String),           // nothing done yet
//!     Sleeping(Timer, Arc<ThreadPool>, String), // waiting for the timer
//!     Looking(Pending<String>),                 // waiting for the pool thread
//! }
//!
//! impl Handler for SlowLookup {
//!     fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
//!         loop {
//!             *self = match self {
//!                 SlowLookup::Start(pool, key) => {
//!                     let timer = Timer::after(Duration::from_millis(100), cx);
//!                     SlowLookup::Sleeping(timer, Arc::clone(pool), std::mem::take(key))
//!                 }
//!                 SlowLookup::Sleeping(timer, pool, key) => {
//!                     ready!(timer.poll(cx));
//!                     let key = std::mem::take(key);
//!                     SlowLookup::Looking(pool.call(move || format!("value of {key}\n"), cx))
//!                 }
//!                 SlowLookup::Looking(pending) => {
//!                     match ready!(pending.poll(cx)) {
//!                         Ok(value) => ex.respond(200, &[], value.as_bytes()),
//!                         Err(e) => ex.fail(e.status(), &e.to_string()),
//!                     }
//!                     return Step::Ready(());
//!                 }
//!             };
//!         }
//!     }
//! }
//!
//! /// Three routes: a greeting, the slow lookup, and a resource with a handler per method.
//! fn app(pool: Arc<ThreadPool>) -> Rc<dyn App> {
//!     let lookup = move |env: &mut Environ<'_>| -> Box<dyn Handler> {
//!         let key = env.query_value("key").unwrap_or_default().into_owned();
//!         Box::new(SlowLookup::Start(Arc::clone(&pool), key))
//!     };
//!     Rc::new(
//!         Router::new()
//!             .exact("/", from_fn(|_: &mut Environ<'_>| Reply::text(200, "hello\n").boxed()))
//!             .exact("/lookup", from_fn(lookup))
//!             .mount(
//!                 "/things",
//!                 Methods::new()
//!                     .get(|env: &mut Environ<'_>| Reply::text(200, env.path_info().into_owned()).boxed())
//!                     .delete(|_: &mut Environ<'_>| Reply::new(204, &b""[..]).boxed()),
//!             ),
//!     )
//! }
//! # let pool = Arc::new(ThreadPool::new(1, 4).unwrap());
//! # let _ = app(pool);
//! ```
//!
//! Each worker calls `app` once (the pool, made before the server runs, is shared by all of them);
//! [`crate::serve()`] runs it from a `main` of your own.

mod environ;
pub(crate) mod error;
mod exchange;
pub mod method;
pub mod rejected;
pub mod reply;
pub mod timer;
pub mod upgrade;

pub use environ::{Environ, Peer, percent_decode};
pub use error::{InputError, OutputError, UpgradeError};
pub use exchange::Exchange;
pub use method::Method;
pub use rejected::Rejected;
pub use reply::{FnApp, Reply, from_fn};
pub use timer::Timer;
pub use upgrade::{Tunnel, Upgraded};

use executor::{Cx, Step};

/// An application: makes a handler for each request.
///
/// **One `App` per worker.** The server calls its `make_app` once in each worker thread
/// (`--workers`, one per core by default), and that value serves every connection of its worker,
/// so it takes `&self`. State kept in the app — a `Cell`, a `RefCell`, an `Rc` — is therefore
/// *per worker*: with two workers, two stores, and a client sees one or the other depending on
/// which worker the kernel gave its connection. State that all workers must see lives outside
/// the apps, made once before the server runs and cloned into each: an `Arc<Mutex<_>>` (or an
/// `Arc` of atomics), or a thread of its own that the workers send work to (the [`crate::pool`]).
///
/// **Handlers are `'static`.** A handler outlives the call that made it (it is resumed later,
/// across turns of the loop), so it cannot borrow from `&self` or from the environ: the
/// compiler's "borrowed data escapes" or "lifetime may not live long enough" errors mean this.
/// Copy what it needs out of the environ, and give it an `Rc` (or `Arc`) clone of the app's
/// state rather than a reference.
pub trait App {
    /// Makes the handler for one request. The environ may be changed (a router moves a mounted
    /// prefix from `PATH_INFO` to `SCRIPT_NAME` with [`Environ::mount`]) before it is passed on.
    ///
    /// The handler is `'static` (see the trait's documentation): state of the app it needs goes
    /// in as an `Rc` clone, values from the request as owned copies.
    fn handler(&self, environ: &mut Environ<'_>) -> Box<dyn Handler>;

    /// The methods this application implements, or `None` (the default) if it takes every
    /// method and answers for itself. A [`Router`](crate::middleware::Router) answers the rest
    /// for it (RFC 9110 §9, see [`method`]): `OPTIONS` with `Allow`, a known method it does not
    /// list with 405 and `Allow`, a method the server does not recognize with 501.
    fn methods(&self) -> Option<&[Method]> {
        None
    }

    /// Told of a request the connection answered itself before any handler was made for it (a
    /// rejected or timed-out head, or a panic in [`App::handler`]): the access log logs it. Does
    /// nothing by default; middleware that wraps one application passes it on (`AccessLog`
    /// does; a `Router` does not: such a request has no path to route by).
    fn rejected(&self, rejected: &Rejected<'_>) {
        let _ = rejected;
    }
}

/// One request's handler: a coroutine that is also given the request's [`Exchange`] on each resume
/// (a generator's `send(value)`: the exchange is the value sent in).
pub trait Handler {
    /// Advances the handler. Returns `Ready(())` once the response is complete (the server then
    /// ends the body: last chunk, or checks the declared length), `WouldBlock` after registering in
    /// `cx` what should resume it — the exchange registers the socket itself when a body read or a
    /// write would block.
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()>;

    /// A short name for this kind of handler, for logs and profiles.
    fn kind(&self) -> &'static str {
        "handler"
    }
}

impl<A: App + ?Sized> App for std::rc::Rc<A> {
    fn handler(&self, environ: &mut Environ<'_>) -> Box<dyn Handler> {
        (**self).handler(environ)
    }

    fn methods(&self) -> Option<&[Method]> {
        (**self).methods()
    }

    fn rejected(&self, rejected: &Rejected<'_>) {
        (**self).rejected(rejected);
    }
}
