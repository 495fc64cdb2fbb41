//! Memory stays bounded however much passes through: a 1 GiB chunked upload, a 1 GiB echo, and a
//! client that pipelines 100,000 requests without reading, against a spawned `asycamore` binary
//! whose peak RSS (`VmHWM`) is read from `/proc`.
//!
//! `ASYCAMORE_BIG_BYTES` changes the 1 GiB (for a quicker local run).

mod util;

use std::io::{Read, Write};
use std::time::Duration;

use asycamore::crc32::Crc32;
use util::{PEAK_RSS_LIMIT_KIB, Reader, big_bytes, connect, pattern, spawn_server};

#[test]
fn a_1gib_chunked_upload_streams_in_bounded_memory() {
    let server = spawn_server(&[]);
    let total = big_bytes();
    let piece = pattern(64 * 1024, 7);
    let mut stream = connect(server.addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let mut crc = Crc32::default();
    let mut sent = 0u64;
    let mut chunks = 0u64;
    while sent < total {
        let n = piece.len().min((total - sent) as usize);
        stream.write_all(format!("{n:x}\r\n").as_bytes()).unwrap();
        stream.write_all(&piece[..n]).unwrap();
        stream.write_all(b"\r\n").unwrap();
        crc.update(&piece[..n]);
        sent += n as u64;
        chunks += 1;
    }
    stream.write_all(b"0\r\nX-Checksum: done\r\n\r\n").unwrap();
    let r = Reader::new(stream).response();
    let text = String::from_utf8(r.body).unwrap();
    assert!(text.contains(&format!("\"bytes\": {total}")), "{text}");
    assert!(text.contains(&format!("\"chunks\": {chunks}")), "{text}");
    assert!(
        text.contains(&format!("\"crc32\": \"{:08x}\"", crc.value())),
        "{text}"
    );
    assert!(text.contains("\"X-Checksum\""), "{text}");
    let peak = server.status_kib("VmHWM");
    assert!(peak < PEAK_RSS_LIMIT_KIB, "peak RSS {peak} KiB");
}

#[test]
fn a_1gib_echo_streams_in_bounded_memory() {
    let server = spawn_server(&[]);
    let total = big_bytes();
    let piece = pattern(256 * 1024, 11);
    let mut stream = connect(server.addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    stream
        .write_all(
            format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {total}\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let to_send = piece.clone();
    let sender = std::thread::spawn(move || {
        let mut sent = 0u64;
        while sent < total {
            let n = to_send.len().min((total - sent) as usize);
            writer.write_all(&to_send[..n]).unwrap();
            sent += n as u64;
        }
    });
    // Read the head, then compare every byte of the body with what was sent.
    let head = util::read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains(&format!("Content-Length: {total}")), "{head}");
    let mut received = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    while received < total {
        let want = buf.len().min((total - received) as usize);
        let n = stream.read(&mut buf[..want]).unwrap();
        assert!(n > 0, "closed after {received} bytes");
        let offset = (received % piece.len() as u64) as usize;
        for (i, b) in buf[..n].iter().enumerate() {
            assert_eq!(
                *b,
                piece[(offset + i) % piece.len()],
                "byte {}",
                received + i as u64
            );
        }
        received += n as u64;
    }
    sender.join().unwrap();
    let peak = server.status_kib("VmHWM");
    assert!(peak < PEAK_RSS_LIMIT_KIB, "peak RSS {peak} KiB");
}

#[test]
fn a_client_pipelining_100000_requests_without_reading_cannot_grow_the_server() {
    let server = spawn_server(&[]);
    let request = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let count = 100_000usize;
    let stream = connect(server.addr);
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let batch: Vec<u8> = request.repeat(1000);
        for _ in 0..count / 1000 {
            writer.write_all(&batch).unwrap();
        }
    });
    // Let the server fill its output and the kernel's buffers while nobody reads.
    std::thread::sleep(Duration::from_millis(1500));
    let rss_blocked = server.status_kib("VmRSS");
    assert!(
        rss_blocked < PEAK_RSS_LIMIT_KIB,
        "RSS {rss_blocked} KiB while the client does not read"
    );
    // Now read everything: every request is answered, in order.
    let mut reader = Reader::new(stream);
    for i in 0..count {
        let r = reader.response();
        assert_eq!(r.body, b"Hello, World!", "response {i}");
    }
    sender.join().unwrap();
    let peak = server.status_kib("VmHWM");
    assert!(peak < PEAK_RSS_LIMIT_KIB, "peak RSS {peak} KiB");
}
