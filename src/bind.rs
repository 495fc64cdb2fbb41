//! `--bind`: where to listen — `127.0.0.1:8080`, `[::1]:8080`, or `HOST:PORT` with a host name.
//!
//! A host name is resolved once, at start-up (a lookup blocks, so it has no place on a loop),
//! and every address it resolves to that belongs to this machine is bound: `localhost:8080`
//! listens on 127.0.0.1 and, where IPv6 is available, on ::1. An address that is not local
//! (a name that also resolves to a public address of another host) is skipped; a name with no
//! local address at all is an error. An address written as a literal is bound as written, and
//! failing to bind it is an error.
//!
//! `unix:PATH` names a Unix-domain socket file (see [`crate::socket_file`] for how it is
//! bound and removed); TCP and Unix listeners may be given together.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

/// One `--bind` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindSpec {
    /// An IP address and port, bound as written.
    Addr(SocketAddr),
    /// A host name and port, resolved at start-up.
    Host {
        /// The name to resolve.
        host: String,
        /// The port to bind on every address.
        port: u16,
    },
    /// A Unix-domain socket file.
    Unix(PathBuf),
}

/// Why a `--bind` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindError {
    /// Not `HOST:PORT`, `[V6]:PORT` or `unix:PATH`.
    Malformed(String),
    /// The host name did not resolve.
    Unresolved {
        /// The name.
        host: String,
        /// The resolver's message.
        why: String,
    },
    /// The host name resolved, but to no address of this machine.
    NotLocal {
        /// The name.
        host: String,
        /// What it resolved to.
        addrs: Vec<IpAddr>,
    },
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::Malformed(s) => {
                write!(
                    f,
                    "--bind {s:?}: expected HOST:PORT, [IPV6]:PORT or unix:PATH"
                )
            }
            BindError::Unresolved { host, why } => {
                write!(f, "--bind {host}: the host name does not resolve ({why})")
            }
            BindError::NotLocal { host, addrs } => {
                let list: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
                write!(
                    f,
                    "--bind {host}: resolves to no address of this machine ({})",
                    list.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for BindError {}

impl FromStr for BindSpec {
    type Err = BindError;

    fn from_str(s: &str) -> Result<BindSpec, BindError> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(BindError::Malformed(s.to_owned()));
            }
            return Ok(BindSpec::Unix(PathBuf::from(path)));
        }
        // `127.0.0.1:8080` and `[::1]:8080`.
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(BindSpec::Addr(addr));
        }
        let malformed = || BindError::Malformed(s.to_owned());
        let (host, port) = s.rsplit_once(':').ok_or_else(malformed)?;
        let port: u16 = port.parse().map_err(|_| malformed())?;
        // A bracket or a colon left in the host is a mistyped IPv6 literal, not a name.
        if host.is_empty() || host.contains([':', '[', ']', '/', ' ']) {
            return Err(malformed());
        }
        Ok(BindSpec::Host {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for BindSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindSpec::Addr(addr) => write!(f, "{addr}"),
            BindSpec::Host { host, port } => write!(f, "{host}:{port}"),
            BindSpec::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl BindSpec {
    /// The IP addresses to bind: the literal, or every local address the name resolves to (in
    /// the resolver's order, without duplicates); none for a socket file.
    ///
    /// # Errors
    /// [`BindError::Unresolved`] or [`BindError::NotLocal`].
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, BindError> {
        match self {
            BindSpec::Addr(addr) => Ok(vec![*addr]),
            BindSpec::Unix(_) => Ok(Vec::new()),
            BindSpec::Host { host, port } => {
                let found = (host.as_str(), *port).to_socket_addrs().map_err(|e| {
                    BindError::Unresolved {
                        host: host.clone(),
                        why: e.to_string(),
                    }
                })?;
                let mut all: Vec<SocketAddr> = Vec::new();
                for addr in found {
                    if !all.contains(&addr) {
                        all.push(addr);
                    }
                }
                if all.is_empty() {
                    return Err(BindError::Unresolved {
                        host: host.clone(),
                        why: "no address".into(),
                    });
                }
                let local: Vec<SocketAddr> =
                    all.iter().copied().filter(|a| is_local(a.ip())).collect();
                if local.is_empty() {
                    return Err(BindError::NotLocal {
                        host: host.clone(),
                        addrs: all.iter().map(SocketAddr::ip).collect(),
                    });
                }
                Ok(local)
            }
        }
    }
}

/// True if `ip` belongs to this machine: the kernel lets a socket bind it (on an ephemeral port,
/// released at once). A foreign address answers `EADDRNOTAVAIL`, and `::1` on a host without
/// IPv6 answers `EAFNOSUPPORT` or `EADDRNOTAVAIL`. Any other failure (no permission, say) still
/// means the address is local: the real bind will report it.
fn is_local(ip: IpAddr) -> bool {
    if ip.is_unspecified() {
        return true; // 0.0.0.0 and :: mean "every local address"
    }
    match std::net::TcpListener::bind(SocketAddr::new(ip, 0)) {
        Ok(_) => true,
        Err(e) => {
            !matches!(
                e.raw_os_error(),
                Some(libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT)
            ) && e.kind() != io::ErrorKind::AddrNotAvailable
        }
    }
}

/// Everything the `--bind` values name: IP addresses and socket files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// IP addresses, resolved, without duplicates.
    pub inet: Vec<SocketAddr>,
    /// Socket files, without duplicates.
    pub unix: Vec<PathBuf>,
}

/// Every address the `--bind` values name, resolved, without duplicates.
///
/// # Errors
/// The first value that cannot be resolved.
pub fn resolve_all(specs: &[BindSpec]) -> Result<Endpoints, BindError> {
    let mut all = Endpoints::default();
    for spec in specs {
        if let BindSpec::Unix(path) = spec
            && !all.unix.contains(path)
        {
            all.unix.push(path.clone());
        }
        for addr in spec.resolve()? {
            if !all.inet.contains(&addr) {
                all.inet.push(addr);
            }
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_values_parse() {
        let ok = [
            (
                "127.0.0.1:8080",
                BindSpec::Addr(SocketAddr::from(([127, 0, 0, 1], 8080))),
            ),
            ("[::1]:80", BindSpec::Addr("[::1]:80".parse().unwrap())),
            (
                "localhost:8080",
                BindSpec::Host {
                    host: "localhost".into(),
                    port: 8080,
                },
            ),
            ("unix:/run/a.sock", BindSpec::Unix("/run/a.sock".into())),
        ];
        for (text, want) in ok {
            assert_eq!(text.parse::<BindSpec>(), Ok(want.clone()), "{text}");
            assert_eq!(want.to_string(), text);
        }
        for bad in [
            "",
            "8080",
            "localhost",
            "localhost:",
            "localhost:99999",
            ":80",
            "::1:80",
            "[::1:80",
            "unix:",
            "a b:80",
        ] {
            assert!(bad.parse::<BindSpec>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn localhost_resolves_to_loopback_only() {
        let addrs = "localhost:0"
            .parse::<BindSpec>()
            .unwrap()
            .resolve()
            .unwrap();
        assert!(
            addrs.contains(&SocketAddr::from(([127, 0, 0, 1], 0))),
            "{addrs:?}"
        );
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }

    #[test]
    fn unix_and_tcp_together_and_unknown_hosts_are_clear_errors() {
        let specs: Vec<BindSpec> = ["unix:/tmp/x.sock", "127.0.0.1:0", "unix:/tmp/x.sock"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let all = resolve_all(&specs).unwrap();
        assert_eq!(all.unix, vec![PathBuf::from("/tmp/x.sock")]);
        assert_eq!(all.inet, vec![SocketAddr::from(([127, 0, 0, 1], 0))]);
        // `.invalid` never resolves (RFC 6761 §6.4).
        let err = "no-such-host.invalid:80"
            .parse::<BindSpec>()
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(matches!(err, BindError::Unresolved { .. }), "{err}");
    }
}
