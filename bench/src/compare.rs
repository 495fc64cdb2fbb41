//! `compare`: the reproducible side-by-side of asycamore with hyper, may_minihttp and nginx.
//!
//! A driver, not a coroutine: it builds the servers (asycamore from this workspace; the peers from
//! `bench/peers/`, a separate cargo project with its own `[workspace]` table), installs nginx from
//! Debian if missing, starts each server pinned to CPU 0 with `taskset -c 0`, and runs the load tool
//! pinned to CPU 1 through a matrix of cells. For each cell it records requests/s, the server's CPU
//! time per request (utime + stime from `/proc/PID/stat`, before and after) and, for the
//! 1,000-connection cell, the server's `VmRSS` mid-run and `VmHWM` after. The idle cells
//! (`idle1k`, `idle10k`) instead weigh idle keep-alive connections with `asycamore-bench idle`:
//! the server's RSS growth per idle connection, then how long it takes to answer all of them when
//! they ask again together. It writes a Markdown table and a hand-written SVG bar chart to the
//! output directory.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use argh::FromArgs;
use asycamore::units::Seconds;

use crate::chart::{Group, grouped_bars};
use crate::cli::ToolError;

use crate::procfs::{cpu_seconds, vm_kib};
use crate::servers::{
    Running, TempDir, apt_install, build_asycamore, build_project, free_port, start_upstream,
    target_dir, which,
};

/// Side-by-side requests/s, server CPU per request and RSS of asycamore and other servers.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "compare")]
pub struct CompareArgs {
    /// load tool: wrk, load (ours) or both (default wrk)
    #[argh(option, default = "String::from(\"wrk\")")]
    pub tool: String,
    /// comma-separated servers among asycamore, hyper-current, hyper-multi, may-minihttp, nginx,
    /// floor (a do-nothing epoll loop answering every blank line, a floor and not a server;
    /// default all)
    #[argh(option)]
    pub servers: Option<String>,
    /// comma-separated cells among ka50, ka1000, pipe16, close (Connection: close), close10
    /// (HTTP/1.0, measured with ab), proxy (asycamore and nginx as reverse proxies to a hello
    /// upstream), static4k, static64k and static1g (a file from /files/ against nginx with
    /// sendfile), idle1k and idle10k (RSS per idle keep-alive connection, and all of them woken
    /// at once) (default all)
    #[argh(option)]
    pub cells: Option<String>,
    /// time per measured run in whole seconds, e.g. 5s or 1m (default 5s), after a 1 s warm-up
    #[argh(option, default = "Seconds(Duration::from_secs(5))")]
    pub duration: Seconds,
    /// rounds over all servers; each cell reports its median round (default 1)
    #[argh(option, default = "1")]
    pub repeat: usize,
    /// output directory for compare.md and compare.svg (default bench/results)
    #[argh(option, default = "PathBuf::from(\"bench/results\")")]
    pub out: PathBuf,
    /// repository root (default: the current directory)
    #[argh(option, default = "PathBuf::from(\".\")")]
    pub repo: PathBuf,
    /// do not build; use binaries already built
    #[argh(switch)]
    pub no_build: bool,
    /// do not measure: redraw compare.md and compare.svg from the rounds.csv of an earlier run
    #[argh(option)]
    pub replot: Option<PathBuf>,
    /// an earlier build of the asycamore binary, measured in the same rounds as the server
    /// asycamore-base (before/after figures for a change)
    #[argh(option)]
    pub baseline: Option<PathBuf>,
}

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    /// Short name used on the command line.
    pub name: &'static str,
    /// Column title.
    pub title: &'static str,
    /// Connections.
    pub connections: usize,
    /// Pipeline depth.
    pub depth: usize,
    /// One request per connection (`Connection: close`).
    pub close: bool,
    /// HTTP/1.0 without keep-alive, one request per connection: always measured with `ab`
    /// (neither wrk nor our `load` speaks HTTP/1.0), whichever tool is chosen.
    pub http10: bool,
    /// Through the server as a reverse proxy (`/proxy/`) to an upstream `asycamore --app hello`
    /// on CPU 0, with kept-alive upstream connections; only the proxy's CPU is measured.
    pub proxy: bool,
    /// `connections` idle keep-alive connections (one request answered on each), then woken
    /// together, with `asycamore-bench idle` whichever tool is chosen, on a server of its own:
    /// the server's RSS per idle connection, and how long it takes to answer them all.
    pub idle: bool,
    /// A static file of this many bytes (`/files/` with `sendfile(2)`, against nginx with
    /// `sendfile on`), from a folder compare fills at its start.
    pub file: Option<u64>,
}

/// What a cell is unless it says otherwise: keep-alive GETs of hello, one at a time, on 50
/// connections.
const PLAIN: Cell = Cell {
    name: "",
    title: "",
    connections: 50,
    depth: 1,
    close: false,
    http10: false,
    proxy: false,
    idle: false,
    file: None,
};

