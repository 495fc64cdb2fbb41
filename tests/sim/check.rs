//! The checker: what must hold of every client's conversation, whatever the seed.
//!
//! It reads the plan (what was asked, and what each request must be answered with) and the
//! observation (what was sent when, what came back when, how it ended), and reports every
//! violation as one line. The rules:
//!
//! - every response is well framed (the strict reader of `wire.rs`), and a response may be cut
//!   short only where the client caused it (a reset, a client that stopped reading);
//! - final responses answer the requests in order, each as its application must (status, body,
//!   byte count and CRC-32 for `upload`, the bytes sent for `echo`, no body for `HEAD`), and
//!   `sleep` no sooner than it slept;
//! - `100 Continue` only to HTTP/1.1 requests that expect it, at most once, never after the
//!   final status; a client waiting for it gets it, or a final status that does not need the
//!   body;
//! - `Connection: close` exactly when the rules require it (the client asked, a framing error,
//!   a body the client was never told to send); either way once a shutdown has begun;
//! - nothing after a response that closes, and nothing after a framing error;
//! - every request is answered unless something justifies it (a close said, a reset, a
//!   shutdown before the request was whole);
//! - each timeout fires at its configured virtual time, not before: the 408 of a stalled head,
//!   the 408 of a stalled upload body, the idle keep-alive close, the close of a client that does
//!   not read.

use std::time::Duration;

use asycamore::apps::hello::GREETING;

use super::client::{End, Observed};
use super::plan::{ExpectMode, Kind, Req, Route, Scenario, WS_ACCEPT, upload_summary};
use super::wire::Parsed;

/// How far a timeout may be from its configured time (the arithmetic is exact; this only
/// absorbs rounding to the millisecond).
const SLACK: Duration = Duration::from_millis(1);

/// What the checker knows of the run besides the clients.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// When the graceful shutdown began.
    pub shutdown_at: Option<Duration>,
}

/// Checks one client; every violation is one line that names the client.
pub fn client(scenario: &Scenario, run: &Run, o: &Observed) -> Vec<String> {
    let mut v = Violations {
        id: o.plan.id,
        lines: Vec::new(),
    };
    check_client(scenario, run, o, &mut v);
    v.lines
}

struct Violations {
    id: usize,
    lines: Vec<String>,
}

impl Violations {
    fn add(&mut self, what: String) {
        self.lines.push(format!("client {}: {what}", self.id));
    }
}

/// When request `i`'s bytes went out: (first byte, last head byte, last byte), if all were sent.
fn sent_times(o: &Observed, i: usize) -> Option<(Duration, Duration, Duration)> {
    let req = &o.plan.requests[i];
    let mut first = None;
    let mut head_done = None;
    let mut last = None;
    let mut offset = 0;
    for (k, segment) in o.plan.segments.iter().enumerate() {
        if o.plan.owner[k] != i {
            continue;
        }
        let (f, l) = o.sent[k]?;
        first.get_or_insert(f);
        offset += segment.bytes.len();
        if offset >= req.head_len && head_done.is_none() {
            head_done = Some(l);
        }
        last = Some(l);
    }
    Some((first?, head_done?, last?))
}

