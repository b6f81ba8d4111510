//! Pseudo-terminal pairs that play serial devices: the daemon opens a stable path (a symlink
//! to the pty's slave side) exactly as it would open `/dev/ttyS1`, and the simulator writes and
//! reads the master side.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::pty::openpty;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

/// One pseudo-terminal pair, linked at a stable path.
#[derive(Debug)]
pub struct Pty {
    master: File,
    /// Held open so the slave side does not hang up between the daemon's reopen attempts.
    _slave: OwnedFd,
    link: PathBuf,
    slave_path: PathBuf,
}

impl Pty {
    /// Opens a pair in raw mode (no echo, no line editing, bytes pass unchanged) and points
    /// `link` at its slave side, replacing whatever `link` was.
    pub fn open(link: &Path) -> io::Result<Pty> {
        let pair = openpty(None, None).map_err(io::Error::from)?;
        for fd in [&pair.master, &pair.slave] {
            let mut t = tcgetattr(fd).map_err(io::Error::from)?;
            cfmakeraw(&mut t);
            tcsetattr(fd, SetArg::TCSANOW, &t).map_err(io::Error::from)?;
        }
        let slave_path = nix::unistd::ttyname(&pair.slave).map_err(io::Error::from)?;
        if let Some(dir) = link.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Replace the link atomically: a reader never finds it missing.
        let tmp = link.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&slave_path, &tmp)?;
        std::fs::rename(&tmp, link)?;
        Ok(Pty {
            master: File::from(pair.master),
            _slave: pair.slave,
            link: link.to_path_buf(),
            slave_path,
        })
    }

    /// The stable path the daemon opens.
    pub fn link(&self) -> &Path {
        &self.link
    }

    /// The pty's own slave device, e.g. `/dev/pts/7`.
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// The master side: write what the device sends, read what the daemon sends.
    pub fn master(&self) -> &File {
        &self.master
    }

    /// Another handle to the master side (for a reader thread).
    pub fn master_clone(&self) -> io::Result<File> {
        self.master.try_clone()
    }
}
