//! `--pid-file`: the pid of the process serving now, for `kill -USR1 $(cat PATH)` in logrotate's
//! `postrotate` and for finding the new process after a restart.
//!
//! The file is written once the process serves (after a restart, by the new process, before it
//! tells the old one to drain), by renaming a complete temporary file over the path, so a reader
//! never sees a half-written pid. At exit a process removes the file only if it still holds its
//! own pid: the old process of a restart leaves the new one's file alone.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The pid file of this process.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Writes this process's pid to `path` (replacing what was there).
    ///
    /// # Errors
    /// If the temporary file cannot be written or renamed.
    pub fn write(path: &Path) -> io::Result<PidFile> {
        let pid = std::process::id();
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".{pid}.tmp"));
        let temporary = PathBuf::from(temporary);
        let written = std::fs::File::create(&temporary)
            .and_then(|mut f| writeln!(f, "{pid}").and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&temporary, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written?;
        Ok(PidFile {
            path: path.to_owned(),
            pid,
        })
    }

    /// The pid in the file at `path`, if it holds one.
    pub fn read(path: &Path) -> Option<u32> {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if PidFile::read(&self.path) == Some(self.pid) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_holds_our_pid_until_we_drop_it_unless_another_took_it() {
        let dir = std::env::temp_dir().join(format!("asycamore-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.pid");
        let file = PidFile::write(&path).unwrap();
        assert_eq!(PidFile::read(&path), Some(std::process::id()));
        drop(file);
        assert!(!path.exists());

        let file = PidFile::write(&path).unwrap();
        std::fs::write(&path, "1\n").unwrap(); // a new process took over the file
        drop(file);
        assert_eq!(PidFile::read(&path), Some(1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
