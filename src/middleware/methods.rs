//! [`Methods`]: one resource, a handler maker per method — the dispatch by method that RFC
//! 9110 §9 asks of every resource, written once.
//!
//! A request whose method has no entry is answered here, by the rules of
//! [`crate::service::method`]: `OPTIONS` with `Allow`, a known method with 405 and `Allow`, an
//! unrecognized one with 501. `HEAD` goes to the `GET` entry unless it has its own (the server
//! sends the head of what `GET` answers, and no content, RFC 9110 §9.3.2). Mounted in a
//! [`Router`](super::Router), the router answers those itself from [`App::methods`].
//!
//! ```
//! use asycamore::middleware::{Methods, Router};
//! use asycamore::service::{Environ, Reply};
//!
//! let kv = Methods::new()
//!     .get(|env: &mut Environ<'_>| Reply::text(200, format!("read {}\n", env.path_info())).boxed())
//!     .put(|_: &mut Environ<'_>| Reply::text(201, "stored\n").boxed())
//!     .delete(|_: &mut Environ<'_>| Reply::new(204, &b""[..]).boxed());
//! let app = Router::new().mount("/kv", kv);
//! # let _ = app;
//! ```

use crate::service::method::{self, MethodAnswer};
use crate::service::{App, Environ, Handler, Method};

/// Makes the handler of one request.
type Make = Box<dyn Fn(&mut Environ<'_>) -> Box<dyn Handler>>;

/// An application that dispatches each request to the handler maker of its method.
#[derive(Default)]
pub struct Methods {
    /// Each method with its maker, in the order given (the order of `Allow`).
    entries: Vec<(Method, Make)>,
    /// The methods answered, for [`App::methods`]: the entries' and `HEAD` with `GET`.
    methods: Vec<Method>,
}

impl Methods {
    /// No method yet: everything but `OPTIONS` is a 405 (or a 501).
    pub fn new() -> Methods {
        Methods::default()
    }

    /// Answers `method` with the handlers `make` makes. A second entry for a method replaces
    /// the first.
    pub fn on<F>(mut self, method: Method, make: F) -> Methods
    where
        F: Fn(&mut Environ<'_>) -> Box<dyn Handler> + 'static,
    {
        self.entries.retain(|(m, _)| *m != method);
        self.entries.push((method, Box::new(make)));
        self.methods = self.entries.iter().map(|(m, _)| *m).collect();
        if self.methods.contains(&Method::Get) && !self.methods.contains(&Method::Head) {
            let after_get = self
                .methods
                .iter()
                .position(|m| *m == Method::Get)
                .map_or(0, |i| i + 1);
            self.methods.insert(after_get, Method::Head);
        }
        self
    }

    /// `GET` (and `HEAD`, unless it has an entry of its own).
    pub fn get<F>(self, make: F) -> Methods
    where
        F: Fn(&mut Environ<'_>) -> Box<dyn Handler> + 'static,
    {
        self.on(Method::Get, make)
    }

    /// `HEAD`, when it should not be `GET`'s head.
    pub fn head<F>(self, make: F) -> Methods
    where
        F: Fn(&mut Environ<'_>) -> Box<dyn Handler> + 'static,
    {
        self.on(Method::Head, make)
    }

    /// `POST`.
    pub fn post<F>(self, make: F) -> Methods
    where
        F: Fn(&mut Environ<'_>) -> Box<dyn Handler> + 'static,
    {
        self.on(Method::Post, make)
    }

    /// `PUT`.
    pub fn put<F>(self, make: F) -> Methods
    where
        F: Fn(&mut Environ<'_>) -> Box<dyn Handler> + 'static,
    {
        self.on(Method::Put, make)
    }

    /// `DELETE`.
    pub fn delete<F>(self, make: F) -> Methods
    where
        F: Fn(&mut Environ<'_>) -> Box<dyn Handler> + 'static,
    {
        self.on(Method::Delete, make)
    }

    /// `PATCH`.
    pub fn patch<F>(self, make: F) -> Methods
    where
        F: Fn(&mut Environ<'_>) -> Box<dyn Handler> + 'static,
    {
        self.on(Method::Patch, make)
    }

    /// The maker for `method`: its own entry, or `GET`'s for `HEAD`.
    fn maker(&self, method: Method) -> Option<&Make> {
        let find = |wanted: Method| self.entries.iter().find(|(m, _)| *m == wanted);
        match (find(method), method) {
            (Some((_, make)), _) => Some(make),
            (None, Method::Head) => find(Method::Get).map(|(_, make)| make),
            (None, _) => None,
        }
    }
}

impl App for Methods {
    fn handler(&self, environ: &mut Environ<'_>) -> Box<dyn Handler> {
        let name = environ.request_method().as_bytes();
        if let Some(answer) = MethodAnswer::new(method::verdict(name, Some(&self.methods))) {
            return Box::new(answer);
        }
        match Method::parse(name).and_then(|m| self.maker(m)) {
            Some(make) => make(environ),
            // The verdict passed only methods in the list, and each has a maker.
            None => Box::new(MethodAnswer::not_implemented()),
        }
    }

    fn methods(&self) -> Option<&[Method]> {
        Some(&self.methods)
    }
}
