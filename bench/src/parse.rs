//! The `parse` benchmark: what finding and parsing one request head costs us, next to calling
//! httparse directly on the same bytes.
//!
//! Two inputs: one typical browser-like head of about 300 bytes, and a buffer of 16 of them
//! back to back, as a pipelining client sends them. Three contenders, each run for the same time:
//!
//! - **asycamore**: [`HeadDetector::detect`] plus [`RequestHead::framing`] and
//!   [`RequestHead::keep_alive`], everything the connection does per head (end-of-head scan,
//!   limits, request line, httparse on the fields, ranges, framing, Host, Connection, Expect);
//! - **httparse**: `httparse::Request::parse` with an initialized array of 64 headers, the usual
//!   way to call it;
//! - **httparse (uninit)**: `ParserConfig::parse_request_with_uninit_headers`, its fastest form,
//!   which does nothing beyond tokenizing.
//!
//! The ratio is our time over the faster httparse's; the target is at most 1.3.

use std::hint::black_box;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

use argh::FromArgs;
use asycamore::detect::{HeadDetector, Limits, RequestHead};
use asycamore::executor::Step;
use asycamore::units::Millis;

/// Head-parse throughput: asycamore's HeadDetector next to raw httparse.
#[derive(FromArgs)]
#[argh(subcommand, name = "parse")]
pub struct ParseArgs {
    /// time per contender and input, split over interleaved rounds, e.g. 2s or 500ms; a bare
    /// number is milliseconds (default 2000)
    #[argh(option, default = "Millis(Duration::from_secs(2))")]
    millis: Millis,
    /// heads in the pipelined buffer (default 16)
    #[argh(option, default = "16")]
    depth: usize,
    /// instead of timing, parse the one head this many times and print the count: for
    /// instruction counts under `valgrind --tool=callgrind`, where (Ir(3N) - Ir(N)) / 2N is the
    /// cost of one head, start-up cancelled out
    #[argh(option)]
    count: Option<u64>,
}

/// Interleaved rounds per input; each contender's best round is reported.
const ROUNDS: u64 = 20;

/// A typical browser request head (323 bytes).
const HEAD: &[u8] = b"GET /search?q=asycamore&lang=en HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Connection: keep-alive\r\n\
\r\n";

/// One measurement: heads parsed and bytes covered in the time taken.
struct Figure {
    heads: u64,
    bytes: u64,
    elapsed: Duration,
}

impl Figure {
    fn ns_per_head(&self) -> f64 {
        self.elapsed.as_nanos() as f64 / self.heads as f64
    }

    fn print(&self, name: &str) {
        let secs = self.elapsed.as_secs_f64();
        println!(
            "  {name:<20} {:>12.0} heads/s {:>7.2} GB/s {:>8.1} ns/head",
            self.heads as f64 / secs,
            self.bytes as f64 / secs / 1e9,
            self.ns_per_head()
        );
    }
}

/// Runs `pass` (which parses the whole buffer and returns how many heads it found) repeatedly
/// for `millis`, after a warm-up.
fn measure(millis: u64, buf: &[u8], mut pass: impl FnMut(&[u8]) -> usize) -> Figure {
    for _ in 0..1000 {
        black_box(pass(black_box(buf)));
    }
    let budget = Duration::from_millis(millis);
    let (mut heads, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    loop {
        // Check the clock every 256 passes, not every pass.
        for _ in 0..256 {
            heads += black_box(pass(black_box(buf))) as u64;
            bytes += buf.len() as u64;
        }
        if start.elapsed() >= budget {
            break;
        }
    }
    Figure {
        heads,
        bytes,
        elapsed: start.elapsed(),
    }
}

/// Our side: everything the connection does per head.
fn ours(detector: &mut HeadDetector, head: &mut RequestHead, buf: &[u8]) -> usize {
    let (mut at, mut n) = (0, 0);
    while at < buf.len() {
        match detector.detect(&buf[at..], head) {
            Ok((len, Step::Ready(()))) => {
                black_box((head.framing(), head.keep_alive(), head.expects_continue()));
                at += len;
                n += 1;
            }
            _ => panic!("benchmark input must be valid"),
        }
    }
    n
}

/// httparse, called the usual way.
fn httparse_init(buf: &[u8]) -> usize {
    let (mut at, mut n) = (0, 0);
    while at < buf.len() {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[at..]) {
            Ok(httparse::Status::Complete(len)) => {
                black_box(&req);
                at += len;
                n += 1;
            }
            _ => panic!("benchmark input must be valid"),
        }
    }
    n
}

/// httparse with uninitialized headers, its fastest form.
fn httparse_uninit(buf: &[u8]) -> usize {
    let config = httparse::ParserConfig::default();
    let (mut at, mut n) = (0, 0);
    while at < buf.len() {
        let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 64];
        let mut req = httparse::Request::new(&mut []);
        match config.parse_request_with_uninit_headers(&mut req, &buf[at..], &mut headers) {
            Ok(httparse::Status::Complete(len)) => {
                black_box(&req);
                at += len;
                n += 1;
            }
            _ => panic!("benchmark input must be valid"),
        }
    }
    n
}

/// Runs the benchmark.
pub fn run(args: ParseArgs) -> Result<(), String> {
    if let Some(count) = args.count {
        let mut detector = HeadDetector::new(Limits::default());
        let mut head = RequestHead::new();
        let mut heads = 0u64;
        for _ in 0..count {
            heads += ours(&mut detector, &mut head, black_box(HEAD)) as u64;
        }
        println!("{heads} heads parsed");
        return Ok(());
    }
    let pipelined = HEAD.repeat(args.depth.max(1));
    let mut detector = HeadDetector::new(Limits::default());
    let mut head = RequestHead::new();
    for (label, buf) in [("one head", HEAD), ("pipelined", &pipelined[..])] {
        println!(
            "{label}: {} bytes, {} head(s) of {} bytes",
            buf.len(),
            buf.len() / HEAD.len(),
            HEAD.len()
        );
        // Interleave short runs of each contender and keep each one's best: on a shared machine
        // the load changes over a run, and it should not favour whoever ran at a quiet moment.
        let millis = u64::try_from(args.millis.get().as_millis()).unwrap_or(u64::MAX);
        let slice = (millis / ROUNDS).max(1);
        let mut best: [Option<Figure>; 3] = [None, None, None];
        for _ in 0..ROUNDS {
            let figures = [
                measure(slice, buf, |b| ours(&mut detector, &mut head, b)),
                measure(slice, buf, httparse_init),
                measure(slice, buf, httparse_uninit),
            ];
            for (slot, figure) in best.iter_mut().zip(figures) {
                if slot
                    .as_ref()
                    .is_none_or(|b| figure.ns_per_head() < b.ns_per_head())
                {
                    *slot = Some(figure);
                }
            }
        }
        let [Some(us), Some(init), Some(uninit)] = best else {
            return Err("no measurement".into());
        };
        us.print("asycamore");
        init.print("httparse");
        uninit.print("httparse (uninit)");
        let fastest = init.ns_per_head().min(uninit.ns_per_head());
        println!(
            "  ratio asycamore / fastest httparse: {:.2} (target <= 1.30); vs httparse: {:.2}",
            us.ns_per_head() / fastest,
            us.ns_per_head() / init.ns_per_head()
        );
    }
    Ok(())
}
