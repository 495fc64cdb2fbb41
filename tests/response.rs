//! The response side, checked from outside: what the encoder writes is read back by our own
//! detectors (a chunked body round-trips through `ChunkedDecoder`, an error response is a
//! well-framed HTTP/1.1 message), headers that would split a response are refused, the reason
//! table covers every status the detectors produce, and `Date` is a current IMF-fixdate.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use asycamore::detect::{BodyDecoder, BodyEvent, BodyFraming, ChunkedError, HeadError, Limits};
use asycamore::executor::Step;
use asycamore::response::{
    DATE_LEN, HeaderError, check_header, reason_phrase, with_date, with_date_at, write_chunk,
    write_content_length, write_date_header, write_date_header_at, write_decimal,
    write_error_response, write_header, write_hex, write_last_chunk,
    write_last_chunk_with_trailers, write_status_line,
};
use proptest::prelude::*;

/// Owned trailer fields.
type Fields = Vec<(String, Vec<u8>)>;

/// Decodes a chunked body written by the encoder; returns data, trailers, bytes used.
fn decode_chunked(body: &[u8]) -> (Vec<u8>, Fields, usize) {
    let mut decoder = BodyDecoder::new(BodyFraming::Chunked, &Limits::default());
    let (mut at, mut data) = (0, Vec::new());
    loop {
        let (used, step) = decoder
            .decode(&body[at..])
            .expect("the encoder writes valid chunked framing");
        at += used;
        match step {
            Step::Ready(BodyEvent::ChunkStart { data: d, .. } | BodyEvent::Data(d)) => {
                data.extend_from_slice(d)
            }
            Step::Ready(BodyEvent::End { trailers }) => {
                let trailers = trailers
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_vec()))
                    .collect();
                return (data, trailers, at);
            }
            Step::WouldBlock => panic!(
                "incomplete chunked body: {:?}",
                String::from_utf8_lossy(body)
            ),
        }
    }
}

#[test]
fn status_lines() {
    for (status, line) in [
        (200, &b"HTTP/1.1 200 OK\r\n"[..]),
        (100, b"HTTP/1.1 100 Continue\r\n"),
        (204, b"HTTP/1.1 204 No Content\r\n"),
        (404, b"HTTP/1.1 404 Not Found\r\n"),
        (599, b"HTTP/1.1 599 \r\n"),
    ] {
        let mut out = b"previous".to_vec();
        write_status_line(&mut out, status);
        assert_eq!(&out[8..], line, "{status}");
    }
}

#[test]
fn every_detector_status_has_a_reason_phrase() {
    use HeadError::*;
    let head = [
        BareLf,
        RequestLineTooLong,
        HeadTooLarge,
        VersionNotSupported,
        UnsupportedTransferCoding,
        MissingHost,
    ];
    let body = [ChunkedError::InvalidSize, ChunkedError::TrailersTooLarge];
    let statuses = head
        .iter()
        .map(|e| e.status())
        .chain(body.iter().map(|e| e.status()));
    for status in statuses {
        assert!(!reason_phrase(status).is_empty(), "{status}");
    }
    assert_eq!(reason_phrase(414), "URI Too Long");
    assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
    assert_eq!(reason_phrase(505), "HTTP Version Not Supported");
    assert_eq!(reason_phrase(501), "Not Implemented");
    assert_eq!(reason_phrase(299), "");
}