fn check_client(scenario: &Scenario, run: &Run, o: &Observed, v: &mut Violations) {
    let plan = &o.plan;
    let requests = &plan.requests;
    let cut_by_client =
        matches!(o.end, End::Reset(_) | End::ResetByClient(_)) || plan.kind == Kind::NonReader;
    if let Some(e) = &o.reader.error
        && !(cut_by_client && e.contains("cut short"))
    {
        v.add(format!("malformed response stream: {e}"));
        return;
    }
    let shutdown = run.shutdown_at;
    let after_shutdown = |at: Duration| shutdown.is_some_and(|s| at + SLACK >= s);
    let mut closed_after: Option<usize> = None;
    let mut finals = 0;
    for r in &o.reader.responses {
        let i = r.request;
        if let Some(c) = closed_after {
            v.add(format!(
                "a response ({}) after response {c}, which closed the connection",
                r.status
            ));
            return;
        }
        let Some(req) = requests.get(i) else {
            v.add(format!(
                "a {} response to no request (request {i})",
                r.status
            ));
            return;
        };
        if r.is_interim() {
            let continues = o
                .reader
                .responses
                .iter()
                .filter(|p| p.request == i && p.is_interim())
                .count();
            if r.status != 100 {
                v.add(format!("interim {} to request {i}", r.status));
            } else if req.expect == ExpectMode::None || req.http10 {
                v.add(format!(
                    "100 Continue to request {i}, which did not expect it"
                ));
            } else if continues > 1 {
                v.add(format!("{continues} 100 Continue to request {i}"));
            }
            continue;
        }
        finals += 1;
        let continued = o.reader.continued(i);
        let upgrade = matches!(req.route, Route::Ws | Route::Count(_));
        if upgrade && r.status == 503 && after_shutdown(r.head_at) {
            // No new stream during a shutdown: the grace period would only cut it.
            finals_refused_upgrade(v, r);
        } else {
            check_final(scenario, o, (i, req), r, continued, v);
        }
        let must_close = must_close(req, r);
        let may_close = after_shutdown(r.head_at) || cut_by_client;
        if r.says_close() && !must_close && !may_close {
            v.add(format!(
                "request {i} ({:?}): Connection: close without a reason",
                req.route
            ));
        }
        if !r.says_close() && must_close {
            v.add(format!(
                "request {i} ({:?}): the connection must close but the response does not say so",
                req.route
            ));
        }
        if req.http10 && !r.says_close() && r.header("connection") != Some("keep-alive") {
            v.add(format!(
                "request {i}: an HTTP/1.0 response kept alive without Connection: keep-alive"
            ));
        }
        if r.says_close() {
            closed_after = Some(i);
        }
    }
    if let (Some(req), Some(got)) = (requests.last(), o.reader.upgraded())
        && req.route == Route::Ws
    {
        check_ws_echo(req, got, shutdown.is_some(), cut_by_client, v);
    }
    if let (Some(req), Some(got)) = (requests.last(), o.reader.upgraded())
        && let Route::Count(n) = req.route
    {
        let want = format!("{n}\n");
        if got != want.as_bytes() && !(cut_by_client && want.as_bytes().starts_with(got)) {
            v.add(format!(
                "count tunnel: {:?} back where {want:?} was due",
                String::from_utf8_lossy(got)
            ));
        }
    }
    // Unanswered requests.
    if finals < requests.len() && !cut_by_client && !o.abandoned && o.end != End::Refused {
        let u = finals;
        let justified = closed_after.is_some()
            || (u > 0 && drains_too_much(scenario, &requests[u - 1]))
            || match sent_times(o, u) {
                // Never sent whole: a shutdown or the server's own close may come first.
                None => true,
                Some((_, _, last)) => {
                    after_shutdown(last)
                        || o.accepted_at.is_none_or(after_shutdown)
                        || u > 0
                            && o.reader
                                .responses
                                .last()
                                .is_some_and(|r| after_shutdown(r.done_at))
                }
            };
        if !justified {
            v.add(format!(
                "request {u} ({:?}) was sent whole and never answered ({:?})",
                requests[u].route, o.end
            ));
        }
    }
    check_ending(scenario, run, o, v);
}

/// The close a graceful shutdown makes the echo send (RFC 6455 §7.4.1: 1001, going away).
fn going_away() -> Vec<u8> {
    let mut frame = Vec::new();
    asycamore::ws::write_close(
        &mut frame,
        asycamore::ws::CloseCode::GOING_AWAY,
        "server shutting down",
    );
    frame
}

/// What the WebSocket echo sent after its 101: every frame of `req.ws_echo` in order; or,
/// after a shutdown began, the first of them and then a close 1001 at a frame boundary; or, for
/// a connection the client (or a fault) cut, a prefix of one of those.
fn check_ws_echo(req: &Req, got: &[u8], shutdown: bool, cut: bool, v: &mut Violations) {
    let frames = &req.ws_echo;
    let full: Vec<u8> = frames.concat();
    let fits = |want: &[u8]| got == want || cut && want.starts_with(got);
    if fits(&full) {
        return;
    }
    if shutdown {
        let bye = going_away();
        let mut prefix = Vec::new();
        for frame in frames {
            if fits(&[prefix.as_slice(), &bye].concat()) {
                return;
            }
            prefix.extend_from_slice(frame);
        }
    }
    let differs = got
        .iter()
        .zip(&full)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(full.len()));
    v.add(format!(
        "WebSocket echo: {} bytes back where {} were due (first difference at byte {differs}; shutdown {shutdown}, cut {cut})",
        got.len(),
        full.len()
    ));
}

