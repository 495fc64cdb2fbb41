//! The request corpus in `tests/data/requests/`: every file in `valid/` must parse completely
//! (all its pipelined requests, with their bodies), matching the summary in its `.expect`
//! sidecar; every file in `invalid/` is named `NAME.STATUS.http` and must fail with that status.
//! Each file is fed whole, split at every point (a sample of points for large files), and one
//! byte at a time, and must give the same answer every way.

use std::path::{Path, PathBuf};

use asycamore::detect::{BodyDecoder, BodyEvent, Error, HeadDetector, Limits, RequestHead};
use asycamore::executor::Step;

/// One request as the corpus summarizes it: `METHOD TARGET VERSION BODY-BYTES TRAILERS`.
fn summary(head: &RequestHead, buf: &[u8], body: usize, trailers: usize) -> String {
    format!(
        "{} {} {} {body} {trailers}",
        head.method(buf),
        String::from_utf8_lossy(head.target(buf)),
        head.version().as_str()
    )
}

/// Runs a connection's read loop over `input` arriving in pieces that end at `ends`: heads,
/// bodies, pipelined requests, until the input is used up. `Ok` with one summary per request, or
/// the first error.
fn run(input: &[u8], ends: impl IntoIterator<Item = usize>) -> Result<Vec<String>, Error> {
    let limits = Limits::default();
    let mut ends = ends.into_iter().chain([input.len()]);
    let mut avail = ends.next().unwrap_or(input.len()).min(input.len());
    let mut detector = HeadDetector::new(limits);
    let mut head = RequestHead::new();
    let mut pos = 0;
    let mut out = Vec::new();
    'requests: while pos < input.len() {
        let n = loop {
            match detector.detect(&input[pos..avail], &mut head)? {
                (n, Step::Ready(())) => break n,
                (_, Step::WouldBlock) => match ends.next() {
                    Some(end) => avail = end.clamp(avail, input.len()),
                    None => break 'requests,
                },
            }
        };
        let head_buf = &input[pos..];
        let mut body = 0;
        let mut decoder = BodyDecoder::new(head.framing(), &limits);
        let mut at = pos + n;
        let trailers = loop {
            let (used, step) = decoder.decode(&input[at..avail])?;
            at += used;
            match step {
                Step::Ready(BodyEvent::ChunkStart { data, .. } | BodyEvent::Data(data)) => {
                    body += data.len()
                }
                Step::Ready(BodyEvent::End { trailers }) => break trailers.iter().count(),
                Step::WouldBlock => match ends.next() {
                    Some(end) => avail = end.clamp(avail, input.len()),
                    None => break 'requests,
                },
            }
        };
        out.push(summary(&head, head_buf, body, trailers));
        pos = at;
    }
    if pos < input.len() {
        out.push(format!("INCOMPLETE at {pos}"));
    }
    Ok(out)
}

/// Every way of feeding `input`: whole, split at every point (every 97th for large files), and
/// byte by byte; asserts they agree and returns the answer.
#[track_caller]
fn run_every_way(path: &Path, input: &[u8]) -> Result<Vec<String>, Error> {
    let once = run(input, []);
    let step = if input.len() > 4096 { 97 } else { 1 };
    for split in (0..=input.len()).step_by(step) {
        assert_eq!(
            run(input, [split]),
            once,
            "{}: split at {split}",
            path.display()
        );
    }
    assert_eq!(
        run(input, 0..input.len()),
        once,
        "{}: byte by byte",
        path.display()
    );
    once
}

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/requests")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "http"))
        .collect();
    files.sort();
    files
}

#[test]
fn valid_requests_parse_completely() {
    let files = files("valid");
    assert!(files.len() >= 25, "corpus too small: {}", files.len());
    for path in files {
        let input = std::fs::read(&path).unwrap();
        let got =
            run_every_way(&path, &input).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        let expect_path = path.with_extension("expect");
        let expected = std::fs::read_to_string(&expect_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expect_path.display()));
        let expected: Vec<&str> = expected.lines().collect();
        assert_eq!(got, expected, "{}", path.display());
    }
}

#[test]
fn invalid_requests_fail_with_their_status() {
    let files = files("invalid");
    assert!(files.len() >= 40, "corpus too small: {}", files.len());
    for path in files {
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let status: u16 = stem
            .rsplit('.')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{}: name must be NAME.STATUS.http", path.display()));
        let input = std::fs::read(&path).unwrap();
        match run_every_way(&path, &input) {
            Err(e) => {
                assert_eq!(e.status(), status, "{}: {e:?}", path.display());
                assert!(!e.reason().is_empty());
            }
            Ok(got) => panic!("{}: accepted as {got:?}, expected {status}", path.display()),
        }
    }
}