#[test]
fn headers_that_would_split_the_response_are_refused() {
    let cases: &[(&str, &[u8], Option<HeaderError>)] = &[
        ("Content-Type", b"text/html; charset=utf-8", None),
        ("X-Tab", b"a\tb", None),
        ("X-Obs", b"caf\xc3\xa9", None),
        ("X-Empty", b"", None),
        (
            "X-A",
            b"a\r\nSet-Cookie: stolen=1",
            Some(HeaderError::InvalidValue),
        ),
        ("X-A", b"a\rb", Some(HeaderError::InvalidValue)),
        ("X-A", b"a\nb", Some(HeaderError::InvalidValue)),
        ("X-A", b"a\0b", Some(HeaderError::InvalidValue)),
        ("X-A", b"a\x7fb", Some(HeaderError::InvalidValue)),
        ("X-A", b"a\x1bb", Some(HeaderError::InvalidValue)),
        ("", b"v", Some(HeaderError::InvalidName)),
        ("X A", b"v", Some(HeaderError::InvalidName)),
        ("X:A", b"v", Some(HeaderError::InvalidName)),
        ("X\r\nA", b"v", Some(HeaderError::InvalidName)),
        ("X\0", b"v", Some(HeaderError::InvalidName)),
        ("Caf\u{e9}", b"v", Some(HeaderError::InvalidName)),
    ];
    for &(name, value, want) in cases {
        assert_eq!(check_header(name, value).err(), want, "{name:?}: {value:?}");
        let mut out = b"kept".to_vec();
        let result = write_header(&mut out, name, value);
        assert_eq!(result.err(), want, "{name:?}");
        if want.is_some() {
            assert_eq!(out, b"kept", "nothing is written for a refused header");
        } else {
            let mut expected = b"kept".to_vec();
            expected.extend_from_slice(format!("{name}: ").as_bytes());
            expected.extend_from_slice(value);
            expected.extend_from_slice(b"\r\n");
            assert_eq!(out, expected);
        }
    }
}

#[test]
fn trailers_are_checked_before_anything_is_written() {
    let mut out = b"kept".to_vec();
    let bad: &[(&str, &[u8])] = &[("X-Good", b"1"), ("X-Bad", b"a\r\nb")];
    assert_eq!(
        write_last_chunk_with_trailers(&mut out, bad),
        Err(HeaderError::InvalidValue)
    );
    assert_eq!(out, b"kept");
}

#[test]
fn numbers() {
    for n in [
        0u64,
        1,
        9,
        10,
        99,
        100,
        12345,
        u64::from(u32::MAX),
        u64::MAX - 1,
        u64::MAX,
    ] {
        let mut d = Vec::new();
        write_decimal(&mut d, n);
        assert_eq!(d, n.to_string().as_bytes());
        let mut h = Vec::new();
        write_hex(&mut h, n);
        assert_eq!(h, format!("{n:x}").as_bytes());
    }
    let mut out = Vec::new();
    write_content_length(&mut out, 1234);
    assert_eq!(out, b"Content-Length: 1234\r\n");
}

#[test]
fn chunked_body_round_trips_through_the_decoder() {
    let mut out = Vec::new();
    for piece in [&b"hello"[..], &[b'x'; 300][..], b"\r\n\r\n", b"0"] {
        write_chunk(&mut out, piece);
    }
    write_last_chunk_with_trailers(&mut out, &[("X-Checksum", b"abc"), ("X-Count", b"4")]).unwrap();
    out.extend_from_slice(b"NEXT");
    let (data, trailers, used) = decode_chunked(&out);
    let mut want = b"hello".to_vec();
    want.extend_from_slice(&[b'x'; 300]);
    want.extend_from_slice(b"\r\n\r\n0");
    assert_eq!(data, want);
    assert_eq!(
        trailers,
        [
            ("X-Checksum".to_owned(), b"abc".to_vec()),
            ("X-Count".to_owned(), b"4".to_vec())
        ]
    );
    assert_eq!(&out[used..], b"NEXT");

    let mut out = Vec::new();
    write_last_chunk(&mut out);
    assert_eq!(out, b"0\r\n\r\n");
    assert_eq!(decode_chunked(&out), (vec![], vec![], 5));
}

