//! `/metrics` on the real binary: the Prometheus text format (read by a strict parser of our own,
//! and by Python's `prometheus_client` when it is installed), and counters that never go down
//! between two scrapes under load, whichever worker answers each.

mod util;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use util::{Reader, connect, get, spawn_server};

/// The families the page must have, with their types.
const FAMILIES: [(&str, &str); 16] = [
    ("asycamore_requests_total", "counter"),
    ("asycamore_responses_total", "counter"),
    ("asycamore_connections_open", "gauge"),
    ("asycamore_connections_accepted_total", "counter"),
    ("asycamore_bytes_received_total", "counter"),
    ("asycamore_bytes_sent_total", "counter"),
    ("asycamore_request_errors_total", "counter"),
    ("asycamore_timeouts_total", "counter"),
    ("asycamore_handler_panics_total", "counter"),
    ("asycamore_request_duration_seconds", "histogram"),
    ("asycamore_loop_turns_total", "counter"),
    ("asycamore_poll_seconds_total", "counter"),
    ("asycamore_step_seconds_total", "counter"),
    ("asycamore_worker_connections_open", "gauge"),
    ("asycamore_build_info", "gauge"),
    ("process_start_time_seconds", "gauge"),
];

/// One parsed page: each family's type, and every sample by its series (`name{labels}`).
#[derive(Debug, Default)]
struct Page {
    types: BTreeMap<String, String>,
    samples: BTreeMap<String, f64>,
}

fn is_name(s: &str, colons: bool) -> bool {
    let mut chars = s.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':');
    chars.next().is_some_and(ok_first) && chars.all(|c| ok_first(c) || c.is_ascii_digit())
}

/// Parses `{a="x",b="y"}` at the start of `s`; returns the labels and the rest.
#[track_caller]
fn labels(s: &str) -> (Vec<(String, String)>, &str) {
    let mut out = Vec::new();
    let Some(mut rest) = s.strip_prefix('{') else {
        return (out, s);
    };
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return (out, after);
        }
        let (name, after) = rest.split_once("=\"").expect("label=\"value\"");
        assert!(is_name(name, false), "bad label name {name:?}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("closing quote") {
                (i, '"') => break i,
                (_, '\\') => match chars.next().expect("escape").1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    c => panic!("bad escape \\{c}"),
                },
                (_, c) => value.push(c),
            }
        };
        out.push((name.to_owned(), value));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Parses one page strictly (text format 0.0.4): every sample after its family's TYPE line, one
/// TYPE and at most one HELP per family, names and labels well formed, values numbers,
/// histogram buckets cumulative and ending at `+Inf` = `_count`.
#[track_caller]
fn parse(text: &str) -> Page {
    let mut page = Page::default();
    let mut helped = std::collections::BTreeSet::new();
    let mut buckets: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    assert!(text.ends_with('\n'), "the page ends with a line feed");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(is_name(name, true), "{line}");
            assert!(helped.insert(name.to_owned()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(is_name(name, true), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                page.types
                    .insert(name.to_owned(), kind.to_owned())
                    .is_none(),
                "TYPE twice: {line}"
            );
            continue;
        }
        assert!(
            !line.is_empty() && !line.starts_with('#'),
            "stray line {line:?}"
        );
        let name_end = line.find(['{', ' ']).expect("a value");
        let name = &line[..name_end];
        assert!(is_name(name, true), "{line}");
        let (labels, rest) = labels(&line[name_end..]);
        let value = rest.strip_prefix(' ').expect("space before the value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                let base = name.strip_suffix(s)?;
                (page.types.get(base).map(String::as_str) == Some("histogram")).then_some(base)
            })
            .unwrap_or(name);
        assert!(
            page.types.contains_key(family),
            "sample before its TYPE: {line}"
        );
        if name.ends_with("_bucket") && family != name {
            let le = labels.iter().find(|(k, _)| k == "le").expect("le label");
            let bound = if le.1 == "+Inf" {
                f64::INFINITY
            } else {
                le.1.parse().expect("le")
            };
            buckets
                .entry(family.to_owned())
                .or_default()
                .push((bound, value));
        }
        let series = format!(
            "{name}{}",
            line[name_end..].strip_suffix(rest).unwrap_or("")
        );
        assert!(
            page.samples.insert(series, value).is_none(),
            "a series twice: {line}"
        );
    }
    for (family, list) in &buckets {
        assert!(
            list.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{family}: {list:?}"
        );
        let last = list.last().expect("a bucket");
        assert!(last.0.is_infinite(), "{family} ends at +Inf");
        assert_eq!(
            Some(&last.1),
            page.samples.get(&format!("{family}_count")),
            "{family}"
        );
    }
    page
}

/// The series whose value only grows: counters, and every part of a histogram.
fn growing_series(page: &Page) -> Vec<String> {
    page.samples
        .keys()
        .filter(|series| {
            let name = series.split('{').next().unwrap();
            page.types.get(name).map(String::as_str) == Some("counter")
                || ["_bucket", "_sum", "_count"].iter().any(|s| {
                    name.strip_suffix(s)
                        .is_some_and(|b| page.types.get(b).map(String::as_str) == Some("histogram"))
                })
        })
        .cloned()
        .collect()
}