/// True if the server must say `Connection: close` in `r`, its answer to `req`.
fn must_close(req: &Req, r: &Parsed) -> bool {
    let timed_out = r.status == 408;
    let body_withheld = req.expect != ExpectMode::None && req.has_body() && !req.reads_body();
    req.wants_close || matches!(req.route, Route::Invalid(_)) || timed_out || body_withheld
}

/// True if `req`'s body is more than the server discards to keep the connection (so it closes
/// after answering without reading it).
fn drains_too_much(scenario: &Scenario, req: &Req) -> bool {
    req.route == Route::Hello && req.body.len() as u64 > scenario.drain_limit
}

/// A refused upgrade must say why, and close.
fn finals_refused_upgrade(v: &mut Violations, r: &Parsed) {
    if !r.says_close() {
        v.add("a 503 to an upgrade during shutdown that keeps the connection".into());
    }
}

/// Checks `r`, the final response to request `i`, `req`.
fn check_final(
    scenario: &Scenario,
    o: &Observed,
    (i, req): (usize, &Req),
    r: &Parsed,
    continued: bool,
    v: &mut Violations,
) {
    let t = &scenario.timeouts;
    let last = i + 1 == o.plan.requests.len();
    // A stalled head or upload body: 408 at the configured time.
    if last && o.plan.kind == Kind::SlowHead {
        let Some(&(first, _)) = o
            .sent
            .iter()
            .zip(&o.plan.owner)
            .find(|(_, k)| **k == i)
            .and_then(|(s, _)| s.as_ref())
        else {
            return;
        };
        let start = o.accepted_at.map_or(first, |a| a.max(first));
        expect_at(v, "head timeout 408", r, 408, start + t.head);
        return;
    }
    if last && o.plan.kind == Kind::SlowBody {
        let last_byte = o
            .sent
            .iter()
            .zip(&o.plan.owner)
            .filter(|(_, k)| **k == i)
            .filter_map(|(s, _)| s.map(|(_, l)| l))
            .max()
            .unwrap_or_default();
        // The server reads those bytes once it has accepted the connection.
        let arrived = o.accepted_at.map_or(last_byte, |a| a.max(last_byte));
        expect_at(v, "body timeout 408", r, 408, arrived + t.body);
        return;
    }
    if r.status >= 500 && !matches!(req.route, Route::Invalid(_)) {
        v.add(format!(
            "request {i} ({:?}): {} {:?}",
            req.route,
            r.status,
            String::from_utf8_lossy(&r.body)
        ));
        return;
    }
    if req.expect == ExpectMode::Wait
        && req.has_body()
        && req.reads_body()
        && (200..300).contains(&r.status)
        && !continued
    {
        v.add(format!(
            "request {i} ({:?}) waited for 100 Continue and got {} without it",
            req.route, r.status
        ));
    }
    if req.expect == ExpectMode::Wait && !req.reads_body() && continued {
        v.add(format!(
            "request {i} ({:?}): 100 Continue from an app that never reads the body",
            req.route
        ));
    }
    match &req.route {
        Route::Count(_) => {
            if r.status != 101 || r.header("upgrade") != Some("count") {
                v.add(format!("count upgrade {i}: {}", r.status));
            }
        }
        Route::Ws => {
            if r.status != 101
                || r.header("upgrade") != Some("websocket")
                || r.header("sec-websocket-accept") != Some(WS_ACCEPT)
            {
                v.add(format!(
                    "WebSocket handshake {i}: {} with Upgrade {:?}, accept {:?}",
                    r.status,
                    r.header("upgrade"),
                    r.header("sec-websocket-accept")
                ));
            }
        }
        Route::Invalid(status) => {
            if r.status != *status {
                v.add(format!(
                    "invalid request {i}: {} instead of {status}",
                    r.status
                ));
            }
        }
        Route::Hello if req.has_body() || req.bytes.starts_with(b"POST") => {
            // `/` takes GET and HEAD only.
            if r.status != 405 || r.header("allow") != Some("GET, HEAD, OPTIONS") {
                v.add(format!(
                    "POST / {i}: {} with Allow {:?}",
                    r.status,
                    r.header("allow")
                ));
            }
        }
        Route::Hello => {
            let want: &[u8] = if req.head_method { b"" } else { GREETING };
            expect_body(v, i, req, r, want);
            if req.head_method && r.header("content-length") != Some("13") {
                v.add(format!(
                    "HEAD {i}: Content-Length {:?}",
                    r.header("content-length")
                ));
            }
        }
        Route::Echo => {
            expect_body(v, i, req, r, &req.body);
            let chunked_request = req.bytes[..req.head_len]
                .windows(26)
                .any(|w| w == b"Transfer-Encoding: chunked");
            if !chunked_request && r.header("content-length") != Some(&req.body.len().to_string()) {
                v.add(format!(
                    "echo {i}: Content-Length {:?}, sent {}",
                    r.header("content-length"),
                    req.body.len()
                ));
            }
        }
        Route::Upload => expect_body(v, i, req, r, upload_summary(req).as_bytes()),
        Route::Sleep(ms) => {
            expect_body(v, i, req, r, format!("slept {ms} ms\n").as_bytes());
            if let Some((_, head_done, _)) = sent_times(o, i)
                && r.done_at + SLACK < head_done + Duration::from_millis(*ms)
            {
                v.add(format!(
                    "sleep {i}: answered at {:?}, {ms} ms after {:?}",
                    r.done_at, head_done
                ));
            }
        }
    }
}

