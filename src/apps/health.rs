//! `health`: a load balancer's liveness probe — `200 ok` while serving, `503` once the worker is
//! shutting down, so the balancer stops sending new clients before the listener closes.
//!
//! The handler reads the worker's shutdown flag when the request arrives and answers in its first
//! resume: nothing to wait for.

use std::cell::Cell;
use std::rc::Rc;

use executor::{Cx, Step};

use crate::service::{App, Environ, Exchange, Handler, Method};

/// The `healthz` application of one worker.
#[derive(Debug, Clone)]
pub struct Health {
    shutting_down: Rc<Cell<bool>>,
}

impl Health {
    /// A probe that answers 503 once `shutting_down` is true (the worker's flag,
    /// [`Worker::shutting_down`](crate::server::Worker::shutting_down)).
    pub fn new(shutting_down: Rc<Cell<bool>>) -> Health {
        Health { shutting_down }
    }
}

/// The handler of one probe: whether the worker was shutting down when it arrived.
#[derive(Debug)]
pub struct HealthHandler {
    shutting_down: bool,
}

impl App for Health {
    fn methods(&self) -> Option<&[Method]> {
        Some(&[Method::Get, Method::Head])
    }

    fn handler(&self, _environ: &mut Environ<'_>) -> Box<dyn Handler> {
        Box::new(HealthHandler {
            shutting_down: self.shutting_down.get(),
        })
    }
}

impl Handler for HealthHandler {
    fn resume(&mut self, ex: &mut Exchange<'_>, _cx: &mut Cx<'_>) -> Step<()> {
        let headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Cache-Control", "no-store"),
        ];
        if self.shutting_down {
            ex.respond(503, &headers, b"shutting down\n");
        } else {
            ex.respond(200, &headers, b"ok\n");
        }
        Step::Ready(())
    }

    fn kind(&self) -> &'static str {
        "health"
    }
}
