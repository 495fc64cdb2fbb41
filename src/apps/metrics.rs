//! `metrics`: the server's counters in the Prometheus text exposition format (version 0.0.4), for
//! a Prometheus server (or anything that reads the format) to scrape.
//!
//! ```text
//! # HELP asycamore_requests_total Request heads parsed.
//! # TYPE asycamore_requests_total counter
//! asycamore_requests_total 1027
//! # HELP asycamore_responses_total Responses sent, by status class.
//! # TYPE asycamore_responses_total counter
//! asycamore_responses_total{code_class="2xx"} 1020
//! ...
//! asycamore_request_duration_seconds_bucket{le="0.0005"} 1019
//! ...
//! asycamore_loop_turns_total{worker="0"} 5120
//! ```
//!
//! Every figure is the server's total over all workers, except the ones that describe one loop
//! (turns, time in poll and in steps, connections open on it), which carry a `worker` label and
//! add up to the total. The worker that answers publishes its own live counters to the
//! [`StatusBoard`] before it sums the board, so no counter ever goes down between two scrapes,
//! whichever worker answers each (see [`StatusBoard`]). The executor's figures are those of each
//! worker's last publication, a few times a second.
//!
//! Request durations are measured on the worker's loop clock, read once per turn of its loop: a
//! request answered in the turn its head arrived counts as 0 s, like nginx's `$request_time`,
//! whose clock is cached per event-loop iteration too.

use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use executor::{Cx, Step};

use crate::server::StatusBoard;
use crate::service::{App, Environ, Exchange, Handler, Method};
use crate::stats::{DURATION_BUCKETS, ServerStats, StatsSnapshot};

/// The media type of the text exposition format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `metrics` application of one worker.
#[derive(Debug, Clone)]
pub struct Metrics {
    worker: usize,
    stats: Rc<ServerStats>,
    board: Arc<StatusBoard>,
}

impl Metrics {
    /// The metrics page served by worker number `worker`, whose live counters are `stats`, from
    /// every worker's counters on `board`.
    pub fn new(worker: usize, stats: Rc<ServerStats>, board: Arc<StatusBoard>) -> Metrics {
        Metrics {
            worker,
            stats,
            board,
        }
    }
}

/// The handler of one scrape: the page, rendered when the request arrived.
#[derive(Debug)]
pub struct MetricsHandler {
    body: String,
}

impl App for Metrics {
    fn methods(&self) -> Option<&[Method]> {
        Some(&[Method::Get, Method::Head])
    }

    fn handler(&self, _environ: &mut Environ<'_>) -> Box<dyn Handler> {
        let (workers, total) = self
            .board
            .publish_and_read(self.worker, self.stats.snapshot());
        let started = self
            .board
            .started()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Box::new(MetricsHandler {
            body: render(&total, &workers, started),
        })
    }
}

impl Handler for MetricsHandler {
    fn resume(&mut self, ex: &mut Exchange<'_>, _cx: &mut Cx<'_>) -> Step<()> {
        ex.respond(
            200,
            &[
                ("Content-Type", CONTENT_TYPE),
                ("Cache-Control", "no-store"),
            ],
            self.body.as_bytes(),
        );
        Step::Ready(())
    }

