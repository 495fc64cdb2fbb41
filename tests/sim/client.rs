//! A simulated client: a coroutine on the same executor as the server, playing one [`Plan`] on a
//! simulated connection and recording everything it sent and saw ([`Observed`]) for the checker.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use asycamore::executor::net::Stream;
use asycamore::executor::sim::{Sim, SimStream};
use asycamore::executor::{Coroutine, Cx, Step};

use super::plan::{Ending, Gate, Kind, Plan, Timeouts};
use super::wire::Reader;

/// How a client's connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The server closed: end of stream at this time.
    Eof(Duration),
    /// An operation failed with a reset the client did not cause (an injected fault, or the
    /// server's reset).
    Reset(Duration),
    /// The client reset the connection itself, as planned.
    ResetByClient(Duration),
    /// The client closed, having every answer it expected.
    Closed(Duration),
    /// A non-reading client stopped waiting.
    GaveUp(Duration),
    /// The connection was refused (the listener was gone).
    Refused,
}

/// Everything one client sent and saw.
#[derive(Debug)]
pub struct Observed {
    /// The plan it played.
    pub plan: Plan,
    /// For each segment: when its first and last bytes were written (`None` if never sent).
    pub sent: Vec<Option<(Duration, Duration)>>,
    /// The responses, as read.
    pub reader: Reader,
    /// How it ended.
    pub end: End,
    /// When it connected.
    pub connected_at: Duration,
    /// When the server accepted the connection.
    pub accepted_at: Option<Duration>,
    /// When it stopped reading (a non-reader).
    pub stopped_reading_at: Option<Duration>,
    /// When the server closed its side, as the simulator saw it.
    pub peer_closed_at: Option<Duration>,
    /// When the server last wrote to it.
    pub last_received_at: Option<Duration>,
    /// A final response came while it waited for `100 Continue`: the rest was not sent.
    pub abandoned: bool,
    /// When a write failed because the server had gone (the rest was not sent).
    pub write_failed_at: Option<Duration>,
}

impl Observed {
    /// When the conversation ended, as far as the client knows.
    pub fn end_time(&self) -> Duration {
        match self.end {
            End::Eof(t)
            | End::Reset(t)
            | End::ResetByClient(t)
            | End::Closed(t)
            | End::GaveUp(t) => t,
            End::Refused => Duration::ZERO,
        }
    }
}

/// The shared list clients add their observations to.
pub type Observations = Rc<RefCell<Vec<Observed>>>;

/// Where the client is.
enum Phase {
    /// Not connected yet.
    Before,
    /// Connected: sending its segments and reading responses.
    Running(SimStream),
    /// Finished; its observation is recorded.
    Done,
}

/// Bytes read at a time.
const READ_PIECE: usize = 16 * 1024;

/// One simulated client.
pub struct Client {
    sim: Sim,
    listener: RawFd,
    base: Instant,
    timeouts: Timeouts,
    phase: Phase,
    observed: Option<Observed>,
    /// The segment being sent, how much of it is out, and when it may go.
    next: usize,
    offset: usize,
    send_at: Option<Duration>,
    /// When a non-reading client gives up waiting.
    horizon: Option<Duration>,
    /// A slow reader's next read.
    read_at: Duration,
    /// The write side has been shut ([`Ending::HalfClose`]).
    half_closed: bool,
    out: Observations,
}

impl Client {
    /// A client that will play `plan` against the listener `listener` of `sim`.
    pub fn new(
        sim: &Sim,
        listener: RawFd,
        plan: Plan,
        timeouts: Timeouts,
        out: &Observations,
    ) -> Client {
        let base = sim.now() - sim.elapsed();
        let segments = plan.segments.len();
        Client {
            sim: sim.clone(),
            listener,
            base,
            timeouts,
            phase: Phase::Before,
            observed: Some(Observed {
                plan,
                sent: vec![None; segments],
                reader: Reader::default(),
                end: End::Refused,
                connected_at: Duration::ZERO,
                accepted_at: None,
                stopped_reading_at: None,
                peer_closed_at: None,
                last_received_at: None,
                abandoned: false,
                write_failed_at: None,
            }),
            next: 0,
            offset: 0,
            send_at: None,
            horizon: None,
            read_at: Duration::ZERO,
            half_closed: false,
            out: Rc::clone(out),
        }
    }

    /// Records how it ended and hands the observation over.
    fn finish(&mut self, end: End, stream: Option<&SimStream>) -> Step<()> {
        let mut observed = self.observed.take().expect("finished once");
        observed.end = end;
        if let Some(stream) = stream {
            if stream.is_reset() && !matches!(end, End::ResetByClient(_)) {
                // Reset behind the client's back (a fault on the server's side of it).
                observed.end = End::Reset(observed.end_time());
            }
            observed.accepted_at = stream.accepted_at();
            observed.peer_closed_at = stream.peer_closed_at();
            observed.last_received_at = stream.last_received_at();
        }
        let heads: Vec<bool> = observed
            .plan
            .requests
            .iter()
            .map(|r| r.head_method)
            .collect();
        observed
            .reader
            .end(&|k| heads.get(k).copied().unwrap_or(false));
        self.out.borrow_mut().push(observed);
        self.phase = Phase::Done;
        Step::Ready(())
    }

