//! Per-worker counters: connections, requests, responses by status class, timeouts, panics,
//! and a histogram of request durations.
//!
//! A worker thread owns one [`ServerStats`] shared by its connections through an `Rc`; plain
//! `Cell`s suffice because nothing crosses threads on the hot path. Other threads see a worker's
//! counters only as the [`StatsSnapshot`]s it publishes, and [`StatsSnapshot::total`] adds up
//! several workers' snapshots for the server-wide figures.

use std::cell::{Cell, RefCell};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use executor::Stats;

/// Counters of one worker.
#[derive(Debug, Default)]
pub struct ServerStats {
    connections_open: Cell<u64>,
    connections_total: Cell<u64>,
    upgraded_open: Cell<u64>,
    upgraded_total: Cell<u64>,
    requests: Cell<u64>,
    responses: [Cell<u64>; 5],
    request_errors: Cell<u64>,
    timeouts: Cell<u64>,
    panics: Cell<u64>,
    short_responses: Cell<u64>,
    bytes_in: Cell<u64>,
    bytes_out: Cell<u64>,
    durations: [Cell<u64>; DURATION_BUCKETS.len() + 1],
    duration_sum_nanos: Cell<u64>,
    executor: RefCell<Stats>,
    slowest_steps: RefCell<Vec<(Duration, &'static str)>>,
    by_kind: RefCell<Vec<KindProfile>>,
}

/// What the requests of one kind of handler cost (`--profile`): the application profile seen
/// from inside the server. A request's costs are added up under the kind of the handler made
/// for it, from its head to the next request's head on the same connection.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct KindProfile {
    /// The handler's [`Handler::kind`](crate::service::Handler::kind).
    pub kind: &'static str,
    /// Requests answered by such a handler.
    pub requests: u64,
    /// Resumes of those handlers.
    pub handler_resumes: u64,
    /// Time in those resumes.
    pub handler_time: Duration,
    /// Resumes of the connection task while it served those requests.
    pub connection_resumes: u64,
    /// Sending system calls made for them, and their bytes (see [`executor::net::Sends`]).
    pub sends: executor::net::Sends,
}

/// The most handler kinds `--profile` tells apart (slot numbers fit a byte); later kinds are
/// not profiled.
pub const PROFILED_KINDS: usize = 255;

/// How many of the slowest handler steps `--profile` keeps.
pub const SLOWEST_STEPS: usize = 10;

/// Upper bounds, in seconds, of the request-duration histogram's buckets (a last one, `+Inf`,
/// holds the rest): from half a millisecond, where a request answered in the turn it arrived
/// lands, to ten seconds, beyond any handler that is not waiting on something slow. Fixed, so
/// that the histograms of every worker and every restart add up bucket by bucket.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Request durations: how many fell in each bucket of [`DURATION_BUCKETS`] (not cumulative; the
/// last entry is `+Inf`), and their sum.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DurationHistogram {
    /// Observations per bucket, the last one beyond the largest bound.
    pub counts: [u64; DURATION_BUCKETS.len() + 1],
    /// The sum of all observations, in nanoseconds.
    pub sum_nanos: u64,
}

impl DurationHistogram {
    /// Observations in total.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The bucket a duration falls in: the first whose upper bound it does not exceed.
    pub fn bucket_of(duration: Duration) -> usize {
        if duration.is_zero() {
            return 0;
        }
        let seconds = duration.as_secs_f64();
        DURATION_BUCKETS.partition_point(|&bound| bound < seconds)
    }
}

/// When the server started: the first call (the binary makes it first thing in `main`; a
/// [`Server`](crate::server::Server) makes it when it binds).
pub fn process_start() -> SystemTime {
    static START: OnceLock<SystemTime> = OnceLock::new();
    *START.get_or_init(SystemTime::now)
}