/// The matrix.
pub const CELLS: [Cell; 11] = [
    Cell {
        name: "ka50",
        title: "keep-alive, 50 conns",
        ..PLAIN
    },
    Cell {
        name: "ka1000",
        title: "keep-alive, 1,000 conns",
        connections: 1000,
        ..PLAIN
    },
    Cell {
        name: "pipe16",
        title: "pipelined 16, 256 conns",
        connections: 256,
        depth: 16,
        ..PLAIN
    },
    Cell {
        name: "close",
        title: "1 request/conn, 50 conns",
        close: true,
        ..PLAIN
    },
    Cell {
        name: "close10",
        title: "HTTP/1.0, 1 request/conn, 50 conns (ab)",
        close: true,
        http10: true,
        ..PLAIN
    },
    Cell {
        name: "proxy",
        title: "reverse proxy to hello, 50 conns",
        proxy: true,
        ..PLAIN
    },
    Cell {
        name: "static4k",
        title: "static 4 KiB file, 50 conns",
        file: Some(4 * 1024),
        ..PLAIN
    },
    Cell {
        name: "static64k",
        title: "static 64 KiB file, 50 conns",
        file: Some(64 * 1024),
        ..PLAIN
    },
    Cell {
        name: "static1g",
        title: "static 1 GiB file, 4 conns",
        connections: 4,
        file: Some(1 << 30),
        ..PLAIN
    },
    Cell {
        name: "idle1k",
        title: "1,000 idle keep-alive conns",
        connections: 1_000,
        idle: true,
        ..PLAIN
    },
    Cell {
        name: "idle10k",
        title: "10,000 idle keep-alive conns",
        connections: 10_000,
        idle: true,
        ..PLAIN
    },
];

/// The tool that measures `cell` when `tool` is chosen: `ab` for the HTTP/1.0 cell.
fn tool_for<'a>(tool: &'a str, cell: &Cell) -> &'a str {
    match cell {
        Cell { http10: true, .. } => "ab",
        Cell { idle: true, .. } => "idle",
        // `load` keeps each response whole to check its framing: not a gigabyte of it.
        Cell {
            file: Some(size), ..
        } if *size > 1 << 20 => "wrk",
        _ => tool,
    }
}

/// True if `server` can do the work of `cell`: the floor keeps every connection open, so it has
/// no close cells, and it is no server to weigh idle connections on; only asycamore and nginx
/// are reverse proxies and file servers.
fn serves(server: &str, cell: &Cell) -> bool {
    if cell.proxy || cell.file.is_some() {
        matches!(server, "asycamore" | "asycamore-base" | "nginx")
    } else {
        // may_minihttp keeps an HTTP/1.0 connection open, and ab waits for the close.
        !(server == "floor" && (cell.close || cell.idle))
            && !(server == "may-minihttp" && cell.http10)
    }
}

/// The servers compare knows.
pub const SERVERS: [&str; 6] = [
    "asycamore",
    "hyper-current",
    "hyper-multi",
    "may-minihttp",
    "nginx",
    "floor",
];

/// What one measured run gave.
#[derive(Debug, Clone, Default)]
pub struct Measure {
    /// Requests per second the tool reported.
    pub rps: f64,
    /// Responses the tool counted in the run.
    pub responses: u64,
    /// Errors of any kind (socket errors, non-2xx, malformed).
    pub errors: u64,
    /// Server CPU time per response, microseconds.
    pub cpu_us_per_request: f64,
    /// Server `VmRSS` mid-run and `VmHWM` after the run, KiB; in an idle cell, `VmRSS` while
    /// the connections are idle and before they opened.
    pub rss_kib: Option<(u64, u64)>,
}

/// Where to find the binaries.
struct Binaries {
    asycamore: PathBuf,
    /// `--baseline`, run as `asycamore-base`.
    baseline: Option<PathBuf>,
    peers: PathBuf,
    /// The floor (`bench/peers/src/bin/floor.rs`), built with the hyper peers.
    floor: PathBuf,
    may: Option<PathBuf>,
    nginx: Option<PathBuf>,
    bench: PathBuf,
}

/// Builds what the chosen servers need (one release build at a time).
fn build(repo: &Path, servers: &[&str], no_build: bool) -> Result<Binaries, String> {
    let target = target_dir(repo);
    let peers_target = target.join("peers");
    let may_target = target.join("peers-may");
    if !no_build {
        eprintln!("compare: building asycamore (release)");
        build_asycamore(repo)?;
        if servers
            .iter()
            .any(|s| s.starts_with("hyper") || *s == "floor")
        {
            eprintln!("compare: building hyper peers in bench/peers (release)");
            build_project(repo, "bench/peers/Cargo.toml", &peers_target)?;
        }
    }
    let mut may = None;
    if servers.contains(&"may-minihttp") {
        let built = no_build
            || build_project(repo, "bench/peers/may-minihttp/Cargo.toml", &may_target)
                .inspect_err(|e| {
                    eprintln!("compare: may_minihttp does not build, skipping it: {e}")
                })
                .is_ok();
        let path = may_target.join("release/asycamore-peer-may");
        if built && path.is_file() {
            may = Some(path);
        }
    }
    let mut nginx = None;
    if servers.contains(&"nginx") {
        if which("nginx").is_none() {
            eprintln!("compare: installing nginx from Debian");
            let _ = apt_install("nginx");
        }
        nginx = which("nginx");
        if nginx.is_none() {
            eprintln!("compare: nginx is not available, skipping it");
        }
    }
    Ok(Binaries {
        asycamore: target.join("release/asycamore"),
        baseline: None,
        peers: peers_target.join("release/hyper-hello"),
        floor: peers_target.join("release/floor"),
        may,
        nginx,
        bench: std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?,
    })
}

/// What a server is started as for a group of cells.
enum Role {
    /// Answering `Hello, World!` (asycamore: `--app hello`).
    Hello,
    /// A reverse proxy to this upstream at `/proxy/` (asycamore: the demo router's).
    Proxy(SocketAddr),
    /// Serving this folder under `/files/` (asycamore: the demo router's, with `sendfile(2)`).
    Files(PathBuf),
}

