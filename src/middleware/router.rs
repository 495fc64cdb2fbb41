//! [`Router`]: mounts applications by path prefix, moving the prefix from `PATH_INFO` to
//! `SCRIPT_NAME` (PEP 3333's rule for a mounted application), and answers 404 where nothing
//! matches.
//!
//! Prefixes match whole path segments: `/echo` matches `/echo` and `/echo/x`, never `/echoes`.
//! The longest matching prefix wins. Matching uses the percent-decoded path, the same one the
//! mounted application sees, so `/%65cho` reaches `/echo`.
//!
//! The router also applies the method rules of RFC 9110 §9 (see [`crate::service::method`]) for
//! the applications that declare their methods ([`App::methods`]): `OPTIONS` is answered with
//! the route's `Allow`, a known method the route does not take with 405, an unrecognized one
//! with 501 — also where no route matches. `OPTIONS *` is answered for the whole server, with
//! every method some route takes (RFC 9110 §9.3.7).

use executor::{Cx, Step};

use crate::service::method::{self, MethodAnswer};
use crate::service::{App, Environ, Exchange, Handler, Method};

/// How a route matches a path.
#[derive(Clone, Copy)]
enum Match {
    /// The path equals the route's path.
    Exact,
    /// The path starts with the route's path at a segment boundary.
    Prefix,
}

/// One mounted application.
struct Route {
    path: String,
    how: Match,
    app: Box<dyn App>,
}

/// An application that dispatches each request to a mounted one by path.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
    /// The application for `CONNECT`, if the server takes it.
    connect: Option<Box<dyn App>>,
}

impl Router {
    /// An empty router (everything is a 404).
    pub fn new() -> Router {
        Router::default()
    }

    /// Mounts `app` under `prefix` (e.g. `/files`): it sees `SCRIPT_NAME` = the prefix and
    /// `PATH_INFO` = the rest of the path. A trailing `/` on the prefix is ignored.
    pub fn mount(mut self, prefix: &str, app: impl App + 'static) -> Router {
        let path = prefix.trim_end_matches('/').to_owned();
        self.routes.push(Route {
            path,
            how: Match::Prefix,
            app: Box::new(app),
        });
        self.routes.sort_by_key(|r| std::cmp::Reverse(r.path.len()));
        self
    }

    /// Routes exactly `path` (e.g. `/`) to `app`, which sees the whole path as `PATH_INFO`.
    pub fn exact(mut self, path: &str, app: impl App + 'static) -> Router {
        self.routes.push(Route {
            path: path.to_owned(),
            how: Match::Exact,
            app: Box::new(app),
        });
        self.routes.sort_by_key(|r| std::cmp::Reverse(r.path.len()));
        self
    }
}

impl Router {
    /// Hands every `CONNECT` to `app`. A CONNECT names a tunnel's far end, not a resource here
    /// (RFC 9110 §9.3.6: its target is `host:port`), so it is routed by method, not by path;
    /// without such an app a CONNECT is a 405.
    pub fn connect(mut self, app: impl App + 'static) -> Router {
        self.connect = Some(Box::new(app));
        self
    }

    /// Every method some route takes, for `OPTIONS *`: all the server knows if a route takes
    /// any method.
    fn server_methods(&self) -> Vec<Method> {
        let mut all: Vec<Method> = Vec::new();
        for route in &self.routes {
            let methods = route.app.methods().unwrap_or(&Method::ALL);
            for m in methods {
                if !all.contains(m) {
                    all.push(*m);
                }
            }
        }
        if self.connect.is_some() && !all.contains(&Method::Connect) {
            all.push(Method::Connect);
        }
        Method::ALL
            .into_iter()
            .filter(|m| all.contains(m))
            .collect()
    }
}

impl App for Router {
    fn handler(&self, environ: &mut Environ<'_>) -> Box<dyn Handler> {
        let method = environ.request_method().as_bytes();
        if method == b"CONNECT" {
            return match &self.connect {
                Some(app) => app.handler(environ),
                None => {
                    let allow: Vec<Method> = self
                        .server_methods()
                        .into_iter()
                        .filter(|m| *m != Method::Connect)
                        .collect();
                    match MethodAnswer::new(method::verdict(method, Some(&allow))) {
                        Some(answer) => Box::new(answer),
                        None => Box::new(NotFound),
                    }
                }
            };
        }
        if environ.target() == b"*" {
            // Only OPTIONS may use the asterisk form (the head detector refuses the rest).
            let allow = method::allow_value(&self.server_methods());
            return Box::new(MethodAnswer::options(allow));
        }
        // Decoded only when a route has a path to compare: a router with one application
        // mounted at the root (`--app NAME`) never pays for it.
        let mut path_info = None;
        for route in &self.routes {
            let p = route.path.as_bytes();
            let hit = match route.how {
                Match::Prefix if p.is_empty() => true,
                how => {
                    let path_info: &[u8] =
                        path_info.get_or_insert_with(|| environ.path_info_bytes());
                    match how {
                        Match::Exact => path_info == p,
                        Match::Prefix => {
                            path_info.starts_with(p)
                                && (path_info.len() == p.len() || path_info[p.len()] == b'/')
                        }
                    }
                }
            };
            if hit {
                if let Some(answer) =
                    MethodAnswer::new(method::verdict(method, route.app.methods()))
                {
                    return Box::new(answer);
                }
                if let Match::Prefix = route.how
                    && !p.is_empty()
                {
                    environ.mount(p.len());
                }
                return route.app.handler(environ);
            }
        }
        if Method::parse(method).is_none() {
            return Box::new(MethodAnswer::not_implemented());
        }
        Box::new(NotFound)
    }
}

/// Answers 404.
#[derive(Debug)]
pub struct NotFound;

impl Handler for NotFound {
    fn resume(&mut self, ex: &mut Exchange<'_>, _cx: &mut Cx<'_>) -> Step<()> {
        ex.respond(
            404,
            &[("Content-Type", "text/plain; charset=utf-8")],
            b"not found\n",
        );
        Step::Ready(())
    }

    fn kind(&self) -> &'static str {
        "not-found"
    }
}