#[test]
fn error_responses_are_well_framed_and_close() {
    let mut out = Vec::new();
    write_error_response(&mut out, 431, HeadError::TooManyHeaders.reason());
    let text = String::from_utf8(out.clone()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    assert_eq!(
        lines.next(),
        Some("HTTP/1.1 431 Request Header Fields Too Large")
    );
    let fields: Vec<(&str, &str)> = lines.map(|l| l.split_once(": ").unwrap()).collect();
    let field = |n: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| *v)
    };
    assert_eq!(
        field("Content-Length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(field("Connection"), Some("close"));
    assert_eq!(field("Date").map(str::len), Some(DATE_LEN));
    assert_eq!(body, "too many header fields\n");
}

/// Parses an IMF-fixdate (RFC 9110 §5.6.7) into seconds since the epoch: the test's own oracle.
fn parse_imf_fixdate(s: &str) -> u64 {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = s.split([' ', ':']).collect();
    assert_eq!(parts.len(), 8, "{s}");
    assert!(
        ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"].contains(&parts[0]),
        "{s}"
    );
    assert_eq!(parts[7], "GMT");
    assert_eq!(parts[1].len(), 2, "two-digit day: {s}");
    let day: u64 = parts[1].parse().unwrap();
    let month = MONTHS.iter().position(|m| *m == parts[2]).unwrap() as u64 + 1;
    let year: u64 = parts[3].parse().unwrap();
    let (h, m, sec): (u64, u64, u64) = (
        parts[4].parse().unwrap(),
        parts[5].parse().unwrap(),
        parts[6].parse().unwrap(),
    );
    // Days from the civil date, the plain way.
    let is_leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let mut days = (1970..year)
        .map(|y| if is_leap(y) { 366 } else { 365 })
        .sum::<u64>();
    let month_days = [
        31,
        if is_leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    days += month_days[..(month - 1) as usize].iter().sum::<u64>() + day - 1;
    // The weekday must match the date (1970-01-01 was a Thursday).
    let weekdays = ["Thu,", "Fri,", "Sat,", "Sun,", "Mon,", "Tue,", "Wed,"];
    assert_eq!(parts[0], weekdays[(days % 7) as usize], "{s}");
    days * 86_400 + h * 3600 + m * 60 + sec
}

#[test]
fn date_is_the_current_imf_fixdate() {
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let before = now();
    let date = with_date(|d| String::from_utf8(d.to_vec()).unwrap());
    let after = now();
    assert_eq!(date.len(), DATE_LEN);
    let secs = parse_imf_fixdate(&date);
    assert!(
        before <= secs && secs <= after,
        "{date} not in [{before}, {after}]"
    );

    let at = with_date_at(Instant::now(), |d| String::from_utf8(d.to_vec()).unwrap());
    let secs = parse_imf_fixdate(&at);
    assert!(secs.abs_diff(now()) <= 1, "{at}");

    let mut out = Vec::new();
    write_date_header(&mut out);
    write_date_header_at(&mut out, Instant::now());
    let text = String::from_utf8(out).unwrap();
    for line in text.split_terminator("\r\n") {
        let value = line.strip_prefix("Date: ").unwrap();
        assert!(parse_imf_fixdate(value).abs_diff(now()) <= 1, "{value}");
    }
}

#[test]
fn date_is_refreshed_when_the_second_changes() {
    let first = with_date(|d| d.to_vec());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = with_date(|d| d.to_vec());
    assert_ne!(first, second, "the cached date must move on after a second");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any body in any pieces, with any trailers, written by the encoder and read by the decoder,
    /// comes back as it was.
    #[test]
    fn encoder_and_decoder_agree(
        pieces in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 0..10),
        trailers in prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,10}", "[!-~]([ -~]{0,20}[!-~])?"), 0..4),
    ) {
        let mut out = Vec::new();
        for piece in &pieces {
            write_chunk(&mut out, piece);
        }
        let refs: Vec<(&str, &[u8])> = trailers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
        write_last_chunk_with_trailers(&mut out, &refs).unwrap();
        let (data, got_trailers, used) = decode_chunked(&out);
        prop_assert_eq!(data, pieces.concat());
        let want: Vec<(String, Vec<u8>)> = trailers.iter().map(|(n, v)| (n.clone(), v.as_bytes().to_vec())).collect();
        prop_assert_eq!(got_trailers, want);
        prop_assert_eq!(used, out.len());
    }
}
