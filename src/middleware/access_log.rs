//! [`AccessLog`]: one line per request — Common Log Format, Combined, or JSON — written without
//! blocking the loop and without losing a line.
//!
//! ```text
//! common:   127.0.0.1 - - [21/Nov/2026:01:02:03 +0000] "GET /echo HTTP/1.1" 200 13
//! combined: 127.0.0.1 - - [21/Nov/2026:01:02:03 +0000] "GET /echo HTTP/1.1" 200 13 "-" "curl/8.5.0"
//! json:     {"remote_addr":"127.0.0.1","time":"2026-11-21T01:02:03Z","request":"GET /echo HTTP/1.1","status":200,"bytes":13,"referer":"-","user_agent":"curl/8.5.0","duration_us":87}
//! ```
//!
//! With [`LineFormat::duration`], common and combined lines end with the request's duration in
//! microseconds, as Apache's `%D` does; JSON lines always carry it as `duration_us`. A field
//! that is absent (no Referer, a request rejected before its request line arrived) is `-`; the
//! client of a Unix-domain socket, which has no address, is `unix:`, as nginx writes it. The
//! duration runs from the parsed head to the end of the response on the worker's loop clock
//! (read once per turn, so a request answered in the turn it arrived shows 0).
//!
//! Requests the connection answered itself — a rejected head (400, 414, 431, 501, 505), a head
//! that timed out (408) — are logged too, through [`App::rejected`].
//!
//! # Where the lines go
//!
//! Lines are appended to a buffer owned by the worker. The buffer is handed to the writer thread
//! once a second (by a timer task the log spawns on first use), as soon as it passes
//! [`FLUSH_BYTES`], and when the worker's application is dropped as the worker ends; so a slow
//! disk or a stalled terminal delays the writer thread, never the loop. Each hand-off holds
//! whole lines and the writer writes each one with a single call, so lines from several workers
//! interleave but are never cut.
//!
//! [`LogWriter::finish`] (also run on drop) waits for the writer to write everything it was
//! handed; the binary calls it after the last worker has returned, so every request answered
//! before the exit is in the log.
//!
//! # Rotation
//!
//! logrotate's convention: it moves the file away and signals the server (SIGUSR1 or SIGHUP),
//! and [`Reopener::reopen`] makes the writer open the path anew. Lines handed off before the
//! reopen land in the moved file, later ones in the new file: none is lost or written twice.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::str::FromStr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use executor::{Coroutine, Cx, Step};

use crate::json::json_string;
use crate::response::date::civil_from_days;
use crate::service::{App, Environ, Exchange, Handler, Rejected};

/// Buffered log bytes that trigger a hand-off before the next timer tick.
pub const FLUSH_BYTES: usize = 64 * 1024;

/// How often buffered lines are handed to the writer thread.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// The shape of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// The Common Log Format (NCSA): host, identity, user, time, request line, status, bytes.
    #[default]
    Common,
    /// Common plus the quoted `Referer` and `User-Agent` (Apache's and nginx's `combined`).
    Combined,
    /// One JSON object per line, with keys log processors know.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s {
            "common" => Ok(LogFormat::Common),
            "combined" => Ok(LogFormat::Combined),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown access log format {other:?} (expected common, combined or json)"
            )),
        }
    }
}

/// What each line carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineFormat {
    /// The shape.
    pub format: LogFormat,
    /// End common and combined lines with the duration in microseconds (JSON always has it).
    pub duration: bool,
}

/// Where the writer thread writes.
pub enum Destination {
    /// Standard output (`--access-log -`); reopening does nothing.
    Stdout,
    /// A file opened for appending (created if missing), reopened at the same path on request.
    File(PathBuf),
    /// Any writer (tests); reopening does nothing.
    Writer(Box<dyn Write + Send>),
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Stdout => f.write_str("Stdout"),
            Destination::File(path) => f.debug_tuple("File").field(path).finish(),
            Destination::Writer(_) => f.write_str("Writer"),
        }
    }
}

