//! `hello`: answers `Hello, World!` to every request.
//!
//! The smallest handler there is: one state, no waiting. It writes the whole response in its first
//! resume and returns `Ready(())`. Its handler is a unit struct, so making one per request costs no
//! allocation (a `Box` of a zero-sized type allocates nothing).

use executor::{Cx, Step};

use crate::service::{App, Environ, Exchange, Handler, Method};

/// The body every response carries.
pub const GREETING: &[u8] = b"Hello, World!";

/// The `hello` application.
#[derive(Debug, Default, Clone, Copy)]
pub struct Hello;

/// The handler of one `hello` request.
#[derive(Debug)]
pub struct HelloHandler;

impl App for Hello {
    fn methods(&self) -> Option<&[Method]> {
        Some(&[Method::Get, Method::Head])
    }

    fn handler(&self, _environ: &mut Environ<'_>) -> Box<dyn Handler> {
        Box::new(HelloHandler)
    }
}

impl Handler for HelloHandler {
    fn resume(&mut self, ex: &mut Exchange<'_>, _cx: &mut Cx<'_>) -> Step<()> {
        ex.respond(200, &[("Content-Type", "text/plain")], GREETING);
        Step::Ready(())
    }

    fn kind(&self) -> &'static str {
        "hello"
    }
}
