//! Fuzzes the head detector: any bytes, fed in one piece and then split at a point chosen by the
//! input, must give the same answer, never panic, and respect the contract of `Ready(n)`, including
//! the RFC 9112 §3.2 rules on target forms and Host and the request-body limit.
#![no_main]

use asycamore::detect::{BodyFraming, HeadDetector, Limits, RequestHead, TargetForm};
use asycamore::executor::Step;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    // Small limits so the fuzzer reaches them.
    let limits = Limits {
        max_request_line: 64,
        max_head: 256,
        max_headers: 8,
        max_request_body: 1000,
        ..Limits::default()
    };
    let mut head = RequestHead::new();
    let once = HeadDetector::new(limits).detect(input, &mut head);
    if let Ok((n, Step::Ready(()))) = once {
        assert!(n <= input.len() && n == head.len());
        assert!(input[..n].ends_with(b"\r\n\r\n"));
        let _ = (
            head.method(input),
            head.target(input),
            head.headers(input).count(),
            head.framing(),
        );
        assert!(head.header_count() <= limits.max_headers);
        check_accepted(&head, input, &limits);
    }
    let mut d = HeadDetector::new(limits);
    let mut head2 = RequestHead::new();
    let split = usize::from(split).min(input.len());
    let grown = match d.detect(&input[..split], &mut head2) {
        Ok((_, Step::WouldBlock)) => d.detect(input, &mut head2),
        other => other,
    };
    assert_eq!(grown, once);
    // Byte by byte must agree too.
    let mut d = HeadDetector::new(limits);
    let mut head3 = RequestHead::new();
    let mut bytewise = Ok((0, Step::WouldBlock));
    for end in 0..=input.len() {
        bytewise = d.detect(&input[..end], &mut head3);
        if !matches!(bytewise, Ok((_, Step::WouldBlock))) {
            break;
        }
    }
    assert_eq!(bytewise, once);
    // The one-piece detect takes the whole-head path and the byte-by-byte one the line scan:
    // an accepted head must come out of both the same, not just with the same length.
    if let Ok((_, Step::Ready(()))) = once {
        assert_eq!(parsed(&head, input), parsed(&head3, input));
    }
});

/// Everything a parsed head tells the connection, to compare two parses of one input.
fn parsed<'b>(head: &RequestHead, buf: &'b [u8]) -> impl PartialEq + std::fmt::Debug + use<'b> {
    (
        head.method_bytes(buf),
        head.target(buf),
        head.target_form(),
        head.version(),
        head.header_ranges().collect::<Vec<_>>(),
        head.host(buf),
        head.framing(),
        (head.keep_alive(), head.connection_close(), head.sent_expect_continue()),
    )
}

/// What any accepted head must satisfy, whatever the bytes were.
fn check_accepted(head: &RequestHead, buf: &[u8], limits: &Limits) {
    let (method, target) = (head.method_bytes(buf), head.target(buf));
    // RFC 9112 §3.2: ASCII VCHAR only, in the form the method may use.
    assert!(!target.is_empty() && target.iter().all(|&b| (0x21..=0x7e).contains(&b)));
    match head.target_form() {
        TargetForm::Origin => assert!(target.starts_with(b"/")),
        TargetForm::Asterisk => assert!(target == b"*" && method == b"OPTIONS"),
        TargetForm::Absolute => {
            let colon = target.iter().position(|&b| b == b':').expect("a scheme");
            assert!(target[0].is_ascii_alphabetic() && target[colon..].starts_with(b"://"));
        }
        TargetForm::Authority => assert!(target.contains(&b':')),
    }
    assert_eq!(
        head.target_form() == TargetForm::Authority,
        method == b"CONNECT"
    );
    // RFC 9110 §7.2: a Host is `uri-host [":" port]`, which never holds these.
    if let Some(host) = head.host(buf) {
        assert!(
            host.iter()
                .all(|&b| b.is_ascii_graphic() && !b"/?#@\"<>\\^`{|}".contains(&b))
        );
    }
    if let BodyFraming::Length(n) = head.framing() {
        assert!(n <= limits.max_request_body);
    }
}
