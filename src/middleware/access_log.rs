//! [`AccessLog`]: writes one Common Log Format line per request, without blocking the loop.
//!
//! Lines are appended to a buffer owned by the worker. The buffer is handed to a writer thread
//! once a second (by a timer task the log spawns on first use) or as soon as it passes
//! [`FLUSH_BYTES`], so a slow disk or a stalled terminal delays the writer thread, never the
//! loop.
//!
//! ```text
//! 127.0.0.1 - - [21/Nov/2026:01:02:03 +0000] "GET /echo HTTP/1.1" 200 13
//! ```

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use asycamore_executor::{Coroutine, Cx, Step};

use crate::response::date::civil_from_days;
use crate::service::{App, Environ, Exchange, Handler};

/// Buffered log bytes that trigger a hand-off before the next timer tick.
pub const FLUSH_BYTES: usize = 64 * 1024;

/// How often buffered lines are handed to the writer thread.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Where the lines of one worker go: its buffer, and the channel to the writer thread.
struct Sink {
    buffer: RefCell<Vec<u8>>,
    to_writer: mpsc::Sender<Vec<u8>>,
    flusher_running: Cell<bool>,
}

impl Sink {
    fn hand_off(&self) {
        let mut buffer = self.buffer.borrow_mut();
        if !buffer.is_empty() {
            // The writer thread outlives every worker; if it died, lines are dropped.
            let _ = self.to_writer.send(std::mem::take(&mut *buffer));
        }
    }
}

/// Middleware that logs every request the wrapped application handles.
pub struct AccessLog<A> {
    inner: A,
    sink: Rc<Sink>,
}

impl<A: App> AccessLog<A> {
    /// Logs `inner`'s requests to `out` (a file, or stdout for `-`), through a writer thread that
    /// this call starts.
    pub fn new(inner: A, out: Box<dyn Write + Send>) -> AccessLog<A> {
        AccessLog::with_writer(inner, spawn_writer(out))
    }

    /// Logs through an existing writer thread's channel (one per process, shared by workers).
    pub fn with_writer(inner: A, to_writer: mpsc::Sender<Vec<u8>>) -> AccessLog<A> {
        let sink = Sink {
            buffer: RefCell::new(Vec::with_capacity(FLUSH_BYTES)),
            to_writer,
            flusher_running: Cell::new(false),
        };
        AccessLog {
            inner,
            sink: Rc::new(sink),
        }
    }
}

/// Starts the thread that writes handed-off buffers to `out`; returns its channel.
pub fn spawn_writer(mut out: Box<dyn Write + Send>) -> mpsc::Sender<Vec<u8>> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || {
            for batch in rx {
                if out.write_all(&batch).and_then(|()| out.flush()).is_err() {
                    eprintln!("asycamore: cannot write the access log; dropping lines");
                }
            }
        })
        .ok();
    tx
}

impl<A: App> App for AccessLog<A> {
    fn handler(&self, environ: &mut Environ<'_>) -> Box<dyn Handler> {
        let request_line = format!(
            "{} {} {}",
            environ.request_method(),
            String::from_utf8_lossy(environ.target()),
            environ.server_protocol()
        );
        let remote = environ.remote().ip();
        let inner = self.inner.handler(environ);
        Box::new(Logged {
            inner,
            sink: Rc::clone(&self.sink),
            prefix: format!("{remote} - - "),
            request_line,
        })
    }
}

/// A handler whose completion is logged.
struct Logged {
    inner: Box<dyn Handler>,
    sink: Rc<Sink>,
    prefix: String,
    request_line: String,
}

impl Handler for Logged {
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
        let step = self.inner.resume(ex, cx);
        if step.is_ready() {
            let status = if ex.status() == 0 { 500 } else { ex.status() };
            let line = format!(
                "{}[{}] \"{}\" {} {}\n",
                self.prefix,
                clf_date(SystemTime::now()),
                self.request_line.escape_debug(),
                status,
                ex.body_bytes_sent()
            );
            let size = {
                let mut buffer = self.sink.buffer.borrow_mut();
                buffer.extend_from_slice(line.as_bytes());
                buffer.len()
            };
            if size >= FLUSH_BYTES {
                self.sink.hand_off();
            }
            if !self.sink.flusher_running.replace(true) {
                cx.spawn(Flusher {
                    sink: Rc::clone(&self.sink),
                    next: None,
                });
            }
        }
        step
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

/// The timer task that hands buffered lines off once a second.
struct Flusher {
    sink: Rc<Sink>,
    /// The next tick, once the first resume has set it.
    next: Option<std::time::Instant>,
}

impl Coroutine for Flusher {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        let now = cx.now();
        match self.next {
            Some(next) if now < next => {}
            _ => {
                self.sink.hand_off();
                self.next = Some(now + FLUSH_INTERVAL);
            }
        }
        if Rc::strong_count(&self.sink) == 1 {
            // The application is gone: nothing more will be logged.
            self.sink.hand_off();
            return Step::Ready(());
        }
        if let Some(next) = self.next {
            cx.wait_until(next);
        }
        Step::WouldBlock
    }

    fn kind(&self) -> &'static str {
        "access-log"
    }
}

/// `10/Oct/2000:13:55:36 +0000` for a moment (always UTC).
pub fn clf_date(at: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clf_dates() {
        let at = UNIX_EPOCH + Duration::from_secs(971_186_136);
        assert_eq!(clf_date(at), "10/Oct/2000:13:55:36 +0000");
    }
}