fn nginx_config(dir: &Path, port: u16, role: &Role) -> String {
    let d = dir.display();
    let (pool, location) = match role {
        // As a proxy: HTTP/1.1 to the upstream with a pool of idle connections (`keepalive`),
        // which needs the client's `Connection` header cleared (nginx's documented way).
        Role::Proxy(up) => (
            format!("  upstream backend {{ server {up}; keepalive 64; }}\n"),
            "location /proxy/ { proxy_pass http://backend/; proxy_http_version 1.1; \
proxy_set_header Connection \"\"; }"
                .to_string(),
        ),
        // nginx's usual static setup: sendfile, with tcp_nopush so a head and the file's first
        // bytes leave in full segments.
        Role::Files(root) => (
            String::new(),
            format!(
                "location /files/ {{ alias {}/; sendfile on; tcp_nopush on; }}",
                root.display()
            ),
        ),
        Role::Hello => (
            String::new(),
            "location / { return 200 \"Hello, World!\"; }".to_string(),
        ),
    };
    format!(
        "worker_processes 1;\ndaemon off;\nmaster_process off;\npid {d}/nginx.pid;\n\
error_log {d}/error.log error;\nworker_rlimit_nofile 20000;\n\
events {{ worker_connections 20000; multi_accept on; }}\n\
http {{\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 120s;\n\
  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{pool}\
  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n    default_type text/plain;\n\
    {location}\n  }}\n}}\n"
    )
}

