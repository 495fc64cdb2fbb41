//! Property tests: a random valid request (head, body framed by Content-Length or chunked at
//! random sizes with random extensions, trailers), followed by a pipelined request and split at
//! random points, must come back out of the detectors exactly as it went in; a naive one-shot
//! oracle, written for clarity rather than speed, must agree.

mod detect_util;

use asycamore::detect::{BodyDecoder, BodyEvent, HeadDetector, Limits, RequestHead};
use asycamore::executor::Step;
use proptest::prelude::*;

/// A request as generated, before serialization.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    /// The `Host` value.
    host: String,
    http10: bool,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// `None`: Content-Length. `Some`: chunked, with these chunk sizes (summing to the body).
    chunks: Option<Vec<usize>>,
    /// Extensions for each chunk and the last chunk (cycled).
    extensions: Vec<String>,
    trailers: Vec<(String, String)>,
}

const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: next\r\n\r\n";

impl Request {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let version = if self.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        out.extend_from_slice(
            format!(
                "{} {} {version}\r\nHost: {}\r\n",
                self.method, self.target, self.host
            )
            .as_bytes(),
        );
        for (n, v) in &self.headers {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        match &self.chunks {
            None => out.extend_from_slice(
                format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes(),
            ),
            Some(_) => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n"),
        }
        match &self.chunks {
            None => out.extend_from_slice(&self.body),
            Some(sizes) => {
                let mut at = 0;
                let mut ext = self.extensions.iter().cycle();
                for &size in sizes {
                    out.extend_from_slice(
                        format!("{size:x}{}\r\n", ext.next().map_or("", String::as_str)).as_bytes(),
                    );
                    out.extend_from_slice(&self.body[at..at + size]);
                    out.extend_from_slice(b"\r\n");
                    at += size;
                }
                out.extend_from_slice(
                    format!("0{}\r\n", ext.next().map_or("", String::as_str)).as_bytes(),
                );
                for (n, v) in &self.trailers {
                    out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
}

fn field_name() -> impl Strategy<Value = String> {
    // Not one of the names with framing meaning, which the generator writes itself.
    token().prop_filter("framing field", |n| {
        ![
            "host",
            "content-length",
            "transfer-encoding",
            "connection",
            "expect",
        ]
        .contains(&n.to_ascii_lowercase().as_str())
    })
}

fn field_value() -> impl Strategy<Value = String> {
    // Visible characters and inner spaces; no leading or trailing whitespace, which is trimmed.
    prop_oneof!["", "[!-~]([ -~]{0,30}[!-~])?", "caf\u{e9} [a-z]{1,5}"]
}

/// A `Host` value of each kind RFC 3986 §3.2.2 allows, with and without a port.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z0-9-]{1,10}(\\.[a-z0-9-]{1,10}){0,3}(:[0-9]{1,5})?",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(:[0-9]{1,5})?",
        "\\[(::1|2001:db8::[0-9a-f]{1,4}|::ffff:192\\.0\\.2\\.1)\\](:[0-9]{1,5})?",
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (
        // Any token but CONNECT, which takes an authority-form target (RFC 9112 §3.2.3).
        prop_oneof![
            Just("GET".to_owned()),
            Just("POST".to_owned()),
            token().prop_filter("CONNECT", |m| m != "CONNECT")
        ],
        // Origin-form, or absolute-form, which any method but CONNECT may use.
        prop_oneof![
            "/[a-zA-Z0-9/?=&%._~-]{0,40}",
            "(http|https)://[a-z0-9.-]{1,20}(:[0-9]{1,5})?(/[a-zA-Z0-9/?=&%._~-]{0,30})?",
        ],
        host(),
        any::<bool>(),
        prop::collection::vec((field_name(), field_value()), 0..12),
        prop::collection::vec(any::<u8>(), 0..600),
        any::<bool>(),
        prop::collection::vec(1usize..200, 1..20),
        prop::collection::vec(
            prop_oneof![
                "",
                ";a",
                ";name=value",
                " ; q=\"x y\"",
                ";[a-z]{1,20}=[a-z0-9]{1,20}",
                // RFC 9112 §7.1.1: BWS around `;` and `=`, quoted strings with quoted-pairs.
                "[ \t]{0,2};[ \t]{0,2}[a-z]{1,8}([ \t]{0,2}=[ \t]{0,2}[a-z0-9]{1,8})?",
                ";[a-z]{1,8}=\"([ !#-\\[\\]-~]|\\\\[ -~]){0,12}\"",
            ],
            1..4,
        ),
        prop::collection::vec((field_name(), field_value()), 0..4),
    )
        .prop_map(
            |(method, target, host, http10, headers, body, chunked, cuts, extensions, trailers)| {
                // Chunked needs HTTP/1.1 (RFC 9112 §6.1).
                let chunks = (chunked && !http10).then(|| {
                    let mut sizes = Vec::new();
                    let mut left = body.len();
                    for c in cuts.iter().cycle().take(body.len()) {
                        if left == 0 {
                            break;
                        }
                        let size = (*c).min(left);
                        sizes.push(size);
                        left -= size;
                    }
                    sizes
                });
                let trailers = if chunks.is_some() {
                    trailers
                } else {
                    Vec::new()
                };
                Request {
                    method,
                    target,
                    host,
                    http10,
                    headers,
                    body,
                    chunks,
                    extensions,
                    trailers,
                }
            },
        )
}

/// What a request came to: head length, fields, body, trailers, where the next request starts.
type Parsed = (
    usize,
    Vec<(String, Vec<u8>)>,
    Vec<u8>,
    Vec<(String, String)>,
    usize,
);

/// The naive oracle: one-shot, plain string handling, no state machine.
fn naive(input: &[u8]) -> Parsed {
    let end = input
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let head = std::str::from_utf8(&input[..end]).expect("the generator writes UTF-8 heads");
    let mut lines = head.split("\r\n");
    lines.next();
    let headers: Vec<(String, Vec<u8>)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (
                n.to_owned(),
                v.trim_matches([' ', '\t']).as_bytes().to_vec(),
            )
        })
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    let mut trailers = Vec::new();
    let mut at = end;
    if let Some(len) = get("content-length") {
        let len: usize = std::str::from_utf8(&len).unwrap().parse().unwrap();
        body.extend_from_slice(&input[at..at + len]);
        at += len;
    } else if get("transfer-encoding").is_some() {
        loop {
            let line_end = at + input[at..].windows(2).position(|w| w == b"\r\n").unwrap();
            let line = std::str::from_utf8(&input[at..line_end]).unwrap();
            let size_text = line
                .split(';')
                .next()
                .unwrap()
                .trim_end_matches([' ', '\t']);
            let size = usize::from_str_radix(size_text, 16).unwrap();
            at = line_end + 2;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&input[at..at + size]);
            at += size + 2;
        }
        loop {
            let line_end = at + input[at..].windows(2).position(|w| w == b"\r\n").unwrap();
            let line = String::from_utf8(input[at..line_end].to_vec()).unwrap();
            at = line_end + 2;
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(':').unwrap();
            trailers.push((n.to_owned(), v.trim_matches([' ', '\t']).to_owned()));
        }
    }
    (end, headers, body, trailers, at)
}

