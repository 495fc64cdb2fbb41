//! Per-worker counters: connections, requests, responses by status class, timeouts, panics.
//!
//! A worker thread owns one [`ServerStats`] shared by its connections through an `Rc`; plain
//! `Cell`s suffice because nothing crosses threads on the hot path.

use std::cell::{Cell, RefCell};

use asycamore_executor::Stats;

/// Counters of one worker.
#[derive(Debug, Default)]
pub struct ServerStats {
    connections_open: Cell<u64>,
    connections_total: Cell<u64>,
    requests: Cell<u64>,
    responses: [Cell<u64>; 5],
    request_errors: Cell<u64>,
    timeouts: Cell<u64>,
    panics: Cell<u64>,
    executor: RefCell<Stats>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StatsSnapshot {
    /// Connections open now.
    pub connections_open: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Request heads parsed.
    pub requests: u64,
    /// Responses by status class: `[1xx, 2xx, 3xx, 4xx, 5xx]`.
    pub responses: [u64; 5],
    /// Requests rejected by the detectors (bad framing, limits).
    pub request_errors: u64,
    /// Connections closed by a timeout.
    pub timeouts: u64,
    /// Handler panics caught.
    pub panics: u64,
    /// The executor's counters, as last recorded by the worker.
    pub executor: Stats,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

impl ServerStats {
    /// A connection was accepted.
    pub fn connection_opened(&self) {
        bump(&self.connections_total);
        bump(&self.connections_open);
    }

    /// A connection ended.
    pub fn connection_closed(&self) {
        self.connections_open
            .set(self.connections_open.get().saturating_sub(1));
    }

    /// A request head was parsed.
    pub fn request_started(&self) {
        bump(&self.requests);
    }

    /// A request was rejected with `status` before reaching the application.
    pub fn request_error(&self, _status: u16) {
        bump(&self.request_errors);
    }

    /// A response with `status` was completed.
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        bump(&self.responses[class]);
    }

    /// A connection timed out.
    pub fn timeout(&self) {
        bump(&self.timeouts);
    }

    /// A handler panicked.
    pub fn panic(&self) {
        bump(&self.panics);
    }

    /// Records the executor's counters (the worker does this a few times a second).
    pub fn set_executor(&self, stats: &Stats) {
        self.executor.borrow_mut().clone_from(stats);
    }

    /// The executor's counters as last recorded.
    pub fn executor(&self) -> Stats {
        self.executor.borrow().clone()
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            connections_open: self.connections_open.get(),
            connections_total: self.connections_total.get(),
            requests: self.requests.get(),
            responses: [0, 1, 2, 3, 4].map(|i| self.responses[i].get()),
            request_errors: self.request_errors.get(),
            timeouts: self.timeouts.get(),
            panics: self.panics.get(),
            executor: self.executor(),
        }
    }
}
