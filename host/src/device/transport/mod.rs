//! Transports: move a device's bytes between the wire and its driver, and keep the link up.
//!
//! Each transport runs as a task: it opens its link (reopening with backoff when it drops),
//! reports [`LinkEvent`]s and writes what the driver asks to send. It knows nothing of
//! drivers, lanes or the bus.

mod http;
mod serial;
mod socket;

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::config::TransportSpec;

/// Largest read from a link in one go; larger arrivals are split.
pub const READ_CHUNK: usize = 4096;

/// What happened on a link.
#[derive(Debug)]
pub enum LinkEvent {
    /// The link is open (and to what).
    Up(String),
    /// Bytes arrived. `ack`, when present, is answered once the bytes are handled (an HTTP
    /// device gets its 200 only then).
    Data {
        /// The bytes.
        bytes: Vec<u8>,
        /// Answered after the bytes are handled.
        ack: Option<oneshot::Sender<()>>,
    },
    /// The link dropped (and why); the transport will reopen it.
    Down(String),
}

/// Both ends of a running transport.
#[derive(Debug)]
pub struct Link {
    /// Events from the wire.
    pub events: mpsc::Receiver<LinkEvent>,
    /// Bytes for the wire.
    pub outgoing: mpsc::Sender<Vec<u8>>,
}

/// Reopen delays: 100 ms doubling to 5 s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff(Duration::from_millis(100))
    }

    /// Waits the current delay (or until shutdown) and doubles it. Returns false on shutdown.
    pub(crate) async fn wait(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        let delay = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = stopped(shutdown) => false,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.0 = Duration::from_millis(100);
    }
}

/// Starts the transport described by `spec`. It runs until `shutdown` turns true. `spool` is
/// where a pushing device's requests are stored before they are acknowledged.
pub fn open(
    spec: &TransportSpec,
    name: String,
    spool: std::path::PathBuf,
    shutdown: watch::Receiver<bool>,
) -> Link {
    let (events_tx, events) = mpsc::channel(64);
    let (outgoing, out_rx) = mpsc::channel(64);
    let ends = Ends {
        events: events_tx,
        outgoing: out_rx,
        shutdown,
        name,
    };
    match spec.clone() {
        TransportSpec::Serial(s) => {
            tokio::spawn(serial::run(s, ends));
        }
        TransportSpec::TcpClient { addr } => {
            tokio::spawn(socket::tcp_client(addr, ends));
        }
        TransportSpec::TcpServer { bind } => {
            tokio::spawn(socket::tcp_server(bind, ends));
        }
        TransportSpec::Udp { bind, peer } => {
            tokio::spawn(socket::udp(bind, peer, ends));
        }
        TransportSpec::HttpListen { bind, path } => {
            tokio::spawn(http::run(bind, path, spool, ends));
        }
    }
    Link { events, outgoing }
}

/// The transport task's side of a [`Link`].
pub(crate) struct Ends {
    pub(crate) events: mpsc::Sender<LinkEvent>,
    pub(crate) outgoing: mpsc::Receiver<Vec<u8>>,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// `lane/device`, for logs.
    pub(crate) name: String,
}

impl Ends {
    /// Reports an event; false when nobody listens any more.
    pub(crate) async fn report(&self, event: LinkEvent) -> bool {
        self.events.send(event).await.is_ok()
    }

    pub(crate) fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Copies between an open stream and the link until either side ends. Returns why it ended,
/// or `None` on shutdown.
pub(crate) async fn pump<S>(stream: S, ends: &mut Ends) -> Option<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf = vec![0u8; READ_CHUNK];
    let events = ends.events.clone();
    loop {
        tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) => return Some("closed by the device".into()),
                Ok(n) => {
                    if events.send(LinkEvent::Data { bytes: buf[..n].to_vec(), ack: None }).await.is_err() {
                        return None;
                    }
                }
                Err(e) => return Some(format!("read failed: {e}")),
            },
            out = ends.outgoing.recv() => match out {
                Some(bytes) => {
                    if let Err(e) = wr.write_all(&bytes).await {
                        return Some(format!("write failed: {e}"));
                    }
                    let _ = wr.flush().await;
                }
                None => return None,
            },
            _ = stopped(&mut ends.shutdown) => return None,
        }
    }
}

/// Resolves when `shutdown` turns true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}