fn expect_body(v: &mut Violations, i: usize, req: &Req, r: &Parsed, want: &[u8]) {
    if r.status != 200 {
        v.add(format!(
            "request {i} ({:?}): status {}",
            req.route, r.status
        ));
    } else if r.body != want {
        v.add(format!(
            "request {i} ({:?}): body of {} bytes differs from the {} expected (first difference at {})",
            req.route,
            r.body.len(),
            want.len(),
            r.body.iter().zip(want).position(|(a, b)| a != b).unwrap_or(r.body.len().min(want.len()))
        ));
    }
}

fn expect_at(v: &mut Violations, what: &str, r: &Parsed, status: u16, at: Duration) {
    if r.status != status {
        v.add(format!("{what}: status {} instead of {status}", r.status));
    }
    if !r.says_close() {
        v.add(format!("{what}: no Connection: close"));
    }
    if r.done_at + SLACK < at || r.done_at > at + SLACK {
        v.add(format!("{what}: at {:?}, configured for {at:?}", r.done_at));
    }
}

/// The idle close and the close of a client that does not read: at their configured times.
fn check_ending(scenario: &Scenario, run: &Run, o: &Observed, v: &mut Violations) {
    let t = &scenario.timeouts;
    let shutdown_before = |at: Duration| run.shutdown_at.is_some_and(|s| s <= at + SLACK);
    let last_from_server = o.last_received_at.unwrap_or(o.connected_at);
    match (o.plan.kind, o.end) {
        // Nothing to time: never connected, or reset (by a fault, or by the client).
        (_, End::Refused | End::Reset(_) | End::ResetByClient(_)) => {}
        (Kind::NonReader, _) => {
            let Some(closed) = o.peer_closed_at else {
                v.add(format!(
                    "a client that stopped reading was never closed ({:?})",
                    o.end
                ));
                return;
            };
            // The output is stuck from the first write that moved nothing after the last that
            // did: no sooner than the last byte the client got, no later than the last request
            // the client sent (whose answer is what got stuck).
            let last_sent = o
                .sent
                .iter()
                .flatten()
                .map(|&(_, l)| l)
                .max()
                .unwrap_or_default();
            let earliest = last_from_server + t.write;
            let latest = last_from_server.max(last_sent) + t.write;
            if !shutdown_before(closed) && (closed + SLACK < earliest || closed > latest + SLACK) {
                v.add(format!(
                    "write timeout: closed at {closed:?}, last write {last_from_server:?}, last request {last_sent:?}, configured {:?}",
                    t.write
                ));
            }
        }
        (Kind::Pipelined | Kind::Sequential, End::Eof(at)) => {
            let answered = o.reader.finals >= o.plan.requests.len();
            let closing = o.reader.responses.last().is_some_and(Parsed::says_close);
            let drained_too_much = o
                .plan
                .requests
                .last()
                .is_some_and(|r| drains_too_much(scenario, r));
            if answered
                && !closing
                && !drained_too_much
                && !shutdown_before(at)
                && o.reader.error.is_none()
            {
                // Idle once the last response is out and the last body (one the application did
                // not read, say) has been taken.
                let last_sent = o
                    .sent
                    .iter()
                    .flatten()
                    .map(|&(_, l)| l)
                    .max()
                    .unwrap_or_default();
                let idle_since = last_from_server.max(last_sent);
                let want = idle_since + t.keepalive;
                if at + SLACK < want || at > want + SLACK {
                    v.add(format!("keep-alive timeout: closed at {at:?}, idle since {idle_since:?}, configured {:?}", t.keepalive));
                }
            }
        }
        _ => {}
    }
}