/// A copy of the counters at one moment.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StatsSnapshot {
    /// Connections open now.
    pub connections_open: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Upgraded connections (`101 Switching Protocols`) open now.
    pub upgraded_open: u64,
    /// Connections upgraded since start.
    pub upgraded_total: u64,
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
    /// How long the responses the application made took, from the parsed head to the end.
    pub durations: DurationHistogram,
    /// The executor's counters, as last recorded by the worker.
    pub executor: Stats,
    /// The slowest handler steps timed (with `Config::profile`), slowest first, with the
    /// handler's kind.
    pub slowest_steps: Vec<(Duration, &'static str)>,
    /// Per handler kind, what its requests cost (with `Config::profile`), in order of first
    /// appearance.
    pub by_kind: Vec<KindProfile>,
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

    /// A connection switched protocols and now runs a tunnel.
    pub fn upgrade_began(&self) {
        bump(&self.upgraded_total);
        bump(&self.upgraded_open);
    }

    /// An upgraded connection's tunnel ended.
    pub fn upgrade_ended(&self) {
        self.upgraded_open
            .set(self.upgraded_open.get().saturating_sub(1));
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

    /// A response with `status` was completed (one the connection made itself: an error).
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        bump(&self.responses[class]);
    }

    /// The application's response with `status` was completed, `duration` after its request's
    /// head was parsed: counted as [`ServerStats::response`] and observed in the histogram.
    pub fn request_done(&self, status: u16, duration: Duration) {
        self.response(status);
        bump(&self.durations[DurationHistogram::bucket_of(duration)]);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.duration_sum_nanos
            .set(self.duration_sum_nanos.get().saturating_add(nanos));
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

    /// A request got a handler of `kind`: counts it, and returns the slot its costs are added
    /// up in (0, none, beyond [`PROFILED_KINDS`] kinds).
    pub fn profile_request(&self, kind: &'static str) -> u8 {
        let mut kinds = self.by_kind.borrow_mut();
        let at = match kinds.iter().position(|k| k.kind == kind) {
            Some(at) => at,
            None if kinds.len() < PROFILED_KINDS => {
                kinds.push(KindProfile {
                    kind,
                    ..KindProfile::default()
                });
                kinds.len() - 1
            }
            None => return 0,
        };
        kinds[at].requests += 1;
        (at + 1) as u8
    }

    /// Applies `f` to the profile in `slot` (from [`ServerStats::profile_request`]), if any.
    fn profiled(&self, slot: u8, f: impl FnOnce(&mut KindProfile)) {
        let Some(i) = (slot as usize).checked_sub(1) else {
            return;
        };
        if let Some(k) = self.by_kind.borrow_mut().get_mut(i) {
            f(k);
        }
    }

    /// The connection serving a request of `slot` was resumed.
    pub fn profile_connection_resume(&self, slot: u8) {
        self.profiled(slot, |k| k.connection_resumes += 1);
    }

    /// The connection serving a request of `slot` made `sends` sending calls.
    pub fn profile_sends(&self, slot: u8, sends: executor::net::Sends) {
        self.profiled(slot, |k| {
            k.sends.calls += sends.calls;
            k.sends.bytes += sends.bytes;
        });
    }

    /// Records one timed handler step of a request in `slot` (0: not profiled by kind), keeping
    /// the [`SLOWEST_STEPS`] slowest.
    pub fn handler_step(&self, kind: &'static str, slot: u8, took: Duration) {
        self.profiled(slot, |k| {
            k.handler_resumes += 1;
            k.handler_time += took;
        });
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
            upgraded_open: self.upgraded_open.get(),
            upgraded_total: self.upgraded_total.get(),
            requests: self.requests.get(),
            responses: [0, 1, 2, 3, 4].map(|i| self.responses[i].get()),
            request_errors: self.request_errors.get(),
            timeouts: self.timeouts.get(),
            panics: self.panics.get(),
            short_responses: self.short_responses.get(),
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            durations: DurationHistogram {
                counts: std::array::from_fn(|i| self.durations[i].get()),
                sum_nanos: self.duration_sum_nanos.get(),
            },
            executor: self.executor(),
            slowest_steps: self.slowest_steps.borrow().clone(),
            by_kind: self.by_kind.borrow().clone(),
        }
    }
}