    fn kind(&self) -> &'static str {
        "metrics"
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one unlabelled counter or gauge.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Writes a family with one sample per worker, labelled `worker="i"`.
fn per_worker<T: std::fmt::Display>(
    out: &mut String,
    (name, kind, help): (&str, &str, &str),
    workers: &[StatsSnapshot],
    value: impl Fn(&StatsSnapshot) -> T,
) {
    family(out, name, kind, help);
    for (i, w) in workers.iter().enumerate() {
        let _ = writeln!(out, "{name}{{worker=\"{i}\"}} {}", value(w));
    }
}

/// The page: the totals `t`, the per-worker loop figures from `workers`, and the start time (in
/// seconds since the Unix epoch).
pub fn render(t: &StatsSnapshot, workers: &[StatsSnapshot], started: f64) -> String {
    let mut out = String::with_capacity(4096);
    family(
        &mut out,
        "asycamore_build_info",
        "gauge",
        "Always 1; the version label says which asycamore serves.",
    );
    let _ = writeln!(
        out,
        "asycamore_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    single(
        &mut out,
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch, in seconds.",
        started,
    );
    single(
        &mut out,
        "asycamore_requests_total",
        "counter",
        "Request heads parsed.",
        t.requests,
    );
    family(
        &mut out,
        "asycamore_responses_total",
        "counter",
        "Responses sent, by status class.",
    );
    for (i, n) in t.responses.iter().enumerate() {
        let _ = writeln!(
            out,
            "asycamore_responses_total{{code_class=\"{}xx\"}} {n}",
            i + 1
        );
    }
    single(
        &mut out,
        "asycamore_connections_open",
        "gauge",
        "Client connections open now.",
        t.connections_open,
    );
    single(
        &mut out,
        "asycamore_connections_accepted_total",
        "counter",
        "Client connections accepted.",
        t.connections_total,
    );
    single(
        &mut out,
        "asycamore_upgraded_connections_open",
        "gauge",
        "Connections that switched protocols (101) or became CONNECT tunnels, open now.",
        t.upgraded_open,
    );
    single(
        &mut out,
        "asycamore_upgraded_connections_total",
        "counter",
        "Connections that switched protocols (101) or became CONNECT tunnels.",
        t.upgraded_total,
    );
    single(
        &mut out,
        "asycamore_bytes_received_total",
        "counter",
        "Bytes read from clients.",
        t.bytes_in,
    );
    single(
        &mut out,
        "asycamore_bytes_sent_total",
        "counter",
        "Bytes written to clients.",
        t.bytes_out,
    );
    single(
        &mut out,
        "asycamore_request_errors_total",
        "counter",
        "Requests rejected before reaching the application (bad framing, limits).",
        t.request_errors,
    );
    single(
        &mut out,
        "asycamore_timeouts_total",
        "counter",
        "Connections closed by a timeout.",
        t.timeouts,
    );
    single(
        &mut out,
        "asycamore_handler_panics_total",
        "counter",
        "Handler panics caught.",
        t.panics,
    );
    let name = "asycamore_request_duration_seconds";
    family(
        &mut out,
        name,
        "histogram",
        "Time from a request's parsed head to the end of the application's response.",
    );
    let mut cumulative = 0;
    for (bound, n) in DURATION_BUCKETS.iter().zip(t.durations.counts) {
        cumulative += n;
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", t.durations.count());
    let _ = writeln!(out, "{name}_sum {}", t.durations.sum_nanos as f64 / 1e9);
    let _ = writeln!(out, "{name}_count {}", t.durations.count());
    per_worker(
        &mut out,
        (
            "asycamore_worker_connections_open",
            "gauge",
            "Client connections open now on each worker.",
        ),
        workers,
        |w| w.connections_open,
    );
    per_worker(
        &mut out,
        (
            "asycamore_loop_turns_total",
            "counter",
            "Turns of each worker's loop.",
        ),
        workers,
        |w| w.executor.turns,
    );
    per_worker(
        &mut out,
        (
            "asycamore_poll_seconds_total",
            "counter",
            "Time each worker's loop spent waiting in poll or epoll_wait.",
        ),
        workers,
        |w| w.executor.poll_time.as_secs_f64(),
    );
    per_worker(
        &mut out,
        (
            "asycamore_step_seconds_total",
            "counter",
            "Time each worker's loop spent resuming tasks.",
        ),
        workers,
        |w| w.executor.run_time.as_secs_f64(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_family_has_help_and_type_and_the_histogram_is_cumulative() {
        let stats = ServerStats::default();
        stats.request_started();
        stats.request_done(200, Duration::from_millis(3));
        stats.request_done(200, Duration::from_secs(20));
        let mut w = stats.snapshot();
        w.executor.turns = 9;
        let page = render(&w, &[w.clone()], 1.5);
        assert!(page.contains("asycamore_requests_total 1\n"), "{page}");
        assert!(page.contains("asycamore_responses_total{code_class=\"2xx\"} 2\n"));
        assert!(page.contains("asycamore_request_duration_seconds_bucket{le=\"0.0025\"} 0\n"));
        assert!(page.contains("asycamore_request_duration_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(page.contains("asycamore_request_duration_seconds_bucket{le=\"10\"} 1\n"));
        assert!(page.contains("asycamore_request_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(
            page.contains("asycamore_request_duration_seconds_sum 20.003\n"),
            "{page}"
        );
        assert!(page.contains("asycamore_loop_turns_total{worker=\"0\"} 9\n"));
        assert!(page.contains("process_start_time_seconds 1.5\n"));
        // Each sample's family was announced by a TYPE line before it.
        let mut typed: Vec<&str> = Vec::new();
        for line in page.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.push(rest.split(' ').next().unwrap());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|f| typed.last() == Some(f))
                    .unwrap_or(name);
                assert_eq!(typed.last(), Some(&family), "{line}");
            }
        }
    }
}
