//! The body decoders: Content-Length and chunked, accepted and rejected bodies, both sides of
//! every limit, every case fed at every split point and byte by byte.

mod detect_util;

use asycamore::detect::{BodyDecoder, BodyError, BodyEvent, BodyFraming, ChunkedError, Limits};
use asycamore::executor::Step;
use detect_util::{BodySnapshot, decode_once, decode_shotgun, lossy};

fn chunked_ok(input: &[u8]) -> BodySnapshot {
    let s = decode_shotgun(BodyFraming::Chunked, Limits::default(), input)
        .unwrap_or_else(|e| panic!("{:?}: {e:?}", lossy(input)));
    assert!(s.complete, "{:?} incomplete", lossy(input));
    s
}

#[track_caller]
fn chunked_err(input: &[u8], want: ChunkedError) {
    assert_eq!(
        decode_shotgun(BodyFraming::Chunked, Limits::default(), input),
        Err(BodyError::Chunked(want)),
        "{:?}",
        lossy(input)
    );
}

#[test]
fn length_body_and_what_follows() {
    let s = decode_shotgun(
        BodyFraming::Length(5),
        Limits::default(),
        b"helloGET / HTTP/1.1",
    )
    .unwrap();
    assert_eq!(s.chunks, [(5, b"hello".to_vec())]);
    assert_eq!(s.consumed, 5);
    assert!(s.complete && s.trailers.is_empty());
}

#[test]
fn length_body_incomplete() {
    let s = decode_shotgun(BodyFraming::Length(10), Limits::default(), b"hello").unwrap();
    assert!(!s.complete);
    assert_eq!(s.data(), b"hello");
}

#[test]
fn empty_bodies_end_at_once() {
    for framing in [BodyFraming::None, BodyFraming::Length(0)] {
        let mut d = BodyDecoder::new(framing, &Limits::default());
        let (n, step) = d.decode(b"GET /").unwrap();
        assert_eq!(n, 0);
        assert!(matches!(step, Step::Ready(BodyEvent::End { trailers }) if trailers.is_empty()));
        assert!(d.is_done());
    }
}

#[test]
fn huge_length_does_not_overflow() {
    let s = decode_once(BodyFraming::Length(u64::MAX), Limits::default(), b"abc").unwrap();
    assert_eq!(s.chunks, [(u64::MAX, b"abc".to_vec())]);
}

#[test]
fn chunked_accepted_table() {
    // (input, chunks, trailers, bytes consumed)
    type Case<'a> = (
        &'a [u8],
        &'a [(u64, &'a [u8])],
        &'a [(&'a str, &'a [u8])],
        usize,
    );
    let cases: &[Case] = &[
        (b"0\r\n\r\n", &[], &[], 5),
        (b"0\r\n\r\nGET", &[], &[], 5),
        (b"000\r\n\r\n", &[], &[], 7),
        (b"5\r\nhello\r\n0\r\n\r\n", &[(5, b"hello")], &[], 15),
        (
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT",
            &[(5, b"hello"), (6, b" world")],
            &[],
            26,
        ),
        (
            b"A\r\n0123456789\r\n0\r\n\r\n",
            &[(10, b"0123456789")],
            &[],
            20,
        ),
        (
            b"a\r\n0123456789\r\n0\r\n\r\n",
            &[(10, b"0123456789")],
            &[],
            20,
        ),
        (b"0005\r\nhello\r\n0\r\n\r\n", &[(5, b"hello")], &[], 18),
        (b"5;ext\r\nhello\r\n0\r\n\r\n", &[(5, b"hello")], &[], 19),
        (
            b"5 ;a=b;c=\"d e\"\r\nhello\r\n0;last\r\n\r\n",
            &[(5, b"hello")],
            &[],
            33,
        ),
        (
            b"5\t; a = b\r\nhello\r\n0\r\n\r\n",
            &[(5, b"hello")],
            &[],
            23,
        ),
        (b"5 \r\nhello\r\n0\r\n\r\n", &[(5, b"hello")], &[], 16),
        (b"5\r\nhe\r\nl\r\n0\r\n\r\n", &[(5, b"he\r\nl")], &[], 15),
        (
            b"3\r\nabc\r\n0\r\nX-Checksum: 123\r\nX-Empty:\r\n\r\n",
            &[(3, b"abc")],
            &[("X-Checksum", b"123"), ("X-Empty", b"")],
            40,
        ),
        (
            b"0\r\nContent-Length: 5\r\nHost: x\r\n\r\n",
            &[],
            &[("Content-Length", b"5"), ("Host", b"x")],
            33,
        ),
        (b"ffffffffffffffff\r\nab", &[(u64::MAX, b"ab")], &[], 20),
    ];
    for &(input, chunks, trailers, consumed) in cases {
        let s = decode_shotgun(BodyFraming::Chunked, Limits::default(), input).unwrap();
        let want: Vec<(u64, Vec<u8>)> = chunks.iter().map(|&(n, d)| (n, d.to_vec())).collect();
        assert_eq!(s.chunks, want, "{:?}", lossy(input));
        let want: Vec<(String, Vec<u8>)> = trailers
            .iter()
            .map(|&(n, v)| (n.to_owned(), v.to_vec()))
            .collect();
        assert_eq!(s.trailers, want, "{:?}", lossy(input));
        assert_eq!(s.consumed, consumed, "{:?}", lossy(input));
    }
}

