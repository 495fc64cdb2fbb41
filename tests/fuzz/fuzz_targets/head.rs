//! Fuzzes the head detector: any bytes, fed in one piece and then split at a point chosen by the
//! input, must give the same answer, never panic, and respect the contract of `Ready(n)`.
#![no_main]

use asycamore::detect::{HeadDetector, Limits, RequestHead};
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
        ..Limits::default()
    };
    let mut head = RequestHead::new();
    let once = HeadDetector::new(limits).detect(input, &mut head);
    if let Ok(Step::Ready(n)) = once {
        assert!(n <= input.len() && n == head.len());
        assert!(input[..n].ends_with(b"\r\n\r\n"));
        let _ = (
            head.method(input),
            head.target(input),
            head.headers(input).count(),
            head.framing(),
        );
        assert!(head.header_count() <= limits.max_headers);
    }
    let mut d = HeadDetector::new(limits);
    let mut head2 = RequestHead::new();
    let split = usize::from(split).min(input.len());
    let grown = match d.detect(&input[..split], &mut head2) {
        Ok(Step::WouldBlock) => d.detect(input, &mut head2),
        other => other,
    };
    assert_eq!(grown, once);
    // Byte by byte must agree too.
    let mut d = HeadDetector::new(limits);
    let mut head3 = RequestHead::new();
    let mut bytewise = Ok(Step::WouldBlock);
    for end in 0..=input.len() {
        bytewise = d.detect(&input[..end], &mut head3);
        if !matches!(bytewise, Ok(Step::WouldBlock)) {
            break;
        }
    }
    assert_eq!(bytewise, once);
});