/// What workers and the signal thread send the writer thread.
enum Message {
    /// Whole lines to append.
    Lines(Vec<u8>),
    /// Open the file's path anew (after logrotate moved it).
    Reopen,
    /// Everything is sent: write what is queued and end.
    Close,
}

/// The writer thread: one per log, shared by every worker.
#[derive(Debug)]
pub struct LogWriter {
    to_writer: mpsc::Sender<Message>,
    thread: Option<JoinHandle<()>>,
    line: LineFormat,
}

impl LogWriter {
    /// Opens `path` for appending (`-` for standard output) and starts the writer thread.
    ///
    /// # Errors
    /// If the file cannot be opened or the thread cannot be started.
    pub fn open(path: &str, line: LineFormat) -> io::Result<LogWriter> {
        if path == "-" {
            LogWriter::spawn(Destination::Stdout, line)
        } else {
            LogWriter::spawn(Destination::File(PathBuf::from(path)), line)
        }
    }

    /// Starts the writer thread for `destination`.
    ///
    /// # Errors
    /// If a file destination cannot be opened or the thread cannot be started.
    pub fn spawn(destination: Destination, line: LineFormat) -> io::Result<LogWriter> {
        let output = match destination {
            Destination::Stdout => Output::Other(Box::new(io::stdout())),
            Destination::Writer(w) => Output::Other(w),
            Destination::File(path) => {
                let file = open_append(&path)?;
                Output::File { path, file }
            }
        };
        let (to_writer, from_workers) = mpsc::channel();
        let thread = crate::signal::mask::spawn_thread("access-log".into(), move || {
            write_all(output, &from_workers)
        })?;
        Ok(LogWriter {
            to_writer,
            thread: Some(thread),
            line,
        })
    }

    /// The channel an [`AccessLog`] hands its lines through (one per worker, cloned).
    pub fn channel(&self) -> LogChannel {
        LogChannel {
            to_writer: self.to_writer.clone(),
            line: self.line,
        }
    }

    /// A handle that asks the writer to reopen its file, from any thread.
    pub fn reopener(&self) -> Reopener {
        Reopener {
            to_writer: self.to_writer.clone(),
        }
    }

    /// Waits until the writer has written every line handed to it so far, then stops it. Call
    /// it once every worker has returned (their last lines are handed off as they end).
    pub fn finish(mut self) {
        self.close();
    }

    fn close(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.to_writer.send(Message::Close);
            let _ = thread.join();
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.close();
    }
}

/// Where an [`AccessLog`] sends its lines, and how it formats them.
#[derive(Debug, Clone)]
pub struct LogChannel {
    to_writer: mpsc::Sender<Message>,
    line: LineFormat,
}

/// Asks a [`LogWriter`] to reopen its file.
#[derive(Debug, Clone)]
pub struct Reopener {
    to_writer: mpsc::Sender<Message>,
}

impl Reopener {
    /// Reopens the log file at its path once the lines handed off before this call are written.
    pub fn reopen(&self) {
        // After `finish`, nothing is left to reopen.
        let _ = self.to_writer.send(Message::Reopen);
    }
}

/// Opens `path` for appending, creating it if it is missing.
fn open_append(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// What the writer thread writes to.
enum Output {
    /// A file it can reopen.
    File {
        /// Its path.
        path: PathBuf,
        /// The open file, appending.
        file: File,
    },
    /// Standard output or another writer.
    Other(Box<dyn Write + Send>),
}

impl Output {
    fn write_batch(&mut self, batch: &[u8]) -> io::Result<()> {
        match self {
            // One write(2) per batch on an O_APPEND file: whole lines land at the end even when
            // another process (the other side of a restart) appends to the same file.
            Output::File { file, .. } => file.write_all(batch),
            Output::Other(w) => w.write_all(batch).and_then(|()| w.flush()),
        }
    }

    fn reopen(&mut self) {
        if let Output::File { path, file } = self {
            match open_append(path) {
                Ok(new) => *file = new,
                Err(e) => eprintln!(
                    "asycamore: cannot reopen the access log {}: {e}; still writing to the old file",
                    path.display()
                ),
            }
        }
    }
}

/// The writer thread's loop: until `Close` (or every sender is gone).
fn write_all(mut output: Output, from_workers: &mpsc::Receiver<Message>) {
    let mut failing = false;
    for message in from_workers {
        match message {
            Message::Lines(batch) => match output.write_batch(&batch) {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    // Once per failing stretch, not once per batch.
                    eprintln!("asycamore: cannot write the access log ({e}); dropping lines");
                    failing = true;
                }
                Err(_) => {}
            },
            Message::Reopen => output.reopen(),
            Message::Close => break,
        }
    }
}