    /// One pass over the connection: read what is there, send what may go. `Ok(progress)`, or
    /// `Err` with how the client ended.
    fn pass(&mut self, stream: &mut SimStream, cx: &mut Cx<'_>) -> Result<bool, End> {
        let now = cx.now() - self.base;
        let o = self.observed.as_mut().expect("running");
        let heads: Vec<bool> = o.plan.requests.iter().map(|r| r.head_method).collect();
        let is_head = |k: usize| heads.get(k).copied().unwrap_or(false);
        let mut progress = false;
        if o.stopped_reading_at.is_none() && now < self.read_at {
            cx.wait_until(self.base + self.read_at);
        } else if o.stopped_reading_at.is_none() {
            let mut buf = [0u8; READ_PIECE];
            let most = o
                .plan
                .read_pace
                .map_or(READ_PIECE, |(most, _)| most.min(READ_PIECE));
            match stream.read(&mut buf[..most]) {
                Ok(Step::Ready(0)) => return Err(End::Eof(now)),
                Ok(Step::Ready(n)) => {
                    o.reader.feed(&buf[..n], now, &is_head);
                    progress = true;
                    if let Some((_, pause)) = o.plan.read_pace {
                        self.read_at = now + pause;
                    }
                }
                Ok(Step::WouldBlock) => cx.wait_readable(stream.as_raw_fd()),
                Err(_) => return Err(End::Reset(now)),
            }
            if let Some(limit) = o.plan.stop_reading_after
                && o.reader.bytes().len() >= limit
            {
                o.stopped_reading_at = Some(now);
                let t = self.timeouts;
                self.horizon = Some(now + t.write + t.keepalive + Duration::from_secs(2));
            }
        }
        // Send what may go.
        while self.next < o.plan.segments.len() && !o.abandoned && o.write_failed_at.is_none() {
            if o.plan.reset_after == Some(self.next) {
                stream.reset();
                return Err(End::ResetByClient(now));
            }
            let segment = &o.plan.segments[self.next];
            let open = match segment.gate {
                Gate::None => true,
                Gate::Response(i) => o.reader.finals > i,
                Gate::Continue(i) => {
                    if o.reader.finals > i {
                        // A final answer instead of 100: the body is not wanted.
                        o.abandoned = true;
                        break;
                    }
                    o.reader.continued(i)
                }
            };
            if !open {
                break;
            }
            let at = *self.send_at.get_or_insert(now + segment.delay);
            if now < at {
                cx.wait_until(self.base + at);
                break;
            }
            match stream.write(&segment.bytes[self.offset..]) {
                Ok(Step::Ready(n)) => {
                    let first = o.sent[self.next].map_or(now, |(f, _)| f);
                    o.sent[self.next] = Some((first, now));
                    self.offset += n;
                    progress = true;
                    if self.offset == segment.bytes.len() {
                        self.next += 1;
                        self.offset = 0;
                        self.send_at = None;
                    }
                }
                Ok(Step::WouldBlock) => {
                    cx.wait_writable(stream.as_raw_fd());
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => {
                    return Err(End::Reset(now));
                }
                Err(_) => {
                    // The server is gone: nothing more goes out, but what it sent before it
                    // went is still to be read, up to the end of stream.
                    o.write_failed_at = Some(now);
                    break;
                }
            }
        }
        let sent_all = self.next == o.plan.segments.len() || o.abandoned;
        if sent_all && o.plan.ending == Ending::HalfClose && !self.half_closed {
            self.half_closed = true;
            let _ = stream.shutdown_write();
        }
        if sent_all && o.plan.reset_after == Some(self.next) {
            stream.reset();
            return Err(End::ResetByClient(now));
        }
        if let Some(horizon) = self.horizon {
            if now >= horizon {
                return Err(End::GaveUp(now));
            }
            cx.wait_until(self.base + horizon);
        }
        let answered = o.reader.finals >= o.plan.requests.len();
        if sent_all
            && (answered || o.abandoned)
            && o.plan.ending == Ending::Close
            && o.plan.kind != Kind::NonReader
        {
            return Err(End::Closed(now));
        }
        Ok(progress)
    }
}

impl Coroutine for Client {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Before => {
                    let connect_at = self.observed.as_ref().expect("running").plan.connect_at;
                    if cx.now() < self.base + connect_at {
                        cx.wait_until(self.base + connect_at);
                        self.phase = Phase::Before;
                        return Step::WouldBlock;
                    }
                    match self.sim.connect(self.listener) {
                        Ok(stream) => {
                            let connected_at = cx.now() - self.base;
                            self.observed.as_mut().expect("running").connected_at = connected_at;
                            self.phase = Phase::Running(stream);
                        }
                        Err(_) => return self.finish(End::Refused, None),
                    }
                }
                Phase::Running(mut stream) => match self.pass(&mut stream, cx) {
                    Err(end) => {
                        cx.clear_waits();
                        let step = self.finish(end, Some(&stream));
                        drop(stream);
                        return step;
                    }
                    Ok(progress) => {
                        self.phase = Phase::Running(stream);
                        if !progress {
                            return Step::WouldBlock;
                        }
                        cx.clear_waits();
                    }
                },
                Phase::Done => return Step::Ready(()),
            }
        }
    }

    fn kind(&self) -> &'static str {
        "client"
    }
}
