//! The socket file of a `--bind unix:PATH`: binding it as a careful operator would, and removing
//! it when the server is done with it.
//!
//! A Unix-domain socket is a name in the filesystem that outlives the process: a server killed
//! with SIGKILL leaves its file behind, and `bind` then fails with "address in use" although
//! nobody listens. So, as nginx and gunicorn do, a file that is already there is probed first:
//!
//! - nothing there: bind;
//! - a socket nobody accepts on (connecting is refused): stale, replaced;
//! - a socket a live server accepts on: "address in use", exactly as a TCP port in use;
//! - anything else (a folder, a regular file): refused, never removed.
//!
//! The file's mode says who may connect (connecting needs write permission, see unix(7)): it is
//! set between `bind` and `listen`, so no client ever connects through a wider mode.
//!
//! At exit the server removes the file, if it is still ours (the same inode: a file another
//! server has put there since is left alone) and no new process took the listener over in a
//! restart ([`crate::restart`]): that one serves on the same socket and removes the file itself.

use std::fmt;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use executor::Step;
use executor::unix::{UnixListener, UnixStream};

/// The mode of a socket file when `--unix-mode` is not given: the owner and the group may
/// connect (put nginx's user in the server's group), others may not.
pub const DEFAULT_MODE: FileMode = FileMode(0o660);

/// Permission bits for a socket file, written in octal as `chmod` takes them (`660`, `0660`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(pub u32);

impl FromStr for FileMode {
    type Err = String;
    fn from_str(s: &str) -> Result<FileMode, String> {
        let digits = s.strip_prefix("0o").unwrap_or(s);
        match u32::from_str_radix(digits, 8) {
            Ok(mode) if !digits.is_empty() && mode <= 0o777 && !digits.starts_with('+') => {
                Ok(FileMode(mode))
            }
            _ => Err(format!(
                "{s:?} is not a file mode: expected octal permission bits such as 660 or 0600"
            )),
        }
    }
}

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// A socket file this process serves on: which file it is, so that removing it at exit removes
/// nothing else.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    /// The file's identity when we made (or inherited) it: device, inode and modification time
    /// (a file removed and made again may get the same inode number; it does not get the same
    /// time, and neither `chmod` nor connecting changes a socket file's modification time).
    id: FileId,
}

impl SocketFile {
    /// Binds a listener on `path` with `mode`, replacing a stale socket file (see the module
    /// documentation).
    ///
    /// # Errors
    /// `AddrInUse` when a live server listens there; `AlreadyExists` when the path is not a
    /// socket; `InvalidInput` for a path too long for the kernel; the folder's `NotFound` or
    /// `PermissionDenied`. Each message says which.
    pub fn bind(
        path: &Path,
        backlog: i32,
        mode: FileMode,
    ) -> io::Result<(UnixListener, SocketFile)> {
        let listener = match UnixListener::bind(path, backlog, Some(mode.0)) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                clear_stale(path)?;
                UnixListener::bind(path, backlog, Some(mode.0))
            }
            other => other,
        }?;
        let file = SocketFile::adopt(path)?;
        Ok((listener, file))
    }

    /// The socket file at `path`, which a listener this process took over is bound to.
    ///
    /// # Errors
    /// From `lstat`.
    pub fn adopt(path: &Path) -> io::Result<SocketFile> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(SocketFile {
            path: path.to_owned(),
            id: FileId::of(&meta),
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file if it is still the one we made. Returns whether it was removed.
    pub fn remove(self) -> bool {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if FileId::of(&meta) == self.id => std::fs::remove_file(&self.path).is_ok(),
            _ => false,
        }
    }
}

/// Device, inode, and modification time in seconds and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64, i64, i64);

impl FileId {
    fn of(meta: &std::fs::Metadata) -> FileId {
        FileId(meta.dev(), meta.ino(), meta.mtime(), meta.mtime_nsec())
    }
}

/// The path is taken: removes it if it is a socket nobody listens on, else says why not.
fn clear_stale(path: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket (left as it is)",
        ));
    }
    match UnixStream::connect(path) {
        // Accepted, or queued behind a full backlog: a live server.
        Ok(Step::Ready(_)) | Ok(Step::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "address in use: a server is listening on this socket",
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            // A socket file without a listener: what a killed server leaves behind.
            std::fs::remove_file(path)
        }
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("the socket file exists and cannot be probed: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("asycamore-sf-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn modes_parse_as_octal() {
        assert_eq!("660".parse(), Ok(FileMode(0o660)));
        assert_eq!("0600".parse(), Ok(FileMode(0o600)));
        assert_eq!("0o777".parse(), Ok(FileMode(0o777)));
        for bad in ["", "8", "0999", "1777", "rw", "+660", "-1", "0o"] {
            assert!(bad.parse::<FileMode>().is_err(), "{bad:?}");
        }
        assert_eq!(DEFAULT_MODE.to_string(), "0660");
    }

    #[test]
    fn a_stale_socket_is_replaced_and_a_live_one_is_in_use() {
        let dir = scratch("stale");
        let path = dir.join("s.sock");
        let (live, file) = SocketFile::bind(&path, 8, DEFAULT_MODE).unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o660);
        let err = SocketFile::bind(&path, 8, DEFAULT_MODE).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
        // The listener closes, as in a killed process; the file stays.
        drop(live);
        assert!(path.exists());
        // (Past the filesystem clock's tick, so the new file's time differs from the old one's.)
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (_again, second) = SocketFile::bind(&path, 8, FileMode(0o600)).unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The first file is gone: removing it by its old identity leaves the new one alone.
        assert!(!file.remove());
        assert!(path.exists());
        assert!(second.remove());
        assert!(!path.exists());
    }

    #[test]
    fn a_folder_or_a_file_in_the_way_is_refused_and_kept() {
        let dir = scratch("inway");
        let folder = dir.join("d.sock");
        std::fs::create_dir(&folder).unwrap();
        let err = SocketFile::bind(&folder, 8, DEFAULT_MODE).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        assert!(folder.is_dir());
        let file = dir.join("f.sock");
        std::fs::write(&file, b"data").unwrap();
        let err = SocketFile::bind(&file, 8, DEFAULT_MODE).unwrap_err();
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), b"data");
    }

    #[test]
    fn a_path_too_long_is_a_clear_error() {
        let long = std::env::temp_dir().join("x".repeat(200));
        let err = SocketFile::bind(&long, 8, DEFAULT_MODE).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("at most 107"), "{err}");
    }
}