/// Where the lines of one worker go: its buffer, and the channel to the writer thread.
struct Sink {
    buffer: RefCell<Vec<u8>>,
    to_writer: mpsc::Sender<Message>,
    line: LineFormat,
    flusher_running: Cell<bool>,
}

impl Sink {
    fn hand_off(&self) {
        let mut buffer = self.buffer.borrow_mut();
        if !buffer.is_empty() {
            // The writer thread outlives every worker; if it died, lines are dropped.
            let _ = self
                .to_writer
                .send(Message::Lines(std::mem::take(&mut *buffer)));
        }
    }

    /// Appends the line for `entry`; hands the buffer off once it is large.
    fn log(&self, entry: &Entry<'_>) {
        let size = {
            let mut buffer = self.buffer.borrow_mut();
            write_line(&mut buffer, self.line, entry);
            buffer.len()
        };
        if size >= FLUSH_BYTES {
            self.hand_off();
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // The worker's application is gone (the worker is ending): its last lines go now.
        self.hand_off();
    }
}

/// Middleware that logs every request the wrapped application handles, and every request the
/// connection rejected.
pub struct AccessLog<A> {
    inner: A,
    sink: Rc<Sink>,
}

impl<A: App> AccessLog<A> {
    /// Logs `inner`'s requests through `channel` (from [`LogWriter::channel`]).
    pub fn new(inner: A, channel: LogChannel) -> AccessLog<A> {
        let sink = Sink {
            buffer: RefCell::new(Vec::with_capacity(FLUSH_BYTES)),
            to_writer: channel.to_writer,
            line: channel.line,
            flusher_running: Cell::new(false),
        };
        AccessLog {
            inner,
            sink: Rc::new(sink),
        }
    }
}

impl<A: App> App for AccessLog<A> {
    fn methods(&self) -> Option<&[crate::service::Method]> {
        self.inner.methods()
    }

    fn handler(&self, environ: &mut Environ<'_>) -> Box<dyn Handler> {
        let request_line = format!(
            "{} {} {}",
            environ.request_method(),
            String::from_utf8_lossy(environ.target()),
            environ.server_protocol()
        );
        let wants_headers = self.sink.line.format != LogFormat::Common;
        let header = |name| {
            environ
                .header(name)
                .filter(|_| wants_headers)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let referer = header("referer");
        let user_agent = header("user-agent");
        let remote = environ.remote().map(|a| a.ip());
        let inner = self.inner.handler(environ);
        Box::new(Logged {
            inner,
            sink: Rc::clone(&self.sink),
            remote,
            request_line,
            referer,
            user_agent,
            started: None,
        })
    }

    fn rejected(&self, rejected: &Rejected<'_>) {
        let request_line = rejected.request_line.map(String::from_utf8_lossy);
        self.sink.log(&Entry {
            remote: rejected.remote.map(|a| a.ip()),
            at: SystemTime::now(),
            request_line: request_line.as_deref(),
            status: rejected.status,
            bytes: rejected.body_bytes,
            referer: None,
            user_agent: None,
            duration: rejected.duration,
        });
        if !self.sink.flusher_running.get() {
            // No timer task yet (one is spawned from a handler, which has a `cx`): rejections
            // are rare, so this line goes to the writer at once rather than wait for one.
            self.sink.hand_off();
        }
        self.inner.rejected(rejected);
    }
}

/// One line's fields.
struct Entry<'a> {
    /// `None` over a Unix-domain socket.
    remote: Option<IpAddr>,
    at: SystemTime,
    request_line: Option<&'a str>,
    status: u16,
    bytes: u64,
    referer: Option<&'a str>,
    user_agent: Option<&'a str>,
    duration: Duration,
}

/// The client field of a line: its IP address, or `unix:` for a Unix-domain socket's client.
struct Client(Option<IpAddr>);

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("unix:"),
        }
    }
}

