//! [`Reply`]: a handler for an answer that needs no waiting — a status, headers and a body
//! known when the request arrives — and [`from_fn`], an application made of a closure.
//!
//! Together they make the smallest apps one expression:
//!
//! ```
//! use asycamore::service::{Environ, Method, Reply, from_fn};
//!
//! let app = from_fn(|env: &mut Environ<'_>| {
//!     match env.query_param("name") {
//!         Some(name) => Reply::text(200, format!("Hello, {name}!\n")).boxed(),
//!         None => Reply::text(400, "name is missing\n").boxed(),
//!     }
//! })
//! .with_methods(&[Method::Get, Method::Head]);
//! # let _ = app;
//! ```
//!
//! Anything that has to wait (a body to read, a timer, the pool) is a [`Handler`] of its own.

use std::borrow::Cow;

use executor::{Cx, Step};

use super::{App, Environ, Exchange, Handler, Method};

/// A whole response, sent on the handler's first resume with a `Content-Length`.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    body: Cow<'static, [u8]>,
}

impl Reply {
    /// `status` with `body` and no headers but the server's own.
    pub fn new(status: u16, body: impl Into<Cow<'static, [u8]>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A plain-text answer (`text/plain; charset=utf-8`).
    pub fn text(status: u16, body: impl Into<Cow<'static, str>>) -> Reply {
        let body = match body.into() {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        };
        Reply::new(status, body).header("Content-Type", "text/plain; charset=utf-8")
    }

    /// A JSON answer (`application/json`); `body` is the JSON text, already written.
    pub fn json(status: u16, body: impl Into<Cow<'static, str>>) -> Reply {
        Reply::text(status, body).replace_content_type("application/json")
    }

    /// Adds a header field. A field the server refuses (a name or value that could split the
    /// response, or `Transfer-Encoding`) turns the reply into a 500, as with
    /// [`Exchange::respond`].
    pub fn header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The reply as the handler an [`App`] returns.
    pub fn boxed(self) -> Box<dyn Handler> {
        Box::new(self)
    }

    fn replace_content_type(mut self, value: &'static str) -> Reply {
        for (name, v) in &mut self.headers {
            if name.eq_ignore_ascii_case("content-type") {
                *v = Cow::Borrowed(value);
            }
        }
        self
    }
}

impl Handler for Reply {
    fn resume(&mut self, ex: &mut Exchange<'_>, _cx: &mut Cx<'_>) -> Step<()> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_ref(), v.as_ref()))
            .collect();
        ex.respond(self.status, &headers, &self.body);
        Step::Ready(())
    }

    fn kind(&self) -> &'static str {
        "reply"
    }
}

/// An application made of a closure that makes each request's handler; see [`from_fn`].
pub struct FnApp<F> {
    make: F,
    methods: Option<&'static [Method]>,
}

/// An application whose [`App::handler`] is `make`. It takes every method unless
/// [`FnApp::with_methods`] says which (then a [`Router`](crate::middleware::Router) answers the
/// rest with 405 or 501).
pub fn from_fn<F>(make: F) -> FnApp<F>
where
    F: Fn(&mut Environ<'_>) -> Box<dyn Handler>,
{
    FnApp {
        make,
        methods: None,
    }
}

impl<F> FnApp<F> {
    /// The methods the application implements (see [`App::methods`]).
    pub fn with_methods(mut self, methods: &'static [Method]) -> FnApp<F> {
        self.methods = Some(methods);
        self
    }
}

impl<F> App for FnApp<F>
where
    F: Fn(&mut Environ<'_>) -> Box<dyn Handler>,
{
    fn handler(&self, environ: &mut Environ<'_>) -> Box<dyn Handler> {
        (self.make)(environ)
    }

    fn methods(&self) -> Option<&[Method]> {
        self.methods
    }
}