#[test]
fn chunked_rejected_table() {
    use ChunkedError::*;
    let cases: &[(&[u8], ChunkedError)] = &[
        (b"\r\n", InvalidSize),
        (b";ext\r\n", InvalidSize),
        (b"+5\r\nhello\r\n0\r\n\r\n", InvalidSize),
        (b"-5\r\nhello\r\n0\r\n\r\n", InvalidSize),
        (b"0x5\r\nhello\r\n0\r\n\r\n", InvalidSize),
        (b" 5\r\nhello\r\n0\r\n\r\n", InvalidSize),
        (b"5 5\r\nhello\r\n0\r\n\r\n", InvalidSize),
        (b"5g\r\nhello\r\n0\r\n\r\n", InvalidSize),
        (b"10000000000000000\r\n", SizeOverflow),
        (b"fffffffffffffffff\r\n", SizeOverflow),
        (b"5\nhello\r\n0\r\n\r\n", InvalidLineEnding),
        (b"5\rhello\r\n0\r\n\r\n", InvalidLineEnding),
        (b"5;a\nhello\r\n0\r\n\r\n", InvalidLineEnding),
        (b"5;a\x00\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a\x7f\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5\r\nhelloX\r\n0\r\n\r\n", MissingCrlf),
        (b"5\r\nhello\rX0\r\n\r\n", MissingCrlf),
        (b"5\r\nhello\n0\r\n\r\n", MissingCrlf),
        (b"5\r\nhello0\r\n\r\n", MissingCrlf),
        (b"0\r\n\n", InvalidLineEnding),
        (b"0\r\nA: b\n\r\n", InvalidLineEnding),
        (b"0\r\nA: b\r\n\n", InvalidLineEnding),
        (b"0\r\nA : b\r\n\r\n", InvalidTrailer),
        (b"0\r\n folded\r\n\r\n", InvalidTrailer),
        (b"0\r\nNoColon\r\n\r\n", InvalidTrailer),
        (b"0\r\nA: b\x00\r\n\r\n", InvalidTrailer),
        (b"0\r\n\rX\r\n\r\n", InvalidTrailer),
    ];
    for &(input, want) in cases {
        chunked_err(input, want);
    }
}

#[test]
fn chunk_line_limit_both_sides() {
    for (max, ok) in [(20, true), (19, false)] {
        let limits = Limits {
            max_chunk_line: max,
            ..Limits::default()
        };
        // 20 bytes: "5;" and 18 of extension.
        let mut input = b"5;".to_vec();
        input.extend_from_slice(&[b'e'; 18]);
        input.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        let got = decode_shotgun(BodyFraming::Chunked, limits, &input);
        if ok {
            assert_eq!(got.unwrap().data(), b"hello");
        } else {
            assert_eq!(got, Err(BodyError::Chunked(ChunkedError::LineTooLong)));
        }
    }
    // Enforced before the line ends.
    let mut endless = b"5;".to_vec();
    endless.resize(10_000, b'e');
    assert_eq!(
        decode_once(BodyFraming::Chunked, Limits::default(), &endless),
        Err(BodyError::Chunked(ChunkedError::LineTooLong))
    );
}