/// Appends the line for `e` in `line`'s format to `out`.
fn write_line(out: &mut Vec<u8>, line: LineFormat, e: &Entry<'_>) {
    let micros = u64::try_from(e.duration.as_micros()).unwrap_or(u64::MAX);
    // Writing into a Vec cannot fail.
    let _ = match line.format {
        LogFormat::Common | LogFormat::Combined => {
            let quoted =
                |s: Option<&str>| s.map_or_else(|| "-".into(), |s| s.escape_debug().to_string());
            let _ = write!(
                out,
                "{} - - [{}] \"{}\" {} {}",
                Client(e.remote),
                clf_date(e.at),
                quoted(e.request_line),
                e.status,
                e.bytes
            );
            if line.format == LogFormat::Combined {
                let _ = write!(
                    out,
                    " \"{}\" \"{}\"",
                    quoted(e.referer),
                    quoted(e.user_agent)
                );
            }
            if line.duration {
                let _ = write!(out, " {micros}");
            }
            writeln!(out)
        }
        LogFormat::Json => {
            let string = |s: Option<&str>| json_string(s.unwrap_or("-"));
            writeln!(
                out,
                concat!(
                    "{{\"remote_addr\":\"{}\",\"time\":\"{}\",\"request\":{},\"status\":{},",
                    "\"bytes\":{},\"referer\":{},\"user_agent\":{},\"duration_us\":{}}}"
                ),
                Client(e.remote),
                iso_date(e.at),
                string(e.request_line),
                e.status,
                e.bytes,
                string(e.referer),
                string(e.user_agent),
                micros
            )
        }
    };
}

/// A handler whose completion is logged.
struct Logged {
    inner: Box<dyn Handler>,
    sink: Rc<Sink>,
    remote: Option<IpAddr>,
    request_line: String,
    referer: Option<String>,
    user_agent: Option<String>,
    /// The loop's clock at the first resume: the turn the head was parsed in.
    started: Option<Instant>,
}

