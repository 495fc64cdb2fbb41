//! `bulkfetch`: fetches many URLs concurrently and reports status, size and time for each.
//!
//! `-c` fetcher tasks share a queue of URLs; each is a state machine
//! `Idle → Connecting → Exchanging → Idle …`, one `GET` with `Connection: close` per URL, the
//! response checked by [`ResponseDetector`](crate::framing::ResponseDetector).

use std::cell::RefCell;
use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use argh::FromArgs;
use asycamore::executor::net::{Connect, TcpStream};
use asycamore::executor::{Coroutine, Cx, Executor, Step};
use asycamore::units::Seconds;

use crate::cli::{self, ToolError};
use crate::framing::ResponseDetector;
use crate::target::Target;

/// Fetch many URLs concurrently; print status, body size and time for each.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "bulkfetch")]
pub struct BulkFetchArgs {
    /// the URLs (http://host:port/path)
    #[argh(positional)]
    pub urls: Vec<String>,
    /// fetches at once (default 16)
    #[argh(option, short = 'c', default = "16")]
    pub concurrency: usize,
    /// time a fetch may go without progress, e.g. 5s or 500ms; a bare number is seconds
    /// (default 5s)
    #[argh(option, default = "Seconds(Duration::from_secs(5))")]
    pub timeout: Seconds,
}

/// How one fetch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A well-framed response: status and body bytes.
    Response {
        /// Status code.
        status: u16,
        /// Body bytes after de-chunking.
        body_len: u64,
    },
    /// Connect, I/O, framing or timeout error.
    Error(String),
}

/// The result of fetching one URL.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL as given.
    pub url: String,
    /// What happened.
    pub outcome: Outcome,
    /// Time from starting to connect until the response ended.
    pub elapsed: Duration,
}

/// Where a fetcher is.
enum State {
    /// Between URLs: take the next from the queue.
    Idle,
    /// Connecting for URL `index`.
    Connecting {
        /// Index of the URL.
        index: usize,
        /// The connect in progress.
        connect: Connect,
    },
    /// Sending the request and reading the response of URL `index`.
    Exchanging {
        /// Index of the URL.
        index: usize,
        /// The connection.
        stream: TcpStream,
        /// Request bytes written.
        written: usize,
        /// Unparsed response bytes.
        buffer: Vec<u8>,
        /// The response framing.
        detector: Box<ResponseDetector>,
        /// When silence ends the fetch.
        deadline: Instant,
    },
}

/// Everything the fetchers share.
struct Queue {
    targets: Vec<Result<Target, String>>,
    next: usize,
    started: Vec<Option<Instant>>,
    results: Vec<Option<(Outcome, Duration)>>,
}

/// One fetcher task.
struct Fetcher {
    queue: Rc<RefCell<Queue>>,
    timeout: Duration,
    state: State,
}

impl Fetcher {
    fn finish(&mut self, index: usize, outcome: Outcome, now: Instant) {
        let mut queue = self.queue.borrow_mut();
        let elapsed = queue.started[index].map_or(Duration::ZERO, |s| now - s);
        queue.results[index] = Some((outcome, elapsed));
        self.state = State::Idle;
    }
}

