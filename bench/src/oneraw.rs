//! `oneraw`: sends one raw request exactly as given and prints the raw response — a debugging aid
//! for framing corner cases (bare LF, odd chunk extensions, pipelined pairs in one write).
//!
//! One coroutine, `Connecting → Talking → Done`: it writes every byte of the request while reading
//! whatever comes back, and stops when the server closes or nothing arrives for `--timeout`.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use argh::FromArgs;
use asycamore::executor::net::{Connect, TcpStream};
use asycamore::executor::{Coroutine, Cx, Executor, Step};
use asycamore::units::Seconds;

use crate::cli::{self, ToolError};
use crate::target::Target;

/// Send a raw request from FILE (or - for stdin) and print the raw response.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "oneraw")]
pub struct OneRawArgs {
    /// the server, host:port
    #[argh(positional)]
    pub server: String,
    /// file holding the request bytes, or - for stdin
    #[argh(positional)]
    pub file: String,
    /// silence after which reading stops, e.g. 2s or 500ms; a bare number is seconds
    /// (default 2s)
    #[argh(option, default = "Seconds(Duration::from_secs(2))")]
    pub timeout: Seconds,
}

/// Where the exchange is.
enum State {
    /// Connecting.
    Connecting(Connect),
    /// Writing `request[written..]` and reading the response; gives up at `deadline`.
    Talking {
        /// The connection.
        stream: TcpStream,
        /// Request bytes written so far.
        written: usize,
        /// When silence ends the exchange.
        deadline: Instant,
    },
    /// Finished.
    Done,
}

/// The exchange's task.
struct OneRaw {
    request: Vec<u8>,
    timeout: Duration,
    state: State,
    response: Rc<RefCell<(Vec<u8>, Option<io::Error>)>>,
}

impl Coroutine for OneRaw {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            let now = cx.now();
            match &mut self.state {
                State::Connecting(connect) => match connect.poll(cx) {
                    Ok(Step::WouldBlock) => return Step::WouldBlock,
                    Ok(Step::Ready(stream)) => {
                        cx.clear_waits();
                        self.state = State::Talking {
                            stream,
                            written: 0,
                            deadline: now + self.timeout,
                        };
                    }
                    Err(e) => {
                        self.response.borrow_mut().1 = Some(e);
                        self.state = State::Done;
                    }
                },
                State::Talking {
                    stream,
                    written,
                    deadline,
                } => {
                    if now >= *deadline {
                        self.state = State::Done;
                        continue;
                    }
                    let fd = stream.as_raw_fd();
                    let mut progress = false;
                    cx.clear_waits();
                    if *written < self.request.len() {
                        match stream.write(&self.request[*written..]) {
                            Ok(Step::Ready(n)) => {
                                *written += n;
                                progress = true;
                            }
                            Ok(Step::WouldBlock) => cx.wait_writable(fd),
                            Err(e) => {
                                self.response.borrow_mut().1 = Some(e);
                                self.state = State::Done;
                                continue;
                            }
                        }
                    }
                    let mut response = self.response.borrow_mut();
                    match stream.read_to_spare(&mut response.0) {
                        Ok(Step::Ready(0)) => {
                            drop(response);
                            self.state = State::Done;
                            continue;
                        }
                        Ok(Step::Ready(_)) => {
                            *deadline = now + self.timeout;
                            progress = true;
                        }
                        Ok(Step::WouldBlock) => cx.wait_readable(fd),
                        Err(e) => {
                            response.1 = Some(e);
                            drop(response);
                            self.state = State::Done;
                            continue;
                        }
                    }
                    if !progress {
                        cx.wait_until(*deadline);
                        return Step::WouldBlock;
                    }
                }
                State::Done => return Step::Ready(()),
            }
        }
    }

    fn kind(&self) -> &'static str {
        "oneraw"
    }
}

/// Sends `request` to `addr` and returns every byte received until the close or `timeout` of
/// silence, with the error that ended the exchange early, if any.
///
/// # Errors
/// If the executor cannot be created.
pub fn exchange(
    addr: SocketAddr,
    request: Vec<u8>,
    timeout: Duration,
) -> io::Result<(Vec<u8>, Option<io::Error>)> {
    let response = Rc::new(RefCell::new((Vec::new(), None)));
    let mut executor = Executor::new()?;
    executor.spawn(OneRaw {
        request,
        timeout,
        state: State::Connecting(TcpStream::connect(addr)),
        response: Rc::clone(&response),
    });
    executor.run()?;
    drop(executor);
    Rc::try_unwrap(response)
        .map(RefCell::into_inner)
        .map_err(|_| io::Error::other("the exchange task outlived its executor"))
}

/// The `oneraw` subcommand.
///
/// # Errors
/// A message if the request cannot be read or the exchange fails.
pub fn main(args: OneRawArgs) -> Result<(), ToolError> {
    let timeout = cli::positive("--timeout", args.timeout)?;
    let addr = Target::resolve(&args.server)
        .map_err(|e| ToolError::Usage(format!("{}: {e}", args.server)))?;
    let mut request = Vec::new();
    if args.file == "-" {
        io::stdin()
            .read_to_end(&mut request)
            .map_err(|e| format!("stdin: {e}"))?;
    } else {
        request = std::fs::read(&args.file).map_err(|e| format!("{}: {e}", args.file))?;
    }
    let (response, error) =
        exchange(addr, request, timeout).map_err(|e| format!("executor: {e}"))?;
    io::stdout()
        .write_all(&response)
        .and_then(|()| io::stdout().flush())
        .map_err(|e| format!("stdout: {e}"))?;
    match error {
        Some(e) if response.is_empty() => Err(ToolError::Failed(format!("{addr}: {e}"))),
        Some(e) => {
            eprintln!("oneraw: ended by {e}");
            Ok(())
        }
        None => Ok(()),
    }
}
