//! Per-worker counters: connections, requests, responses by status class, timeouts, panics.
//!
//! A worker thread owns one [`ServerStats`] shared by its connections through an `Rc`; plain
//! `Cell`s suffice because nothing crosses threads on the hot path.

use std::cell::{Cell, RefCell};
use std::time::Duration;

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
    short_responses: Cell<u64>,
    bytes_in: Cell<u64>,
    bytes_out: Cell<u64>,
    executor: RefCell<Stats>,
    slowest_steps: RefCell<Vec<(Duration, &'static str)>>,
}

/// How many of the slowest handler steps `--profile` keeps.
pub const SLOWEST_STEPS: usize = 10;

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
    /// Responses that ended before their declared `Content-Length` (the connection was closed
    /// to tell the client).
    pub short_responses: u64,
    /// Bytes read from clients' sockets.
    pub bytes_in: u64,
    /// Bytes written to clients' sockets.
    pub bytes_out: u64,
    /// The executor's counters, as last recorded by the worker.
    pub executor: Stats,
    /// The slowest handler steps timed (with `Config::profile`), slowest first, with the
    /// handler's kind.
    pub slowest_steps: Vec<(Duration, &'static str)>,
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

    /// A response ended before its declared length.
    pub fn short_response(&self) {
        bump(&self.short_responses);
    }

    /// `n` bytes were read from a client.
    pub fn bytes_read(&self, n: usize) {
        self.bytes_in.set(self.bytes_in.get() + n as u64);
    }

    /// `n` bytes were written to a client.
    pub fn bytes_written(&self, n: usize) {
        self.bytes_out.set(self.bytes_out.get() + n as u64);
    }

    /// Records the executor's counters (the worker does this a few times a second).
    pub fn set_executor(&self, stats: &Stats) {
        self.executor.borrow_mut().clone_from(stats);
    }

    /// The executor's counters as last recorded.
    pub fn executor(&self) -> Stats {
        self.executor.borrow().clone()
    }

    /// Records one timed handler step, keeping the [`SLOWEST_STEPS`] slowest.
    pub fn handler_step(&self, kind: &'static str, took: Duration) {
        let mut slowest = self.slowest_steps.borrow_mut();
        if slowest.len() == SLOWEST_STEPS && slowest.last().is_some_and(|(t, _)| *t >= took) {
            return;
        }
        let at = slowest.partition_point(|(t, _)| *t >= took);
        slowest.insert(at, (took, kind));
        slowest.truncate(SLOWEST_STEPS);
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
            short_responses: self.short_responses.get(),
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            executor: self.executor(),
            slowest_steps: self.slowest_steps.borrow().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_handler_steps_are_kept_slowest_first() {
        let stats = ServerStats::default();
        for ms in [5u64, 1, 9, 3, 7, 2, 8, 4, 6, 10, 11, 0] {
            stats.handler_step("h", Duration::from_millis(ms));
        }
        let kept: Vec<u64> = stats
            .snapshot()
            .slowest_steps
            .iter()
            .map(|(d, _)| d.as_millis() as u64)
            .collect();
        assert_eq!(kept, [11, 10, 9, 8, 7, 6, 5, 4, 3, 2]);
    }

    #[test]
    fn responses_are_counted_by_class() {
        let stats = ServerStats::default();
        for status in [100, 200, 204, 301, 404, 500, 503] {
            stats.response(status);
        }
        assert_eq!(stats.snapshot().responses, [1, 2, 1, 1, 2]);
    }
}