impl Coroutine for Fetcher {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            let now = cx.now();
            match &mut self.state {
                State::Idle => {
                    let mut queue = self.queue.borrow_mut();
                    let index = queue.next;
                    if index >= queue.targets.len() {
                        return Step::Ready(());
                    }
                    queue.next += 1;
                    queue.started[index] = Some(now);
                    match &queue.targets[index] {
                        Ok(target) => {
                            self.state = State::Connecting {
                                index,
                                connect: TcpStream::connect(target.addr),
                            };
                        }
                        Err(e) => {
                            queue.results[index] = Some((Outcome::Error(e.clone()), Duration::ZERO))
                        }
                    }
                }
                State::Connecting { index, connect } => {
                    let index = *index;
                    match connect.poll(cx) {
                        Ok(Step::WouldBlock) => return Step::WouldBlock,
                        Ok(Step::Ready(stream)) => {
                            cx.clear_waits();
                            self.state = State::Exchanging {
                                index,
                                stream,
                                written: 0,
                                buffer: Vec::with_capacity(16 * 1024),
                                detector: Box::default(),
                                deadline: now + self.timeout,
                            };
                        }
                        Err(e) => {
                            cx.clear_waits();
                            self.finish(index, Outcome::Error(format!("connect: {e}")), now);
                        }
                    }
                }
                State::Exchanging {
                    index,
                    stream,
                    written,
                    buffer,
                    detector,
                    deadline,
                } => {
                    let index = *index;
                    cx.clear_waits();
                    if now >= *deadline {
                        self.finish(index, Outcome::Error("timeout".into()), now);
                        continue;
                    }
                    let fd = stream.as_raw_fd();
                    let request = {
                        let queue = self.queue.borrow();
                        match &queue.targets[index] {
                            Ok(t) => format!(
                                "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                                t.path, t.host
                            ),
                            Err(_) => String::new(),
                        }
                    };
                    let mut progress = false;
                    if *written < request.len() {
                        match stream.write(&request.as_bytes()[*written..]) {
                            Ok(Step::Ready(n)) => {
                                *written += n;
                                progress = true;
                            }
                            Ok(Step::WouldBlock) => cx.wait_writable(fd),
                            Err(e) => {
                                self.finish(index, Outcome::Error(format!("write: {e}")), now);
                                continue;
                            }
                        }
                    }
                    match stream.read_to_spare(buffer) {
                        Ok(Step::Ready(0)) => {
                            let outcome = match detector.finish() {
                                Some(r) => Outcome::Response {
                                    status: r.status,
                                    body_len: r.body_len,
                                },
                                None => Outcome::Error("closed before a whole response".into()),
                            };
                            self.finish(index, outcome, now);
                            continue;
                        }
                        Ok(Step::Ready(_)) => {
                            *deadline = now + self.timeout;
                            progress = true;
                            let mut used = 0;
                            let step = detector.advance(buffer, &mut used);
                            buffer.drain(..used);
                            match step {
                                Ok(Step::Ready(r)) => {
                                    let outcome = Outcome::Response {
                                        status: r.status,
                                        body_len: r.body_len,
                                    };
                                    self.finish(index, outcome, now);
                                    continue;
                                }
                                Ok(Step::WouldBlock) => {}
                                Err(e) => {
                                    self.finish(
                                        index,
                                        Outcome::Error(format!("malformed: {e}")),
                                        now,
                                    );
                                    continue;
                                }
                            }
                        }
                        Ok(Step::WouldBlock) => cx.wait_readable(fd),
                        Err(e) => {
                            self.finish(index, Outcome::Error(format!("read: {e}")), now);
                            continue;
                        }
                    }
                    if !progress {
                        cx.wait_until(*deadline);
                        return Step::WouldBlock;
                    }
                }
            }
        }
    }

    fn kind(&self) -> &'static str {
        "bulkfetch"
    }
}

/// Fetches `urls` with `concurrency` fetchers; results in the order of `urls`.
///
/// # Errors
/// If the executor cannot be created or polling fails.
pub fn fetch_all(
    urls: &[String],
    concurrency: usize,
    timeout: Duration,
) -> io::Result<Vec<Fetched>> {
    let queue = Rc::new(RefCell::new(Queue {
        targets: urls
            .iter()
            .map(|u| Target::parse(u).map_err(|e| e.to_string()))
            .collect(),
        next: 0,
        started: vec![None; urls.len()],
        results: vec![None; urls.len()],
    }));
    let mut executor = Executor::new()?;
    for _ in 0..concurrency.clamp(1, urls.len().max(1)) {
        executor.spawn(Fetcher {
            queue: Rc::clone(&queue),
            timeout,
            state: State::Idle,
        });
    }
    executor.run()?;
    let queue = queue.borrow();
    Ok(urls
        .iter()
        .zip(&queue.results)
        .map(|(url, result)| {
            let (outcome, elapsed) = result
                .clone()
                .unwrap_or((Outcome::Error("not fetched".into()), Duration::ZERO));
            Fetched {
                url: url.clone(),
                outcome,
                elapsed,
            }
        })
        .collect())
}

/// The `bulkfetch` subcommand.
///
/// # Errors
/// A message for bad flags or a failed run; any fetch that failed makes the exit status non-zero.
pub fn main(args: BulkFetchArgs) -> Result<(), ToolError> {
    if args.urls.is_empty() {
        return Err(ToolError::Usage("give at least one URL".into()));
    }
    let timeout = cli::positive("--timeout", args.timeout)?;
    let results =
        fetch_all(&args.urls, args.concurrency, timeout).map_err(|e| format!("executor: {e}"))?;
    let mut failed = 0;
    println!("{:>6} {:>10} {:>9}  url", "status", "bytes", "ms");
    for f in &results {
        let ms = f.elapsed.as_secs_f64() * 1000.0;
        match &f.outcome {
            Outcome::Response { status, body_len } => {
                println!("{status:>6} {body_len:>10} {ms:>9.2}  {}", f.url);
            }
            Outcome::Error(e) => {
                failed += 1;
                println!("{:>6} {:>10} {ms:>9.2}  {}  ({e})", "ERR", "-", f.url);
            }
        }
    }
    if failed > 0 {
        Err(ToolError::Failed(format!(
            "{failed} of {} fetches failed",
            results.len()
        )))
    } else {
        Ok(())
    }
}