/// What the detectors say, fed `input` in pieces ending at `cuts`: the head length, its fields,
/// the body, the trailers, where the next request starts, and that the next head parses.
fn detected(input: &[u8], cuts: &[usize]) -> Parsed {
    let limits = Limits::default();
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    ends.sort_unstable();
    ends.push(input.len());
    let mut ends = ends.into_iter();
    let mut avail = ends.next().unwrap();
    let mut detector = HeadDetector::new(limits);
    let mut head = RequestHead::new();
    let n = loop {
        match detector
            .detect(&input[..avail], &mut head)
            .expect("valid head")
        {
            (n, Step::Ready(())) => break n,
            (_, Step::WouldBlock) => avail = ends.next().expect("the head is complete"),
        }
    };
    let headers = head
        .headers(input)
        .map(|(n, v)| (n.to_owned(), v.to_vec()))
        .collect();
    let mut decoder = BodyDecoder::new(head.framing(), &limits);
    let (mut at, mut body) = (n, Vec::new());
    let trailers = loop {
        let (used, step) = decoder.decode(&input[at..avail]).expect("valid body");
        at += used;
        match step {
            Step::Ready(BodyEvent::ChunkStart { data, .. } | BodyEvent::Data(data)) => {
                body.extend_from_slice(data)
            }
            Step::Ready(BodyEvent::End { trailers }) => {
                break trailers
                    .iter()
                    .map(|(n, v)| (n.to_owned(), String::from_utf8(v.to_vec()).unwrap()))
                    .collect::<Vec<_>>();
            }
            Step::WouldBlock => avail = ends.next().expect("the body is complete"),
        }
    };
    // The next pipelined request is intact.
    assert_eq!(
        detector.detect(&input[at..], &mut head),
        Ok((NEXT.len(), Step::Ready(())))
    );
    (n, headers, body, trailers, at)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn requests_round_trip(req in request(), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let mut input = req.encode();
        let request_len = input.len();
        input.extend_from_slice(NEXT);
        let got = detected(&input, &cuts);
        let oracle = naive(&input);
        prop_assert_eq!(&got, &oracle);
        // And both equal what was generated.
        prop_assert_eq!(&got.2, &req.body);
        let trailers: Vec<(String, String)> = req.trailers.clone();
        prop_assert_eq!(&got.3, &trailers);
        prop_assert_eq!(got.4, request_len);
        prop_assert_eq!(got.1.len(), req.headers.len() + 2);
    }

    #[test]
    fn one_byte_at_a_time(req in request()) {
        let mut input = req.encode();
        input.extend_from_slice(NEXT);
        let cuts: Vec<usize> = (0..input.len()).collect();
        prop_assert_eq!(detected(&input, &cuts), naive(&input));
    }
}