impl StatsSnapshot {
    /// The server-wide figures: every counter summed over `snapshots` (the executor's too, and
    /// resumes by kind merged by name), the slowest steps of all of them.
    pub fn total<'a>(snapshots: impl IntoIterator<Item = &'a StatsSnapshot>) -> StatsSnapshot {
        let mut t = StatsSnapshot::default();
        for s in snapshots {
            t.connections_open += s.connections_open;
            t.connections_total += s.connections_total;
            t.upgraded_open += s.upgraded_open;
            t.upgraded_total += s.upgraded_total;
            t.requests += s.requests;
            for (sum, n) in t.responses.iter_mut().zip(s.responses) {
                *sum += n;
            }
            t.request_errors += s.request_errors;
            t.timeouts += s.timeouts;
            t.panics += s.panics;
            t.bytes_in += s.bytes_in;
            t.bytes_out += s.bytes_out;
            for (sum, n) in t.durations.counts.iter_mut().zip(s.durations.counts) {
                *sum += n;
            }
            t.durations.sum_nanos = t.durations.sum_nanos.saturating_add(s.durations.sum_nanos);
            let (e, x) = (&mut t.executor, &s.executor);
            e.turns += x.turns;
            e.polls += x.polls;
            e.events += x.events;
            e.resumes += x.resumes;
            e.spawned += x.spawned;
            e.finished += x.finished;
            e.abandoned += x.abandoned;
            e.timers_armed += x.timers_armed;
            e.poll_time += x.poll_time;
            e.run_time += x.run_time;
            for &(kind, n) in &x.resumes_by_kind {
                match e.resumes_by_kind.iter_mut().find(|(k, _)| *k == kind) {
                    Some((_, sum)) => *sum += n,
                    None => e.resumes_by_kind.push((kind, n)),
                }
            }
            e.sends.calls += x.sends.calls;
            e.sends.bytes += x.sends.bytes;
            t.slowest_steps.extend_from_slice(&s.slowest_steps);
            for k in &s.by_kind {
                match t.by_kind.iter_mut().find(|t| t.kind == k.kind) {
                    Some(t) => {
                        t.requests += k.requests;
                        t.handler_resumes += k.handler_resumes;
                        t.handler_time += k.handler_time;
                        t.connection_resumes += k.connection_resumes;
                        t.sends.calls += k.sends.calls;
                        t.sends.bytes += k.sends.bytes;
                    }
                    None => t.by_kind.push(k.clone()),
                }
            }
        }
        t.slowest_steps.sort_by_key(|s| std::cmp::Reverse(s.0));
        t.slowest_steps.truncate(SLOWEST_STEPS);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_handler_steps_are_kept_slowest_first() {
        let stats = ServerStats::default();
        for ms in [5u64, 1, 9, 3, 7, 2, 8, 4, 6, 10, 11, 0] {
            stats.handler_step("h", 0, Duration::from_millis(ms));
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

    #[test]
    fn durations_fall_in_the_first_bucket_that_holds_them() {
        let stats = ServerStats::default();
        for ms in [0, 1, 2, 1000, 60_000] {
            stats.request_done(200, Duration::from_millis(ms));
        }
        let h = stats.snapshot().durations;
        // 0 ms and 1 ms (the bound itself) in the first two, 2 ms in le=0.0025, 1 s in le=1, a
        // minute beyond every bound.
        assert_eq!(h.counts[0], 1);
        assert_eq!(h.counts[1], 1);
        assert_eq!(h.counts[2], 1);
        assert_eq!(h.counts[DURATION_BUCKETS.len() - 4], 1);
        assert_eq!(h.counts[DURATION_BUCKETS.len()], 1);
        assert_eq!(h.count(), 5);
        assert_eq!(h.sum_nanos, 61_003_000_000);
        assert_eq!(stats.snapshot().responses[1], 5);
    }

    #[test]
    fn totals_add_every_worker_up() {
        let a = ServerStats::default();
        let b = ServerStats::default();
        a.request_started();
        a.request_done(200, Duration::from_millis(3));
        b.request_started();
        b.request_done(404, Duration::from_millis(3));
        b.connection_opened();
        let mut sa = a.snapshot();
        let mut sb = b.snapshot();
        sa.executor.turns = 5;
        sa.executor.resumes_by_kind = vec![("connection", 2)];
        sb.executor.turns = 7;
        sb.executor.resumes_by_kind = vec![("connection", 3), ("sleep", 1)];
        let t = StatsSnapshot::total([&sa, &sb]);
        assert_eq!(t.requests, 2);
        assert_eq!(t.responses, [0, 1, 0, 1, 0]);
        assert_eq!(t.connections_open, 1);
        assert_eq!(t.durations.count(), 2);
        assert_eq!(t.executor.turns, 12);
        assert_eq!(
            t.executor.resumes_by_kind,
            [("connection", 5), ("sleep", 1)]
        );
    }
}
