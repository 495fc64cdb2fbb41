//! Fuzzes the Content-Length decoder: whatever the length and however the bytes arrive, it hands
//! out exactly `min(len, available)` bytes, in order, and never one past the body.
#![no_main]

use asycamore::detect::{BodyDecoder, BodyEvent, BodyFraming, Limits};
use asycamore::executor::Step;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let len = u64::from(u16::from_le_bytes([data[0], data[1]]));
    let step = usize::from(data[2]).max(1);
    let input = &data[3..];
    let mut d = BodyDecoder::new(BodyFraming::Length(len), &Limits::default());
    let mut got = Vec::new();
    let (mut pos, mut avail) = (0, 0);
    loop {
        let (used, event) = d
            .decode(&input[pos..avail])
            .expect("a length body cannot be malformed");
        pos += used;
        match event {
            Step::Ready(BodyEvent::ChunkStart { size, data }) => {
                assert_eq!(size, len);
                got.extend_from_slice(data);
            }
            Step::Ready(BodyEvent::Data(data)) => got.extend_from_slice(data),
            Step::Ready(BodyEvent::End { trailers }) => {
                assert!(trailers.is_empty());
                assert_eq!(got.len() as u64, len);
                break;
            }
            Step::WouldBlock if avail == input.len() => break,
            Step::WouldBlock => avail = (avail + step).min(input.len()),
        }
    }
    let want = usize::try_from(len).unwrap().min(input.len());
    assert_eq!(got, input[..want]);
    assert_eq!(pos, want);
});
