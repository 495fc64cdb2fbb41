//! The body decoders: Content-Length and chunked, accepted and rejected bodies, both sides of
//! every limit, every case fed at every split point and byte by byte.

mod detect_util;

use asycamore::detect::{
    BodyDecoder, BodyError, BodyEvent, BodyFraming, ChunkedError, Limits, MAX_REQUEST_BODY,
};
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
        // RFC 9112 §7.1.1: BWS around `;` and `=`, token and quoted-string values.
        (
            b"5 ;name=value\r\nhello\r\n0\r\n\r\n",
            &[(5, b"hello")],
            &[],
            27,
        ),
        (
            b"5; name = value\r\nhello\r\n0\r\n\r\n",
            &[(5, b"hello")],
            &[],
            29,
        ),
        (
            b"5;name=\"quoted\"\r\nhello\r\n0\r\n\r\n",
            &[(5, b"hello")],
            &[],
            29,
        ),
        (
            b"5 \t; a \t= \"x \\\" ; y\\\\\" \t;b;c=d\r\nhello\r\n0\r\n\r\n",
            &[(5, b"hello")],
            &[],
            44,
        ),
        (b"5;a=\"\"\r\nhello\r\n0\r\n\r\n", &[(5, b"hello")], &[], 20),
        (
            b"5;a=\"caf\xc3\xa9\t\"\r\nhello\r\n0\r\n\r\n",
            &[(5, b"hello")],
            &[],
            26,
        ),
        (
            b"5;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~\r\nhello\r\n0\r\n\r\n",
            &[(5, b"hello")],
            &[],
            47,
        ),
        (
            b"5;a;b;c\r\nhello\r\n0 ; last = \"1\"\r\n\r\n",
            &[(5, b"hello")],
            &[],
            34,
        ),
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
    ];
    for &(input, chunks, trailers, consumed) in cases {
        let s = decode_shotgun(BodyFraming::Chunked, Limits::default(), input)
            .unwrap_or_else(|e| panic!("{:?}: {e:?}", lossy(input)));
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
        (b"5 \t a\r\nhello\r\n0\r\n\r\n", InvalidSize),
        (b"5g\r\nhello\r\n0\r\n\r\n", InvalidSize),
        (b"10000000000000000\r\n", SizeOverflow),
        (b"fffffffffffffffff\r\n", SizeOverflow),
        (b"5\nhello\r\n0\r\n\r\n", InvalidLineEnding),
        (b"5\rhello\r\n0\r\n\r\n", InvalidLineEnding),
        (b"5;a\nhello\r\n0\r\n\r\n", InvalidLineEnding),
        (b"5;a\x00\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a\x7f\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        // RFC 9112 §7.1.1: whitespace only around `;` and `=`, names and values not empty.
        (b"5 \r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5\t\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"0 \r\n\r\n", InvalidExtension),
        (b"5 x\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5; \r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;;a\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a;\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;=v\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a=\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a= \r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a \r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a=b \r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a=\"b\" \r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a b\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a=b c\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a=b=c\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a==b\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a@b\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a=b/c\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a=\"b\"c\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a=b\"c\"\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a=\"b\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a=\"b\\\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a=\"\x7f\"\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a=\xc3\xa9\r\nhello\r\n0\r\n\r\n", InvalidExtension),
        (b"5;a=\"b\"\nhello\r\n0\r\n\r\n", InvalidLineEnding),
        (b"5;a=\"b\nc\"\r\nhello\r\n0\r\n\r\n", InvalidLineEnding),
        (b"5 \nhello\r\n0\r\n\r\n", InvalidLineEnding),
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
        ChunkedError::InvalidExtension,
    ] {
        assert_eq!(BodyError::Chunked(e).status(), 400);
        assert!(!BodyError::Chunked(e).reason().is_empty());
    }
    assert_eq!(BodyError::Chunked(ChunkedError::BodyTooLarge).status(), 413);
    assert!(!ChunkedError::BodyTooLarge.reason().is_empty());
}

/// A chunked body of chunks of these sizes (data all `x`), then the last chunk.
fn chunks_of(sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    for &size in sizes {
        out.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        out.resize(out.len() + size, b'x');
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[test]
fn request_body_limit_both_sides() {
    let limits = Limits {
        max_request_body: 10,
        ..Limits::default()
    };
    for (sizes, ok) in [
        (&[10][..], true),
        (&[5, 5], true),
        (&[1, 2, 3, 4], true),
        (&[9], true),
        (&[11], false),
        (&[5, 6], false),
        (&[1, 2, 3, 4, 1], false),
    ] {
        let got = decode_shotgun(BodyFraming::Chunked, limits, &chunks_of(sizes));
        if ok {
            assert!(got.unwrap().complete, "{sizes:?}");
        } else {
            assert_eq!(
                got,
                Err(BodyError::Chunked(ChunkedError::BodyTooLarge)),
                "{sizes:?}"
            );
        }
    }
    // With extensions or whitespace after the size, and for the size alone.
    for input in [&b"b;x=1\r\n"[..], b"b \t;x\r\n", b"00b\r\n"] {
        assert_eq!(
            decode_shotgun(BodyFraming::Chunked, limits, input),
            Err(BodyError::Chunked(ChunkedError::BodyTooLarge)),
            "{:?}",
            lossy(input)
        );
    }
    // A bad byte after the size is reported as such, even when the size is too large.
    assert_eq!(
        decode_once(BodyFraming::Chunked, limits, b"bg\r\n"),
        Err(BodyError::Chunked(ChunkedError::InvalidSize))
    );
    assert_eq!(
        decode_once(BodyFraming::Chunked, limits, b"b\n"),
        Err(BodyError::Chunked(ChunkedError::InvalidLineEnding))
    );
    // 0 is unlimited.
    let unlimited = Limits {
        max_request_body: 0,
        ..Limits::default()
    };
    let s = decode_shotgun(BodyFraming::Chunked, unlimited, b"ffffffffffffffff\r\nab").unwrap();
    assert_eq!(s.chunks, [(u64::MAX, b"ab".to_vec())]);
}

#[test]
fn request_body_limit_default() {
    // 4 GiB exactly is accepted, one byte more is not, nor is a 10 GiB chunk; a size that does not
    // fit in 64 bits is still malformed rather than too large.
    assert_eq!(MAX_REQUEST_BODY, 0x1_0000_0000);
    let s = decode_shotgun(BodyFraming::Chunked, Limits::default(), b"100000000\r\nab").unwrap();
    assert_eq!(s.chunks, [(MAX_REQUEST_BODY, b"ab".to_vec())]);
    for input in [
        &b"100000001\r\n"[..],
        b"280000000\r\nab",
        b"ffffffffffffffff\r\nab",
    ] {
        assert_eq!(
            decode_shotgun(BodyFraming::Chunked, Limits::default(), input),
            Err(BodyError::Chunked(ChunkedError::BodyTooLarge)),
            "{:?}",
            lossy(input)
        );
    }
    assert_eq!(
        decode_once(
            BodyFraming::Chunked,
            Limits::default(),
            b"10000000000000000\r\n"
        ),
        Err(BodyError::Chunked(ChunkedError::SizeOverflow))
    );
}

#[test]
fn request_body_limit_refuses_before_any_data_of_the_chunk() {
    let limits = Limits {
        max_request_body: 10,
        ..Limits::default()
    };
    let mut d = BodyDecoder::new(BodyFraming::Chunked, &limits);
    let (n, step) = d.decode(b"5\r\nhello\r\n").unwrap();
    assert_eq!(
        (n, step),
        (
            8,
            Step::Ready(BodyEvent::ChunkStart {
                size: 5,
                data: b"hello"
            })
        )
    );
    // The size digits alone are consumed and wait: the size is not complete.
    assert_eq!(d.decode(b"\r\n6").unwrap(), (3, Step::WouldBlock));
    // The byte that completes it fails at once, with the chunk's data right behind it.
    assert_eq!(
        d.decode(b"\r\nworld!\r\n"),
        Err(BodyError::Chunked(ChunkedError::BodyTooLarge))
    );
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