#[test]
fn trailer_limit_both_sides() {
    let input = b"0\r\nA: b\r\n\r\n"; // section: 8 bytes
    for (max, ok) in [(8, true), (7, false)] {
        let limits = Limits {
            max_trailers: max,
            ..Limits::default()
        };
        let got = decode_shotgun(BodyFraming::Chunked, limits, input);
        if ok {
            assert!(got.unwrap().complete);
        } else {
            assert_eq!(got, Err(BodyError::Chunked(ChunkedError::TrailersTooLarge)));
            assert_eq!(ChunkedError::TrailersTooLarge.status(), 431);
        }
    }
    // Enforced before the section ends.
    let mut endless = b"0\r\nX: ".to_vec();
    endless.resize(100_000, b'v');
    assert_eq!(
        decode_once(BodyFraming::Chunked, Limits::default(), &endless),
        Err(BodyError::Chunked(ChunkedError::TrailersTooLarge))
    );
}

#[test]
fn chunked_error_statuses() {
    for e in [
        ChunkedError::InvalidSize,
        ChunkedError::SizeOverflow,
        ChunkedError::MissingCrlf,
        ChunkedError::LineTooLong,
    ] {
        assert_eq!(BodyError::Chunked(e).status(), 400);
        assert!(!BodyError::Chunked(e).reason().is_empty());
    }
}

#[test]
fn chunk_start_carries_first_data_only() {
    let mut d = BodyDecoder::new(BodyFraming::Chunked, &Limits::default());
    let (n, step) = d.decode(b"a\r\n01234").unwrap();
    assert_eq!(
        (n, step),
        (
            8,
            Step::Ready(BodyEvent::ChunkStart {
                size: 10,
                data: b"01234"
            })
        )
    );
    assert_eq!(d.decode(b"").unwrap(), (0, Step::WouldBlock));
    let (n, step) = d.decode(b"56789\r\n0\r").unwrap();
    assert_eq!((n, step), (5, Step::Ready(BodyEvent::Data(b"56789"))));
    // The CRLF, the last-chunk line and the CR are consumed into the decoder's state.
    assert_eq!(d.decode(b"\r\n0\r").unwrap(), (4, Step::WouldBlock));
    let (n, step) = d.decode(b"\n\r\n").unwrap();
    assert_eq!(n, 3);
    assert!(matches!(step, Step::Ready(BodyEvent::End { .. })));
    assert!(d.is_done());
    // After End, End again and nothing consumed.
    assert!(matches!(
        d.decode(b"GET").unwrap(),
        (0, Step::Ready(BodyEvent::End { .. }))
    ));
}

#[test]
fn many_small_chunks() {
    let mut input = Vec::new();
    let mut want = Vec::new();
    for i in 0..50u8 {
        let data = vec![b'a' + i % 26; usize::from(i % 7) + 1];
        input.extend_from_slice(format!("{:x};i={i}\r\n", data.len()).as_bytes());
        input.extend_from_slice(&data);
        input.extend_from_slice(b"\r\n");
        want.extend_from_slice(&data);
    }
    input.extend_from_slice(b"0\r\nDone: yes\r\n\r\n");
    let s = chunked_ok(&input);
    assert_eq!(s.data(), want);
    assert_eq!(s.chunks.len(), 50);
    assert_eq!(s.trailers, [("Done".to_owned(), b"yes".to_vec())]);
}

#[test]
fn trailer_limit_comes_before_a_late_bare_lf() {
    // Found by the `chunked` fuzz target: a trailer line past the limit ending in a bare LF was a
    // 431 when read in pieces but a 400 when read at once.
    let limits = Limits {
        max_chunk_line: 32,
        max_trailers: 128,
        ..Limits::default()
    };
    let input =
        std::fs::read("tests/data/fuzz-regressions/chunked-trailer-limit-before-bare-lf.bin")
            .unwrap();
    assert_eq!(
        decode_shotgun(BodyFraming::Chunked, limits, &input[1..]),
        Err(BodyError::Chunked(ChunkedError::TrailersTooLarge))
    );
    let mut input = b"0\r\nX: ".to_vec();
    input.resize(200, b'v');
    input.extend_from_slice(b"\n\r\n");
    assert_eq!(
        decode_shotgun(BodyFraming::Chunked, limits, &input),
        Err(BodyError::Chunked(ChunkedError::TrailersTooLarge))
    );
}