/// Starts `server` pinned to CPU 0 as `role` and waits until it accepts connections.
fn start(server: &str, bins: &Binaries, role: &Role) -> Result<Running, String> {
    let port = free_port()?;
    let addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut command = Command::new("taskset");
    command.args(["-c", "0"]);
    let mut temp = None;
    match server {
        "asycamore" | "asycamore-base" => {
            let binary = if server == "asycamore" {
                &bins.asycamore
            } else {
                bins.baseline
                    .as_ref()
                    .ok_or("asycamore-base needs --baseline")?
            };
            // One worker, as nginx has one: the server has one core (CPU 0) to itself.
            command
                .arg(binary)
                .args(["--quiet", "--workers", "1", "--bind"])
                .arg(addr.to_string());
            match role {
                // The demo router, whose `/proxy/` relays to the upstream.
                Role::Proxy(up) => command.arg("--upstream").arg(up.to_string()),
                // The demo router, whose `/files/` serves the folder.
                Role::Files(root) => command.arg("--root").arg(root),
                Role::Hello => command.args(["--app", "hello"]),
            };
        }
        "hyper-current" | "hyper-multi" => {
            let flavor = if server == "hyper-multi" {
                "multi"
            } else {
                "current"
            };
            command.arg(&bins.peers).arg(addr.to_string()).arg(flavor);
        }
        "may-minihttp" => {
            let path = bins.may.as_ref().ok_or("may_minihttp was not built")?;
            command.arg(path).arg(addr.to_string());
        }
        "floor" => {
            command.arg(&bins.floor).arg(addr.to_string());
        }
        "nginx" => {
            let nginx = bins.nginx.as_ref().ok_or("nginx is not installed")?;
            let dir = std::env::temp_dir().join(format!("asycamore-nginx-{port}"));
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let conf = dir.join("nginx.conf");
            std::fs::write(&conf, nginx_config(&dir, port, role))
                .map_err(|e| format!("{}: {e}", conf.display()))?;
            command
                .arg(nginx)
                .arg("-p")
                .arg(&dir)
                .arg("-e")
                .arg(dir.join("error.log"))
                .arg("-c")
                .arg(&conf);
            temp = Some(TempDir(dir));
        }
        other => return Err(format!("unknown server {other}")),
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {server}: {e}"))?;
    Running::started(server, child, addr, temp)
}

/// The wrk script for pipelining: `depth` requests written as one batch.
const WRK_PIPELINE_LUA: &str = "-- pipelining for wrk: the request repeated `depth` times\n\
init = function(args)\n  local depth = tonumber(args[1]) or 1\n  local r = {}\n\
  for i = 1, depth do r[i] = wrk.format() end\n  req = table.concat(r)\nend\n\
request = function() return req end\n";

/// The command for one run of `tool` on `cell`.
fn tool_command(
    tool: &str,
    cell: &Cell,
    addr: SocketAddr,
    seconds: u64,
    bins: &Binaries,
    lua: &Path,
) -> Command {
    let path = match cell.file {
        Some(size) => format!("/files/{}", file_name(size)),
        None if cell.proxy => "/proxy/".into(),
        None => "/".into(),
    };
    let url = format!("http://{addr}{path}");
    let mut command = Command::new("taskset");
    command.args(["-c", "1"]);
    if tool_for(tool, cell) == "ab" {
        // -t implies -n 50000, so -n comes after it to let the time limit end the run.
        command
            .args(["ab", "-q", "-s", "5", "-t"])
            .arg(seconds.to_string())
            .args(["-n", "100000000", "-c"])
            .arg(cell.connections.to_string())
            .arg(&url);
    } else if tool_for(tool, cell) == "wrk" {
        // A gigabyte shared by a few connections takes seconds per response.
        let timeout = if cell.file.is_some() { "60s" } else { "5s" };
        command
            .arg("wrk")
            .args(["-t1", "--timeout", timeout])
            .arg(format!("-c{}", cell.connections))
            .arg(format!("-d{seconds}s"));
        if cell.close {
            command.args(["-H", "Connection: close"]);
        }
        if cell.depth > 1 {
            command.arg("-s").arg(lua);
        }
        command.arg(&url);
        if cell.depth > 1 {
            command.arg("--").arg(cell.depth.to_string());
        }
    } else {
        command
            .arg(&bins.bench)
            .arg("load")
            .arg(&url)
            .arg("-c")
            .arg(cell.connections.to_string())
            .arg("-p")
            .arg(cell.depth.to_string())
            .arg("-d")
            .arg(seconds.to_string())
            .arg("--json");
        if cell.close {
            command.arg("--close");
        }
    }
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

/// The number after `key` in `text` (e.g. `"Requests/sec:"` in wrk's output).
fn number_after(text: &str, key: &str) -> Option<f64> {
    let at = text.find(key)? + key.len();
    let rest = text[at..].trim_start_matches([' ', ':', '"']);
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Reads requests/s, responses and errors from the tool's output.
fn parse_tool_output(tool: &str, out: &str) -> Option<(f64, u64, u64)> {
    if tool == "ab" {
        let rps = number_after(out, "Requests per second:")?;
        let responses = number_after(out, "Complete requests:")? as u64;
        let errors = number_after(out, "Failed requests:").unwrap_or(0.0)
            + number_after(out, "Non-2xx responses:").unwrap_or(0.0);
        Some((rps, responses, errors as u64))
    } else if tool == "wrk" {
        let rps = number_after(out, "Requests/sec:")?;
        let responses = out
            .lines()
            .find(|l| l.contains("requests in"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())?;
        let mut errors = 0;
        if let Some(line) = out.lines().find(|l| l.contains("Socket errors:")) {
            errors += line
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum::<u64>();
        }
        errors += number_after(out, "Non-2xx or 3xx responses:").unwrap_or(0.0) as u64;
        Some((rps, responses, errors))
    } else {
        let rps = number_after(out, "\"requests_per_sec\"")?;
        let responses = number_after(out, "\"responses_total\"")? as u64;
        let errors = ["\"connect\"", "\"read\"", "\"malformed\"", "\"timeout\""]
            .iter()
            .filter_map(|k| number_after(out, k))
            .sum::<f64>() as u64;
        Some((rps, responses, errors))
    }
}

/// Runs one measured cell (after a warm-up) against a running server.
fn measure(
    tool: &str,
    cell: &Cell,
    server: &Running,
    seconds: u64,
    bins: &Binaries,
    lua: &Path,
) -> Result<Measure, String> {
    let pid = server.child.id();
    // Warm-up: fills caches, grows buffers, settles connection setup.
    let _ = tool_command(tool, cell, server.addr, 1, bins, lua).output();
    let before = cpu_seconds(pid).ok_or("cannot read the server's /proc/PID/stat")?;
    let child = tool_command(tool, cell, server.addr, seconds, bins, lua)
        .spawn()
        .map_err(|e| format!("starting {tool}: {e}"))?;
    let mut rss = None;
    if cell.connections >= 1000 || cell.file.is_some() {
        std::thread::sleep(Duration::from_millis(seconds * 500));
        rss = vm_kib(pid, "VmRSS");
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("waiting for {tool}: {e}"))?;
    let after = cpu_seconds(pid).ok_or("cannot read the server's /proc/PID/stat")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let (rps, responses, errors) =
        parse_tool_output(tool_for(tool, cell), &text).ok_or_else(|| {
            format!(
                "cannot read {tool}'s output: {text}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    let hwm = vm_kib(pid, "VmHWM");
    Ok(Measure {
        rps,
        responses,
        errors,
        cpu_us_per_request: (after - before) * 1e6 / responses.max(1) as f64,
        rss_kib: rss.zip(hwm),
    })
}

/// The name of the static cells' file of `size` bytes.
fn file_name(size: u64) -> String {
    format!("f{size}")
}

/// Writes each static cell's file into a new temporary folder (removed when dropped): bytes of a
/// repeating pattern, written through (not a sparse file, whose holes read as zero pages).
fn static_files(cells: &[Cell]) -> Result<TempDir, String> {
    use std::io::Write as _;
    let dir = TempDir(std::env::temp_dir().join(format!("asycamore-files-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).map_err(|e| format!("{}: {e}", dir.0.display()))?;
    let piece: Vec<u8> = (0..1 << 20).map(|i: u32| b'a' + (i % 26) as u8).collect();
    for size in cells.iter().filter_map(|c| c.file) {
        let path = dir.0.join(file_name(size));
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?,
        );
        let mut left = size;
        while left > 0 {
            let n = left.min(piece.len() as u64) as usize;
            file.write_all(&piece[..n])
                .map_err(|e| format!("{}: {e}", path.display()))?;
            left -= n as u64;
        }
        file.flush()
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(dir)
}

/// Measures an idle cell: the server's `VmRSS` before `asycamore-bench idle` opens
/// `cell.connections` connections and while they are idle (once all are answered), and how long
/// the server takes to answer all of them when they ask again together (`rps` is connections
/// over that time).
fn measure_idle(cell: &Cell, server: &Running, bins: &Binaries) -> Result<Measure, String> {
    use std::io::BufRead as _;
    let pid = server.child.id();
    // Warm-up: a few connections come and go first, so what serving at all costs once (the
    // first buffers, lazily touched pages of code and data) is in the base, not in the figure
    // per connection, where at 1,000 connections it would weigh 100 bytes or more.
    let _ = Command::new(&bins.bench)
        .args(["idle", "--hold", "100ms", "-c", "50"])
        .arg(format!("http://{}/", server.addr))
        .output();
    std::thread::sleep(Duration::from_millis(200));
    let base = vm_kib(pid, "VmRSS").ok_or("cannot read the server's /proc/PID/status")?;
    let cpu_before = cpu_seconds(pid).ok_or("cannot read the server's /proc/PID/stat")?;
    let mut child = Command::new("taskset")
        .args(["-c", "1"])
        .arg(&bins.bench)
        .args(["idle", "--hold", "2", "-c"])
        .arg(cell.connections.to_string())
        .arg(format!("http://{}/", server.addr))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting asycamore-bench idle: {e}"))?;
    let stdout = child.stdout.take().ok_or("idle: no stdout")?;
    let mut held = None;
    let mut woke = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading idle's output: {e}"))?;
        if line.starts_with("held ") {
            held = vm_kib(pid, "VmRSS");
        }
        if line.starts_with("woke ") {
            woke = Some(line);
        }
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("waiting for idle: {e}"))?;
    let cpu_after = cpu_seconds(pid).ok_or("cannot read the server's /proc/PID/stat")?;
    let (woke, held) = match (woke, held) {
        (Some(w), Some(h)) if output.status.success() => (w, h),
        _ => {
            return Err(format!(
                "asycamore-bench idle failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    };
    let all_ms = number_after(&woke, "all answered in ").ok_or_else(|| format!("idle: {woke}"))?;
    let responses = 2 * cell.connections as u64;
    Ok(Measure {
        rps: cell.connections as f64 / (all_ms / 1000.0).max(1e-6),
        responses,
        errors: 0,
        cpu_us_per_request: (cpu_after - cpu_before) * 1e6 / responses as f64,
        rss_kib: Some((held, base)),
    })
}

/// Bytes of server RSS per idle connection in an idle cell's measure.
fn idle_bytes(cell: &Cell, m: &Measure) -> Option<f64> {
    let (held, base) = m.rss_kib?;
    Some(held.saturating_sub(base) as f64 * 1024.0 / cell.connections as f64)
}

/// All results: `(server, cell name, tool) → measure`.
type Results = Vec<(String, &'static str, String, Measure)>;

/// The header of `rounds.csv`, one line per measured run.
const CSV_HEADER: &str = "server,cell,tool,rps,responses,errors,cpu_us_per_request,rss_kib,hwm_kib";

/// Every measured run as CSV, so a report can be redrawn without measuring again.
fn to_csv(rounds: &Results) -> String {
    let mut s = format!("{CSV_HEADER}\n");
    for (server, cell, tool, m) in rounds {
        let (rss, hwm) = m.rss_kib.map_or((String::new(), String::new()), |(r, h)| {
            (r.to_string(), h.to_string())
        });
        let _ = writeln!(
            s,
            "{server},{cell},{tool},{:.1},{},{},{:.4},{rss},{hwm}",
            m.rps, m.responses, m.errors, m.cpu_us_per_request
        );
    }
    s
}

/// Reads `rounds.csv` back.
fn from_csv(text: &str) -> Result<Results, String> {
    let mut rounds = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let bad = || format!("rounds.csv line {}: {line:?}", n + 1);
        if f.len() != 9 {
            return Err(bad());
        }
        let cell = CELLS.iter().find(|c| c.name == f[1]).ok_or_else(bad)?.name;
        let rss = match (f[7].parse(), f[8].parse()) {
            (Ok(r), Ok(h)) => Some((r, h)),
            _ => None,
        };
        let m = Measure {
            rps: f[3].parse().map_err(|_| bad())?,
            responses: f[4].parse().map_err(|_| bad())?,
            errors: f[5].parse().map_err(|_| bad())?,
            cpu_us_per_request: f[6].parse().map_err(|_| bad())?,
            rss_kib: rss,
        };
        rounds.push((f[0].to_string(), cell, f[2].to_string(), m));
    }
    Ok(rounds)
}

/// Each `(server, cell, tool)`'s median run by requests/s.
fn medians(rounds: &Results, servers: &[&str], cells: &[Cell], tools: &[&str]) -> Results {
    let mut results: Results = Vec::new();
    for server in servers {
        for cell in cells {
            // An idle cell is measured by its own tool, once per round.
            let cell_tools: &[&str] = if cell.idle { &["idle"] } else { tools };
            for tool in cell_tools {
                let mut runs: Vec<&Measure> = rounds
                    .iter()
                    .filter(|(s, c, t, _)| s == server && *c == cell.name && t == tool)
                    .map(|(_, _, _, m)| m)
                    .collect();
                runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
                if let Some(m) = runs.get(runs.len() / 2) {
                    results.push((
                        server.to_string(),
                        cell.name,
                        tool.to_string(),
                        (*m).clone(),
                    ));
                }
            }
        }
    }
    results
}

fn find<'a>(results: &'a Results, server: &str, cell: &str, tool: &str) -> Option<&'a Measure> {
    results
        .iter()
        .find(|(s, c, t, _)| s == server && *c == cell && t == tool)
        .map(|(_, _, _, m)| m)
}

/// The Markdown report.
fn markdown(
    results: &Results,
    servers: &[&str],
    cells: &[Cell],
    tools: &[&str],
    seconds: u64,
    repeat: usize,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Server pinned to CPU 0 (`taskset -c 0`), load tool to CPU 1; {seconds} s per cell after a \
1 s warm-up, median of {repeat} interleaved round(s); `--app hello`-equivalent servers answering `Hello, World!`. Ratios are to asycamore \
in the same cell (above 1 = faster than asycamore). CPU is the server's utime+stime per response."
    );
    let (idle, cells): (Vec<Cell>, Vec<Cell>) = cells.iter().partition(|c| c.idle);
    let cells = &cells[..];
    for tool in tools.iter().filter(|_| !cells.is_empty()) {
        let _ = writeln!(s, "\n### Requests/s (load tool: {tool})\n");
        let _ = write!(s, "| server |");
        for cell in cells {
            let _ = write!(s, " {} |", cell.title);
        }
        let _ = write!(s, "\n|---|");
        for _ in cells {
            let _ = write!(s, "---:|");
        }
        s.push('\n');
        for server in servers {
            let _ = write!(s, "| {server} |");
            for cell in cells {
                let base = find(results, "asycamore", cell.name, tool).map(|m| m.rps);
                match find(results, server, cell.name, tool) {
                    Some(m) => {
                        let ratio = base
                            .filter(|b| *b > 0.0)
                            .map(|b| format!(" ({:.2}×)", m.rps / b))
                            .unwrap_or_default();
                        let errors = if m.errors > 0 {
                            format!(", {} errors", m.errors)
                        } else {
                            String::new()
                        };
                        // A file cell's requests/s times its size: the throughput.
                        let rate = cell
                            .file
                            .map(|size| format!(", {:.2} GB/s", m.rps * size as f64 / 1e9))
                            .unwrap_or_default();
                        // A gigabyte a response: a few per second, worth a decimal.
                        let digits = if m.rps < 100.0 { 1 } else { 0 };
                        let _ = write!(s, " {:.digits$}{ratio}{rate}{errors} |", m.rps);
                    }
                    None => s.push_str(" — |"),
                }
            }
            s.push('\n');
        }
        let _ = writeln!(s, "\n### Server CPU µs per request (load tool: {tool})\n");
        let _ = write!(s, "| server |");
        for cell in cells {
            let _ = write!(s, " {} |", cell.title);
        }
        let _ = write!(s, " RSS at 1,000 conns (VmRSS / VmHWM) |\n|---|");
        for _ in cells {
            let _ = write!(s, "---:|");
        }
        s.push_str("---:|\n");
        for server in servers {
            let _ = write!(s, "| {server} |");
            for cell in cells {
                match find(results, server, cell.name, tool) {
                    Some(m) => {
                        let _ = write!(s, " {:.2} |", m.cpu_us_per_request);
                    }
                    None => s.push_str(" — |"),
                }
            }
            match find(results, server, "ka1000", tool).and_then(|m| m.rss_kib) {
                Some((rss, hwm)) => {
                    let _ = writeln!(
                        s,
                        " {:.1} MiB / {:.1} MiB |",
                        rss as f64 / 1024.0,
                        hwm as f64 / 1024.0
                    );
                }
                None => s.push_str(" — |\n"),
            }
        }
    }
    for cell in &idle {
        let _ = writeln!(
            s,
            "\n### {} (`asycamore-bench idle`: one request answered on each, held 2 s, then all \
ask again at once)\n\n| server | server RSS per idle connection | all answered when woken | server \
CPU µs per request |\n|---|---:|---:|---:|",
            cell.title
        );
        for server in servers {
            if let Some(m) = find(results, server, cell.name, "idle") {
                let _ = writeln!(
                    s,
                    "| {server} | {:.0} B | {:.0} ms | {:.2} |",
                    idle_bytes(cell, m).unwrap_or(f64::NAN),
                    cell.connections as f64 / m.rps * 1000.0,
                    m.cpu_us_per_request
                );
            }
        }
    }
    s
}

/// A grouped bar chart of requests/s (one group per cell, one bar per server), as SVG text.
fn svg(results: &Results, servers: &[&str], cells: &[Cell], tool: &str) -> String {
    let groups: Vec<Group> = cells
        .iter()
        .filter(|cell| !cell.idle)
        .map(|cell| Group {
            label: cell.title.to_owned(),
            values: servers
                .iter()
                .map(|server| find(results, server, cell.name, tool).map(|m| m.rps))
                .collect(),
        })
        .collect();
    let first = servers.first().copied().unwrap_or("asycamore");
    let title = format!(
        "Requests/s, server on 1 core (load tool: {tool}); each group on its own scale, ratio to \
{first} above each bar"
    );
    grouped_bars(&title, servers, &groups, "req/s", |v| {
        format!("{:.0}k", v / 1000.0)
    })
}

/// The `compare` subcommand.
///
/// # Errors
/// A usage error for a bad flag; a failure if a build fails, a server does not start or a
/// tool's output cannot be read.
pub fn main(args: CompareArgs) -> Result<(), ToolError> {
    let seconds = args.duration.get();
    if seconds.is_zero() || seconds.subsec_nanos() != 0 {
        // wrk takes whole seconds, and both tools must measure the same span.
        return Err(ToolError::Usage(
            "--duration must be a whole number of seconds".into(),
        ));
    }
    let seconds = seconds.as_secs();
    compare(&args, seconds)
}

/// [`main`] once the flags are checked; `seconds` is the measured run's length.
fn compare(args: &CompareArgs, seconds: u64) -> Result<(), ToolError> {
    let mut servers: Vec<&str> = match &args.servers {
        Some(list) => list.split(',').map(str::trim).collect(),
        None => SERVERS.to_vec(),
    };
    if args.baseline.is_some() && !servers.contains(&"asycamore-base") {
        servers.insert(1, "asycamore-base");
    }
    let known =
        |s: &&str| SERVERS.contains(s) || (*s == "asycamore-base" && args.baseline.is_some());
    if let Some(bad) = servers.iter().find(|s| !known(s)) {
        return Err(ToolError::Usage(format!(
            "unknown server {bad}; choose from {SERVERS:?} (and asycamore-base with --baseline)"
        )));
    }
    let cells: Vec<Cell> = match &args.cells {
        Some(list) => list
            .split(',')
            .map(|name| {
                CELLS
                    .iter()
                    .find(|c| c.name == name.trim())
                    .copied()
                    .ok_or_else(|| {
                        format!(
                            "unknown cell {name}; choose ka50, ka1000, pipe16, close, close10, proxy, \
static4k, static64k, static1g, idle1k, idle10k"
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map_err(ToolError::Usage)?,
        None => CELLS.to_vec(),
    };
    let tools: Vec<&str> = match args.tool.as_str() {
        "wrk" => vec!["wrk"],
        "load" => vec!["load"],
        "both" => vec!["wrk", "load"],
        other => {
            return Err(ToolError::Usage(format!(
                "--tool {other}: choose wrk, load or both"
            )));
        }
    };
    if let Some(csv) = &args.replot {
        let text = std::fs::read_to_string(csv).map_err(|e| format!("{}: {e}", csv.display()))?;
        let rounds = from_csv(&text)?;
        let results = medians(&rounds, &servers, &cells, &tools);
        let servers: Vec<&str> = servers
            .into_iter()
            .filter(|s| results.iter().any(|(r, _, _, _)| r == s))
            .collect();
        return Ok(write_report(args, &results, &servers, &cells, &tools)?);
    }
    if tools.contains(&"wrk") && which("wrk").is_none() {
        eprintln!("compare: installing wrk from Debian");
        apt_install("wrk")?;
    }
    if cells.iter().any(|c| c.http10) && which("ab").is_none() {
        eprintln!("compare: installing ab (apache2-utils) from Debian");
        apt_install("apache2-utils")?;
    }
    let _ = asycamore::executor::net::raise_fd_limit();
    let mut bins = build(&args.repo, &servers, args.no_build)?;
    bins.baseline.clone_from(&args.baseline);
    let servers: Vec<&str> = servers
        .into_iter()
        .filter(|s| match *s {
            "may-minihttp" => bins.may.is_some(),
            "nginx" => bins.nginx.is_some(),
            _ => true,
        })
        .collect();
    let lua_dir =
        TempDir(std::env::temp_dir().join(format!("asycamore-wrk-{}", std::process::id())));
    std::fs::create_dir_all(&lua_dir.0).map_err(|e| format!("temp dir: {e}"))?;
    let lua = lua_dir.0.join("pipeline.lua");
    std::fs::write(&lua, WRK_PIPELINE_LUA).map_err(|e| format!("{}: {e}", lua.display()))?;
    println!(
        "compare: load tool {}; servers {}; {} s per cell",
        tools.join(" and "),
        servers.join(", "),
        seconds
    );
    // The proxy cell's upstream, on CPU 0 beside the proxy (beside the load tool, which spins,
    // it would be starved), for the whole run.
    let upstream = match cells.iter().any(|c| c.proxy) {
        true => Some(start_upstream(&bins.asycamore)?),
        false => None,
    };
    // The static cells' files, in a folder of their own for the whole run.
    let files = match cells.iter().any(|c| c.file.is_some()) {
        true => Some(static_files(&cells)?),
        false => None,
    };
    // Rounds interleave the servers, so a burst of other work on the machine hits all of them
    // rather than one; each cell keeps its median round.
    let mut rounds: Results = Vec::new();
    for round in 0..args.repeat.max(1) {
        for server in &servers {
            // The plain cells on one server; the proxy cells on another, started as a proxy;
            // the static cells on a file server; each idle cell on a fresh one, so its memory
            // grows from the server's start.
            let served: Vec<&Cell> = cells.iter().filter(|c| serves(server, c)).collect();
            let of = |keep: &dyn Fn(&Cell) -> bool| -> Vec<&Cell> {
                served.iter().copied().filter(|c| keep(c)).collect()
            };
            let mut groups = vec![(
                of(&|c| !c.proxy && !c.idle && c.file.is_none()),
                Role::Hello,
            )];
            groups.extend(of(&|c| c.idle).into_iter().map(|c| (vec![c], Role::Hello)));
            if let Some(files) = &files {
                groups.push((of(&|c| c.file.is_some()), Role::Files(files.0.clone())));
            }
            if let Some(up) = &upstream {
                groups.push((of(&|c| c.proxy), Role::Proxy(up.addr)));
            }
            for (group, role) in groups {
                if group.is_empty() {
                    continue;
                }
                let running = start(server, &bins, &role)?;
                for cell in group {
                    if cell.idle {
                        let m = measure_idle(cell, &running, &bins)?;
                        println!(
                            "#{round} {server:>14} {:>26}  idle: {:>5.0} B/conn idle, all {} woken \
answered at {:.0} req/s, {:.2} µs CPU/req, {} errors",
                            cell.title,
                            idle_bytes(cell, &m).unwrap_or(f64::NAN),
                            cell.connections,
                            m.rps,
                            m.cpu_us_per_request,
                            m.errors
                        );
                        rounds.push((server.to_string(), cell.name, "idle".into(), m));
                        continue;
                    }
                    for tool in &tools {
                        let m = measure(tool, cell, &running, seconds, &bins, &lua)?;
                        println!(
                            "#{round} {server:>14} {:>26} {tool:>5}: {:>9.0} req/s  {:>6.2} µs CPU/req  \
{} errors{}",
                            cell.title,
                            m.rps,
                            m.cpu_us_per_request,
                            m.errors,
                            m.rss_kib
                                .map(|(r, h)| format!("  RSS {r} KiB, HWM {h} KiB"))
                                .unwrap_or_default()
                        );
                        rounds.push((server.to_string(), cell.name, tool.to_string(), m));
                    }
                }
                drop(running);
            }
        }
    }
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let csv_path = args.out.join("rounds.csv");
    std::fs::write(&csv_path, to_csv(&rounds))
        .map_err(|e| format!("{}: {e}", csv_path.display()))?;
    let results = medians(&rounds, &servers, &cells, &tools);
    Ok(write_report(args, &results, &servers, &cells, &tools)?)
}

/// Writes compare.md and compare.svg and prints the table.
fn write_report(
    args: &CompareArgs,
    results: &Results,
    servers: &[&str],
    cells: &[Cell],
    tools: &[&str],
) -> Result<(), String> {
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let md = markdown(
        results,
        servers,
        cells,
        tools,
        args.duration.get().as_secs(),
        args.repeat.max(1),
    );
    let md_path = args.out.join("compare.md");
    std::fs::write(&md_path, &md).map_err(|e| format!("{}: {e}", md_path.display()))?;
    let svg_path = args.out.join("compare.svg");
    std::fs::write(&svg_path, svg(results, servers, cells, tools[0]))
        .map_err(|e| format!("{}: {e}", svg_path.display()))?;
    println!("\n{md}");
    println!(
        "compare: wrote {} and {}",
        md_path.display(),
        svg_path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_and_load_output() {
        let wrk = "Running 5s test @ http://127.0.0.1:1/\n  134777 requests in 3.04s, 17.22MB read\n\
  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 4\n\
Requests/sec:  44261.91\n";
        assert_eq!(parse_tool_output("wrk", wrk), Some((44261.91, 134777, 7)));
        let load = "{\"requests_per_sec\":541866.7,\"responses_total\":1629696,\
\"errors\":{\"connect\":1,\"read\":2,\"malformed\":0,\"timeout\":0}}";
        assert_eq!(
            parse_tool_output("load", load),
            Some((541866.7, 1629696, 3))
        );
    }

    #[test]
    fn reads_ab_output_and_measures_http10_with_it() {
        let ab = "Complete requests:      20000\nFailed requests:        3\n\
Non-2xx responses:      2\nRequests per second:    12345.67 [#/sec] (mean)\n";
        assert_eq!(parse_tool_output("ab", ab), Some((12345.67, 20000, 5)));
        let close10 = CELLS.iter().find(|c| c.name == "close10").expect("cell");
        assert_eq!(tool_for("wrk", close10), "ab");
        assert_eq!(tool_for("load", &CELLS[0]), "load");
    }

    #[test]
    fn the_proxy_cell_runs_on_proxies_and_nginx_pools_its_upstream_connections() {
        let proxy = CELLS.iter().find(|c| c.name == "proxy").expect("cell");
        let close = CELLS.iter().find(|c| c.name == "close").expect("cell");
        assert!(serves("nginx", proxy) && serves("asycamore", proxy));
        assert!(!serves("hyper-current", proxy) && !serves("floor", proxy));
        assert!(!serves("floor", close) && serves("floor", &CELLS[0]));
        let dir = Path::new("/tmp/x");
        let up = SocketAddr::from(([127, 0, 0, 1], 9));
        let conf = nginx_config(dir, 8, &Role::Proxy(up));
        assert!(conf.contains("upstream backend { server 127.0.0.1:9; keepalive 64; }"));
        assert!(conf.contains("proxy_pass http://backend/;"));
        assert!(conf.contains("proxy_set_header Connection \"\";"));
        assert!(!conf.contains("return 200"));
        assert!(nginx_config(dir, 8, &Role::Hello).contains("return 200"));
    }

    #[test]
    fn static_and_idle_cells_run_where_they_can_and_nginx_sends_files_with_sendfile() {
        let cell = |name| *CELLS.iter().find(|c| c.name == name).expect("cell");
        let (file, idle) = (cell("static4k"), cell("idle10k"));
        assert!(serves("nginx", &file) && serves("asycamore", &file));
        assert!(!serves("hyper-current", &file) && !serves("floor", &file));
        assert!(serves("hyper-current", &idle) && !serves("floor", &idle));
        assert_eq!(tool_for("load", &cell("static1g")), "wrk");
        assert_eq!(tool_for("wrk", &idle), "idle");
        let conf = nginx_config(Path::new("/tmp/x"), 8, &Role::Files("/srv/f".into()));
        assert!(conf.contains("location /files/ { alias /srv/f/; sendfile on; tcp_nopush on; }"));
        let m = Measure {
            rps: 1.0,
            responses: 2,
            errors: 0,
            cpu_us_per_request: 1.0,
            rss_kib: Some((3000, 2000)),
        };
        assert_eq!(idle_bytes(&idle, &m), Some(1000.0 * 1024.0 / 10_000.0));
    }

    #[test]
    fn rounds_survive_csv_and_medians_pick_the_middle_run() {
        let m = |rps: f64, rss| Measure {
            rps,
            responses: 10,
            errors: 0,
            cpu_us_per_request: 1.5,
            rss_kib: rss,
        };
        let rounds: Results = vec![
            (
                "asycamore".into(),
                "ka1000",
                "wrk".into(),
                m(3.0, Some((7, 8))),
            ),
            ("asycamore".into(), "ka1000", "wrk".into(), m(1.0, None)),
            (
                "asycamore".into(),
                "ka1000",
                "wrk".into(),
                m(2.0, Some((5, 6))),
            ),
        ];
        let back = from_csv(&to_csv(&rounds)).unwrap();
        assert_eq!(back.len(), 3);
        let med = medians(&back, &["asycamore"], &CELLS, &["wrk"]);
        assert_eq!(med.len(), 1);
        assert_eq!(med[0].3.rps, 2.0);
        assert_eq!(med[0].3.rss_kib, Some((5, 6)));
        let svg = svg(&med, &["asycamore"], &CELLS, "wrk");
        assert!(svg.starts_with("<svg") && svg.contains("1.00"));
    }

    #[test]
    fn reads_proc_stat_of_this_process() {
        assert!(cpu_seconds(std::process::id()).is_some());
        assert!(vm_kib(std::process::id(), "VmRSS").is_some_and(|k| k > 0));
    }
}
