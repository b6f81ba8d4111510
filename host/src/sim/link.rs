//! The simulated device's end of its link: a pty master, a TCP socket (either side), a UDP
//! socket, or HTTP POSTs to the daemon.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use super::SimError;
use super::pty::Pty;
use super::scenario::LinkSpec;

/// An open simulated link.
pub(crate) struct SimLink {
    spec: LinkSpec,
    inner: Inner,
    /// Bytes the daemon sent.
    pub(crate) incoming: mpsc::UnboundedReceiver<Vec<u8>>,
    incoming_tx: mpsc::UnboundedSender<Vec<u8>>,
}

enum Inner {
    /// Writes go through a thread: a pty nobody reads fills up and would block the caller.
    Pty {
        pty: Pty,
        writer: std::sync::mpsc::SyncSender<Vec<u8>>,
        /// Tells the reader thread to let go of the master, so an unplug really closes it.
        stop: Arc<AtomicBool>,
    },
    Tcp {
        listener: Option<TcpListener>,
        stream: Option<tokio::net::tcp::OwnedWriteHalf>,
    },
    Udp(UdpSocket),
    Http,
    Down,
}

fn link_err(e: impl std::fmt::Display) -> SimError {
    SimError::Link(e.to_string())
}

impl SimLink {
    pub(crate) async fn open(spec: &LinkSpec) -> Result<SimLink, SimError> {
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        let mut link = SimLink {
            spec: spec.clone(),
            inner: Inner::Down,
            incoming,
            incoming_tx,
        };
        link.up().await?;
        Ok(link)
    }

    /// Where the daemon finds this device.
    pub(crate) fn describe(&self) -> String {
        match (&self.spec, &self.inner) {
            (LinkSpec::Pty(p), Inner::Pty { pty, .. }) => {
                format!("pty {} -> {}", p.display(), pty.slave_path().display())
            }
            (
                LinkSpec::TcpListen(a),
                Inner::Tcp {
                    listener: Some(l), ..
                },
            ) => {
                format!(
                    "listening on tcp {}",
                    l.local_addr().map_or(a.clone(), |a| a.to_string())
                )
            }
            (LinkSpec::TcpConnect(a), _) => format!("tcp to {a}"),
            (LinkSpec::Udp(a), _) => format!("udp to {a}"),
            (LinkSpec::HttpPost(a), _) => format!("http POST to {a}"),
            _ => "down".into(),
        }
    }

    async fn up(&mut self) -> Result<(), SimError> {
        self.inner = match &self.spec {
            LinkSpec::Pty(path) => {
                let pty = Pty::open(path)
                    .map_err(|e| SimError::Link(format!("pty at {}: {e}", path.display())))?;
                let reader = pty.master_clone().map_err(link_err)?;
                let mut master = pty.master_clone().map_err(link_err)?;
                let (writer, to_write) = std::sync::mpsc::sync_channel::<Vec<u8>>(64);
                std::thread::spawn(move || {
                    while let Ok(bytes) = to_write.recv() {
                        if master.write_all(&bytes).is_err() {
                            break;
                        }
                    }
                });
                let stop = Arc::new(AtomicBool::new(false));
                let tx = self.incoming_tx.clone();
                let stopping = stop.clone();
                std::thread::spawn(move || read_master(reader, &stopping, &tx));
                Inner::Pty { pty, writer, stop }
            }
            LinkSpec::TcpListen(addr) => {
                let listener = match std::mem::replace(&mut self.inner, Inner::Down) {
                    Inner::Tcp {
                        listener: Some(l), ..
                    } => l,
                    _ => TcpListener::bind(addr)
                        .await
                        .map_err(|e| SimError::Link(format!("listen on {addr}: {e}")))?,
                };
                Inner::Tcp {
                    listener: Some(listener),
                    stream: None,
                }
            }
            LinkSpec::TcpConnect(addr) => {
                let stream = loop {
                    match TcpStream::connect(addr).await {
                        Ok(s) => break s,
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                };
                Inner::Tcp {
                    listener: None,
                    stream: Some(self.read_from(stream)),
                }
            }
            LinkSpec::Udp(addr) => {
                let s = UdpSocket::bind("127.0.0.1:0").await.map_err(link_err)?;
                s.connect(addr)
                    .await
                    .map_err(|e| SimError::Link(format!("udp to {addr}: {e}")))?;
                Inner::Udp(s)
            }
            LinkSpec::HttpPost(_) => Inner::Http,
        };
        Ok(())
    }

    fn read_from(&self, stream: TcpStream) -> tokio::net::tcp::OwnedWriteHalf {
        let (mut rd, wr) = stream.into_split();
        let tx = self.incoming_tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = rd.read(&mut buf).await {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        wr
    }

    /// Accepts a waiting daemon connection on a listening link.
    pub(crate) async fn accept_pending(&mut self) {
        let accepted = match &mut self.inner {
            Inner::Tcp {
                listener: Some(l), ..
            } => match tokio::time::timeout(Duration::from_millis(1), l.accept()).await {
                Ok(Ok((s, _))) => Some(s),
                _ => None,
            },
            _ => None,
        };
        if let Some(s) = accepted {
            let wr = self.read_from(s);
            if let Inner::Tcp { stream, .. } = &mut self.inner {
                *stream = Some(wr);
            }
        }
    }

    /// Sends bytes as the device; returns a note (e.g. the HTTP status) for the log.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> Result<Option<String>, SimError> {
        if bytes.is_empty() {
            return Ok(None);
        }
        match &mut self.inner {
            Inner::Pty { writer, .. } => match writer.try_send(bytes.to_vec()) {
                Ok(()) => Ok(None),
                // Like a real serial device, it talks whether or not anyone listens.
                Err(_) => Ok(Some("nobody is reading the port; bytes dropped".into())),
            },
            Inner::Tcp { stream, .. } => {
                if let Some(s) = stream {
                    if s.write_all(bytes).await.is_err() {
                        *stream = None;
                        return Ok(Some("the daemon is not connected".into()));
                    }
                    Ok(None)
                } else {
                    Ok(Some("the daemon is not connected; bytes dropped".into()))
                }
            }
            Inner::Udp(s) => match s.send(bytes).await {
                Ok(_) => Ok(None),
                // Nobody listens on the daemon's port yet (the kernel's "port unreachable" comes
                // back as a refused send): a real tracker keeps sending, and so does this one.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(Some(
                    "the daemon is not listening yet; datagram dropped".into(),
                )),
                Err(e) => Err(link_err(e)),
            },
            Inner::Http => {
                let LinkSpec::HttpPost(target) = &self.spec else {
                    return Ok(None);
                };
                post(target, bytes).await.map(Some)
            }
            Inner::Down => Ok(Some("link down; bytes dropped".into())),
        }
    }

    /// Drops the link (unplugs the cable).
    pub(crate) fn down(&mut self) {
        self.inner = match std::mem::replace(&mut self.inner, Inner::Down) {
            // The device node goes away, as when a USB adapter is pulled out.
            Inner::Pty { pty, stop, .. } => {
                stop.store(true, Ordering::Relaxed);
                let _ = std::fs::remove_file(pty.link());
                Inner::Down
            }
            // A listening device keeps its port but drops the connection.
            Inner::Tcp {
                listener: Some(l), ..
            } => Inner::Tcp {
                listener: Some(l),
                stream: None,
            },
            _ => Inner::Down,
        };
    }

    /// Brings the link back.
    pub(crate) async fn reconnect(&mut self) -> Result<(), SimError> {
        self.up().await
    }
}