impl Handler for Logged {
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
        let started = *self.started.get_or_insert_with(|| cx.now());
        let step = self.inner.resume(ex, cx);
        if step.is_ready() {
            let status = if ex.status() == 0 { 500 } else { ex.status() };
            self.sink.log(&Entry {
                remote: self.remote,
                at: SystemTime::now(),
                request_line: Some(&self.request_line),
                status,
                bytes: ex.body_bytes_sent(),
                referer: self.referer.as_deref(),
                user_agent: self.user_agent.as_deref(),
                duration: cx.now().saturating_duration_since(started),
            });
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
    next: Option<Instant>,
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

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// (year, month 1-12, day, hour, minute, second) in UTC.
fn civil(at: SystemTime) -> (i64, u32, u32, u64, u64, u64) {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    (
        year,
        month as u32,
        day as u32,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
    )
}

/// `10/Oct/2000:13:55:36 +0000` for a moment (always UTC).
pub fn clf_date(at: SystemTime) -> String {
    let (year, month, day, h, m, s) = civil(at);
    let name = MONTHS[(month as usize).clamp(1, 12) - 1];
    format!("{day:02}/{name}/{year}:{h:02}:{m:02}:{s:02} +0000")
}

/// `2000-10-10T13:55:36Z` (ISO 8601 / RFC 3339, UTC) for a moment.
pub fn iso_date(at: SystemTime) -> String {
    let (year, month, day, h, m, s) = civil(at);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn clf_dates() {
        let at = UNIX_EPOCH + Duration::from_secs(971_186_136);
        assert_eq!(clf_date(at), "10/Oct/2000:13:55:36 +0000");
        assert_eq!(iso_date(at), "2000-10-10T13:55:36Z");
    }

    fn entry(request_line: Option<&str>) -> Entry<'_> {
        Entry {
            remote: Some(IpAddr::from([127, 0, 0, 1])),
            at: UNIX_EPOCH + Duration::from_secs(971_186_136),
            request_line,
            status: 200,
            bytes: 13,
            referer: None,
            user_agent: Some("curl/8 \"x\""),
            duration: Duration::from_micros(1234),
        }
    }

    fn line(format: LogFormat, duration: bool, e: &Entry<'_>) -> String {
        let mut out = Vec::new();
        write_line(&mut out, LineFormat { format, duration }, e);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_format_writes_one_whole_line() {
        let e = entry(Some("GET / HTTP/1.1"));
        assert_eq!(
            line(LogFormat::Common, false, &e),
            "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 200 13\n"
        );
        assert_eq!(
            line(LogFormat::Combined, true, &e),
            "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 200 13 \"-\" \"curl/8 \\\"x\\\"\" 1234\n"
        );
        assert_eq!(
            line(LogFormat::Json, false, &e),
            concat!(
                "{\"remote_addr\":\"127.0.0.1\",\"time\":\"2000-10-10T13:55:36Z\",",
                "\"request\":\"GET / HTTP/1.1\",\"status\":200,\"bytes\":13,\"referer\":\"-\",",
                "\"user_agent\":\"curl/8 \\\"x\\\"\",\"duration_us\":1234}\n"
            )
        );
        // No request line: `-`; a hostile one stays on its line.
        assert!(line(LogFormat::Common, false, &entry(None)).contains("] \"-\" 200"));
        let hostile = line(LogFormat::Common, false, &entry(Some("GET /\n\"x")));
        assert_eq!(hostile.lines().count(), 1, "{hostile}");
        let hostile = line(LogFormat::Json, false, &entry(Some("GET /\n\"x")));
        assert_eq!(hostile.lines().count(), 1, "{hostile}");
    }

    #[test]
    fn formats_parse_and_unknown_ones_are_refused() {
        assert_eq!("combined".parse(), Ok(LogFormat::Combined));
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        let err = "apache".parse::<LogFormat>().unwrap_err();
        assert!(err.contains("unknown access log format"), "{err}");
    }

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn finishing_writes_what_a_dropped_log_held() {
        let out = Shared::default();
        let writer = LogWriter::spawn(
            Destination::Writer(Box::new(out.clone())),
            LineFormat::default(),
        )
        .unwrap();
        let log = AccessLog::new(crate::apps::Hello, writer.channel());
        let peer = crate::service::Peer {
            remote: "127.0.0.1:5000".parse().ok(),
            local: "127.0.0.1:80".parse().ok(),
        };
        crate::service::rejected::report(
            &log,
            &peer,
            (400, "bad request"),
            b"GET /x HTTP/1.1\r\nBad\r\n",
            None,
            Instant::now(),
        );
        // Hand-offs without a flusher go at once; the rest leaves when the log is dropped.
        log.sink.log(&entry(Some("GET /y HTTP/1.1")));
        drop(log);
        writer.finish();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with("\"GET /x HTTP/1.1\" 400 12"), "{text}");
        assert!(lines[1].contains("\"GET /y HTTP/1.1\" 200 13"), "{text}");
    }

    #[test]
    fn reopening_follows_a_moved_file() {
        let dir = std::env::temp_dir().join(format!("asycamore-reopen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let writer = LogWriter::open(path.to_str().unwrap(), LineFormat::default()).unwrap();
        let send = |text: &str| {
            writer
                .to_writer
                .send(Message::Lines(text.as_bytes().to_vec()))
                .unwrap();
        };
        send("one\n");
        std::fs::rename(&path, dir.join("access.log.1")).unwrap();
        send("two\n"); // still the moved file: the writer has not been told yet
        writer.reopener().reopen();
        send("three\n");
        writer.finish();
        assert_eq!(
            std::fs::read_to_string(dir.join("access.log.1")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