/// Keeps `connections` keep-alive clients busy with `/`, a short `/sleep` and a 404 until the
/// flag drops; returns their threads.
fn background_load(
    addr: SocketAddr,
    connections: usize,
    stop: &Arc<AtomicBool>,
    answered: &Arc<AtomicU64>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..connections)
        .map(|i| {
            let stop = Arc::clone(stop);
            let answered = Arc::clone(answered);
            std::thread::spawn(move || {
                let mut stream = connect(addr);
                let mut reader = Reader::new(stream.try_clone().expect("clone"));
                let paths = ["/", "/sleep?ms=1", "/nope"];
                let mut n = i;
                while !stop.load(Ordering::Relaxed) {
                    write!(stream, "GET {} HTTP/1.1\r\nHost: t\r\n\r\n", paths[n % 3])
                        .expect("send");
                    reader.response();
                    answered.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect()
}

#[test]
fn metrics_is_prometheus_text_with_every_family() {
    let server = spawn_server(&["--workers", "2"]);
    for _ in 0..5 {
        assert_eq!(get(server.addr, "/").status, 200);
    }
    let r = get(server.addr, "/metrics");
    assert_eq!(r.status, 200);
    let content_type = r.header("content-type").expect("a content type");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = String::from_utf8(r.body).expect("UTF-8");
    let page = parse(&text);
    for (family, kind) in FAMILIES {
        assert_eq!(
            page.types.get(family).map(String::as_str),
            Some(kind),
            "{family}\n{text}"
        );
    }
    for class in ["1xx", "2xx", "3xx", "4xx", "5xx"] {
        let series = format!("asycamore_responses_total{{code_class=\"{class}\"}}");
        assert!(page.samples.contains_key(&series), "{series}\n{text}");
    }
    for worker in ["0", "1"] {
        let series = format!("asycamore_loop_turns_total{{worker=\"{worker}\"}}");
        assert!(page.samples.contains_key(&series), "{series}\n{text}");
    }
    // The scrape itself is counted (its head was parsed), the five hellos too, wherever they
    // went: the answering worker's live counters plus the other's publication.
    assert!(page.samples["asycamore_requests_total"] >= 1.0, "{text}");
    let started = page.samples["process_start_time_seconds"];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        started > now - 600.0 && started <= now,
        "{started} vs {now}"
    );
}

#[test]
fn counters_never_go_down_between_scrapes_under_load() {
    let server = spawn_server(&["--workers", "2"]);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let load = background_load(server.addr, 4, &stop, &answered);
    // Each scrape on a new connection, so the kernel spreads them over both workers; the
    // status page says which worker answered, to show that both did.
    let mut pages = Vec::new();
    let mut answering = std::collections::BTreeSet::new();
    let mut last_requests = 0.0;
    for i in 0..50 {
        pages.push(String::from_utf8(get(server.addr, "/metrics").body).expect("UTF-8"));
        let status = String::from_utf8(get(server.addr, "/_status").body).expect("UTF-8");
        let field = |name: &str| -> f64 {
            let at = status.find(&format!("\"{name}\": ")).expect(name) + name.len() + 4;
            status[at..]
                .split([',', '}'])
                .next()
                .unwrap()
                .trim()
                .parse()
                .expect(name)
        };
        answering.insert(field("worker") as u64);
        let requests = field("requests");
        assert!(
            requests >= last_requests,
            "/_status requests went down at {i}: {status}"
        );
        last_requests = requests;
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().expect("load");
    }
    assert!(answered.load(Ordering::Relaxed) > 100, "the load ran");
    assert_eq!(answering.len(), 2, "both workers answered: {answering:?}");

    let parsed: Vec<Page> = pages.iter().map(|p| parse(p)).collect();
    let series = growing_series(&parsed[0]);
    assert!(series.len() > 30, "{series:?}");
    for name in &series {
        for (i, pair) in parsed.windows(2).enumerate() {
            let (a, b) = (pair[0].samples[name], pair[1].samples[name]);
            assert!(
                b >= a,
                "{name} went down from {a} to {b} between scrapes {i} and {}",
                i + 1
            );
        }
    }
    let first = parsed[0].samples["asycamore_requests_total"];
    let last = parsed[49].samples["asycamore_requests_total"];
    assert!(last > first, "requests grew: {first} -> {last}");

    // The reference parser, when this machine has it (`.ci/run` installs it).
    let have_client = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if have_client {
        let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
pages = sys.stdin.read().split("\n\f\n")
previous = None
for i, text in enumerate(pages):
    values = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if family.type in ("counter", "histogram"):
                values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    if previous is not None:
        for key, value in values.items():
            assert value >= previous[key], (i, key, previous[key], value)
    previous = values
print("ok", len(pages), len(previous))
"#;
        let mut python = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3");
        let joined = pages.join("\n\u{c}\n");
        python
            .stdin
            .take()
            .unwrap()
            .write_all(joined.as_bytes())
            .unwrap();
        let out = python.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "prometheus_client: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok 50 "));
    }
}