/// POSTs a complete HTTP request (its request line's target replaced by the link's path) and
/// returns the response status line.
async fn post(target: &str, request: &[u8]) -> Result<String, SimError> {
    let (addr, path) = match target.find('/') {
        Some(i) => (&target[..i], &target[i..]),
        None => (target, ""),
    };
    let mut bytes = request.to_vec();
    if !path.is_empty()
        && let Some(line_end) = bytes.windows(2).position(|w| w == b"\r\n")
    {
        let line = String::from_utf8_lossy(&bytes[..line_end]).into_owned();
        let mut parts = line.splitn(3, ' ');
        if let (Some(method), Some(_), Some(version)) = (parts.next(), parts.next(), parts.next()) {
            let new_line = format!("{method} {path} {version}");
            bytes.splice(..line_end, new_line.into_bytes());
        }
    }
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|e| SimError::Link(format!("http to {addr}: {e}")))?;
    s.write_all(&bytes).await.map_err(link_err)?;
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !response.windows(2).any(|w| w == b"\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .map_err(|_| SimError::Link(format!("http to {addr}: no answer in 10 s")))?
            .map_err(link_err)?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
    }
    let status = String::from_utf8_lossy(&response);
    Ok(status.lines().next().unwrap_or("no response").to_owned())
}

/// Reads what the daemon writes to a pty, until told to stop (polling, so it lets go in time).
fn read_master(mut master: std::fs::File, stop: &AtomicBool, tx: &mpsc::UnboundedSender<Vec<u8>>) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let ready = {
            let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(n) => n > 0,
                Err(nix::errno::Errno::EINTR) => false,
                Err(_) => return,
            }
        };
        if ready {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_udp_device_keeps_sending_before_the_daemon_listens() {
        // A port nobody listens on: taken and given back.
        let addr = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free port");
        let mut link = SimLink::open(&LinkSpec::Udp(addr.to_string()))
            .await
            .expect("open");
        // The kernel answers the first datagram with "port unreachable"; the sends after it
        // are refused. None of them may end the simulator.
        let mut dropped = None;
        for _ in 0..50 {
            if let Some(note) = link.send(b"$GPRMC").await.expect("a send never fails") {
                dropped = Some(note);
                break;
            }
        }
        assert_eq!(
            dropped.as_deref(),
            Some("the daemon is not listening yet; datagram dropped")
        );
        // Once the daemon listens, datagrams arrive.
        let daemon = UdpSocket::bind(addr).await.expect("rebind");
        assert_eq!(link.send(b"$GPRMC").await.expect("send"), None);
        let mut buf = [0u8; 16];
        let n = daemon.recv(&mut buf).await.expect("recv");
        assert_eq!(&buf[..n], b"$GPRMC");
    }
}
