//! Running servers for the side-by-side tools (`compare`, `profiles`): building with cargo,
//! installing a Debian package, a free port, and a server process that is waited for until it
//! accepts and killed when dropped.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Where cargo puts builds: `CARGO_TARGET_DIR`, else `repo/target`.
pub fn target_dir(repo: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"))
}

/// The cargo that runs this tool (`CARGO`), else `cargo` from `PATH`.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs `command` to its end.
///
/// # Errors
/// One line naming the command, if it cannot start or fails.
pub fn run_status(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .map_err(|e| format!("{shown}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown}: {status}"))
    }
}

/// Builds the `asycamore` binary in release, into the target folder of `repo`.
///
/// # Errors
/// As [`run_status`].
pub fn build_asycamore(repo: &Path) -> Result<(), String> {
    run_status(
        Command::new(cargo())
            .current_dir(repo)
            .args([
                "build",
                "--release",
                "-p",
                "asycamore",
                "--bin",
                "asycamore",
            ])
            .env("CARGO_TARGET_DIR", target_dir(repo)),
    )
}

/// Builds the separate cargo project whose manifest is `manifest` (under `repo`, such as
/// `bench/peers/Cargo.toml`) in release, into `target`.
///
/// # Errors
/// As [`run_status`].
pub fn build_project(repo: &Path, manifest: &str, target: &Path) -> Result<(), String> {
    run_status(
        Command::new(cargo())
            .args(["build", "--release", "--manifest-path"])
            .arg(repo.join(manifest))
            .arg("--target-dir")
            .arg(target),
    )
}

/// Installs a Debian package (`apt-get update`, then `install -y`).
///
/// # Errors
/// As [`run_status`], for the install.
pub fn apt_install(package: &str) -> Result<(), String> {
    let _ = run_status(Command::new("apt-get").arg("update").arg("-qq"));
    run_status(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", package])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// The program `name` on `PATH` (or in `/usr/sbin`, `/sbin`, where nginx lives).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A free port on 127.0.0.1 (bound and released; good enough for a benchmark).
///
/// # Errors
/// If no port can be bound.
pub fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

/// A running server process; killed when dropped.
pub struct Running {
    /// The process.
    pub child: Child,
    /// Where it accepts.
    pub addr: SocketAddr,
    /// Its scratch folder, removed after it is killed.
    pub _temp: Option<TempDir>,
}

impl Running {
    /// Waits (up to 10 s) until `child`, the server called `name`, accepts on `addr`.
    ///
    /// # Errors
    /// If it does not (the child is killed).
    pub fn started(
        name: &str,
        child: Child,
        addr: SocketAddr,
        temp: Option<TempDir>,
    ) -> Result<Running, String> {
        let running = Running {
            child,
            addr,
            _temp: temp,
        };
        let give_up = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > give_up {
                return Err(format!("{name} does not accept on {addr}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(running)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A reverse proxy's upstream for `compare` and `profiles`: `asycamore` (the demo binary) with
/// `--app hello` and one worker, pinned to CPU 0 beside the proxy (beside the load tool, which
/// spins while it waits for its next send, it would be starved).
pub fn start_upstream(asycamore: &Path) -> Result<Running, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(asycamore)
        .args(["--quiet", "--workers", "1", "--app", "hello", "--bind"])
        .arg(addr.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the upstream: {e}"))?;
    Running::started("upstream", child, addr, None)
}
