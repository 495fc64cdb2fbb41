//! `status`: the server's counters as JSON — connections, requests, responses by status class,
//! timeouts, bytes in and out, and the executor's profile (loop turns, polls, events per poll,
//! resumes, time in `poll` against time running steps, sending system calls and their bytes) —
//! with the uptime.
//!
//! Each worker thread has its own counters and its own executor. The top-level fields are the
//! totals over every worker (`"worker"` says which one served the page); `"workers"` lists each
//! worker's counters as it last published them (a few times a second). The serving worker
//! publishes its live counters before summing, so the totals never go down from one page to the
//! next, whichever worker serves it (see [`StatusBoard`]); the executor's figures and the other
//! workers' may lag by a fraction of a second.
//!
//! The JSON is written by hand: every value is a number or a fixed name, so nothing needs
//! escaping except the task kinds, which go through [`json_string`].

use std::fmt::Write as _;
use std::rc::Rc;
use std::time::SystemTime;

use executor::{Cx, Step};

use crate::json::json_string;
use crate::server::StatusBoard;
use crate::service::{App, Environ, Exchange, Handler, Method};
use crate::stats::{ServerStats, StatsSnapshot};
use std::sync::Arc;

/// The `status` application of one worker.
#[derive(Debug, Clone)]
pub struct Status {
    worker: usize,
    stats: Rc<ServerStats>,
    board: Arc<StatusBoard>,
}

impl Status {
    /// A status page for worker number `worker`, reading `stats` live and every worker's
    /// published counters from `board`.
    pub fn new(worker: usize, stats: Rc<ServerStats>, board: Arc<StatusBoard>) -> Status {
        Status {
            worker,
            stats,
            board,
        }
    }
}

/// The handler of one status request: the JSON, rendered when the request arrived.
#[derive(Debug)]
pub struct StatusHandler {
    body: String,
}

impl App for Status {
    fn methods(&self) -> Option<&[Method]> {
        Some(&[Method::Get, Method::Head])
    }

    fn handler(&self, _environ: &mut Environ<'_>) -> Box<dyn Handler> {
        let (workers, total) = self
            .board
            .publish_and_read(self.worker, self.stats.snapshot());
        let uptime = SystemTime::now()
            .duration_since(self.board.started())
            .unwrap_or_default();
        let all: Vec<String> = workers
            .iter()
            .enumerate()
            .map(|(i, s)| render(i, s).trim_end().to_owned())
            .collect();
        let top = render(self.worker, &total);
        let body = format!(
            "{}, \"uptime_seconds\": {:.3}, \"workers\": [{}]}}\n",
            top.trim_end().strip_suffix('}').unwrap_or(&top),
            uptime.as_secs_f64(),
            all.join(", ")
        );
        Box::new(StatusHandler { body })
    }
}

impl Handler for StatusHandler {
    fn resume(&mut self, ex: &mut Exchange<'_>, _cx: &mut Cx<'_>) -> Step<()> {
        ex.respond(
            200,
            &[
                ("Content-Type", "application/json"),
                ("Cache-Control", "no-store"),
            ],
            self.body.as_bytes(),
        );
        Step::Ready(())
    }

    fn kind(&self) -> &'static str {
        "status"
    }
}

/// The status document for `worker`'s counters `s`.
pub fn render(worker: usize, s: &StatsSnapshot) -> String {
    let e = &s.executor;
    let [r1, r2, r3, r4, r5] = s.responses;
    let mut kinds = String::new();
    for (i, (kind, n)) in e.resumes_by_kind.iter().enumerate() {
        let comma = if i == 0 { "" } else { ", " };
        let _ = write!(kinds, "{comma}{}: {n}", json_string(kind));
    }
    format!(
        concat!(
            "{{\"worker\": {}, \"connections_open\": {}, \"connections_total\": {}, ",
            "\"requests\": {}, ",
            "\"responses\": {{\"1xx\": {}, \"2xx\": {}, \"3xx\": {}, \"4xx\": {}, \"5xx\": {}}}, ",
            "\"request_errors\": {}, \"timeouts\": {}, \"panics\": {}, ",
            "\"bytes_in\": {}, \"bytes_out\": {}, ",
            "\"executor\": {{\"turns\": {}, \"polls\": {}, \"events\": {}, ",
            "\"events_per_poll\": {:.3}, \"resumes\": {}, \"spawned\": {}, \"finished\": {}, ",
            "\"poll_seconds\": {:.6}, \"run_seconds\": {:.6}, \"sends\": {}, \"sent_bytes\": {}, ",
            "\"resumes_by_kind\": {{{}}}}}}}\n"
        ),
        worker,
        s.connections_open,
        s.connections_total,
        s.requests,
        r1,
        r2,
        r3,
        r4,
        r5,
        s.request_errors,
        s.timeouts,
        s.panics,
        s.bytes_in,
        s.bytes_out,
        e.turns,
        e.polls,
        e.events,
        e.events_per_poll(),
        e.resumes,
        e.spawned,
        e.finished,
        e.poll_time.as_secs_f64(),
        e.run_time.as_secs_f64(),
        e.sends.calls,
        e.sends.bytes,
        kinds,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_counter() {
        let mut s = StatsSnapshot {
            requests: 3,
            responses: [0, 2, 0, 1, 0],
            bytes_in: 10,
            ..StatsSnapshot::default()
        };
        s.executor.resumes_by_kind = vec![("connection", 4), ("sleep", 1)];
        let json = render(1, &s);
        assert!(json.starts_with("{\"worker\": 1, "), "{json}");
        assert!(json.contains("\"2xx\": 2, "), "{json}");
        assert!(json.contains("\"bytes_in\": 10, "), "{json}");
        assert!(
            json.contains("\"resumes_by_kind\": {\"connection\": 4, \"sleep\": 1}}}"),
            "{json}"
        );
    }
}
