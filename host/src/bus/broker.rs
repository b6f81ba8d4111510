//! The embedded broker: rumqttd, run in a child process of the daemon.
//!
//! rumqttd runs its router and servers on threads that cannot be stopped, so the daemon runs it
//! as `kakou broker` in a child process: it starts on loopback (or a configured address), is
//! stopped cleanly by dropping [`EmbeddedBroker`] (SIGTERM, then wait), exits by itself when
//! the daemon dies (it watches its standard input), and a broker fault cannot take the daemon
//! down. Anything that talks MQTT, the daemon's own parts included, connects to it over TCP.

use std::collections::HashMap;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::BusError;

/// Environment variable carrying the broker password to the child (not on its command line).
pub const PASSWORD_ENV: &str = "KAKOU_BROKER_PASSWORD";

/// Runs rumqttd in this process until it fails; with `watch_stdin`, exits when standard input
/// closes (the daemon that started it is gone).
pub fn run(
    listen: SocketAddr,
    user: Option<String>,
    password: Option<String>,
    watch_stdin: bool,
) -> Result<(), BusError> {
    if watch_stdin {
        std::thread::spawn(|| {
            let mut buf = [0u8; 64];
            while matches!(std::io::stdin().read(&mut buf), Ok(n) if n > 0) {}
            std::process::exit(0);
        });
    }
    let auth = match (user, password) {
        (Some(u), Some(p)) => Some(HashMap::from([(u, p)])),
        (None, None) => None,
        _ => {
            return Err(BusError::Config(
                "the broker needs both a user and a password, or neither".into(),
            ));
        }
    };
    let server = rumqttd::ServerSettings {
        name: "kakou-v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 1 << 20,
            max_inflight_count: 500,
            auth,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = rumqttd::Config {
        router: rumqttd::RouterConfig {
            max_connections: 1024,
            max_outgoing_packet_count: 500,
            // Each subscribed filter keeps at most this many segments of this size: a bound on
            // the broker's memory under a steady stream of readings (4 MiB per filter).
            max_segment_size: 1 << 20,
            max_segment_count: 4,
            ..Default::default()
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Default::default()
    };
    rumqttd::Broker::new(config)
        .start()
        .map_err(|e| BusError::Broker(format!("embedded broker on {listen} stopped: {e}")))
}

/// A broker child process, stopped when dropped.
#[derive(Debug)]
pub struct EmbeddedBroker {
    child: Child,
    addr: SocketAddr,
}

impl EmbeddedBroker {
    /// Starts `exe broker --listen addr` and waits until it accepts connections.
    pub fn spawn(
        exe: &Path,
        addr: SocketAddr,
        credentials: Option<(&str, &str)>,
    ) -> Result<Self, BusError> {
        // Another broker on the port would answer the readiness probe in our broker's place.
        if let Err(e) = std::net::TcpListener::bind(addr) {
            return Err(BusError::Broker(format!(
                "the embedded broker cannot listen on {addr}: {e}; if another broker already uses \
                 that port, set `listen` under [bus] to a free address (port 0 picks one) or point \
                 `broker` at the running one (\"mqtt://{addr}\")"
            )));
        }
        let mut cmd = Command::new(exe);
        // rumqttd reports ordinary disconnects as errors (router and link); keep the rest.
        cmd.args([
            "--log",
            "warn,rumqttd::router::routing=off,rumqttd::server::broker=off",
            "broker",
            "--watch-stdin",
            "--listen",
        ])
        .arg(addr.to_string());
        if let Some((user, password)) = credentials {
            cmd.args(["--user", user]).env(PASSWORD_ENV, password);
        }
        // Its own process group: a signal to the daemon's group (Ctrl-C in a terminal,
        // `timeout`, a shell's kill of the job) would otherwise reach the broker too, and the
        // supervisor would take its exit for a crash and start it again while the daemon shuts
        // down. The broker ends when the daemon closes its standard input, or dies.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                BusError::Broker(format!(
                    "cannot start the embedded broker ({}): {e}",
                    exe.display()
                ))
            })?;
        let mut broker = EmbeddedBroker { child, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if answers_mqtt(addr) {
                return Ok(broker);
            }
            if let Ok(Some(status)) = broker.child.try_wait() {
                return Err(BusError::Broker(format!(
                    "the embedded broker on {addr} exited at start: {status}"
                )));
            }
            if Instant::now() > deadline {
                return Err(BusError::Broker(format!(
                    "the embedded broker did not listen on {addr} within 20 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `mqtt://` URL of the broker.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// Stops it and waits for it to exit.
    pub fn stop(mut self) {
        self.terminate();
    }

    /// Collects a child that has exited by itself.
    fn reap(&mut self) {
        let _ = self.child.wait();
    }

    /// The process id, for tests that kill the broker as a crash would.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn terminate(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether an MQTT broker answers at `addr`: a CONNECT gets a CONNACK (accepted or not), then
/// a clean DISCONNECT, so the broker logs no aborted connection.
fn answers_mqtt(addr: SocketAddr) -> bool {
    use std::io::Write;
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    // CONNECT, MQTT 3.1.1, clean session, keep-alive 10 s, client id "kakou-probe".
    let mut connect = vec![
        0x10, 23, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0A, 0x00, 11,
    ];
    connect.extend_from_slice(b"kakou-probe");
    let mut ack = [0u8; 4];
    let ok = s.write_all(&connect).is_ok() && s.read_exact(&mut ack).is_ok() && ack[0] == 0x20;
    let _ = s.write_all(&[0xE0, 0x00]);
    ok
}

/// What became of a supervised broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerEvent {
    /// The broker process ended by itself and was started again on the same address.
    Restarted {
        /// How the process ended.
        exit: String,
        /// Restarts so far.
        restarts: u64,
    },
    /// The broker process ended and could not be started again yet; the supervisor keeps
    /// trying.
    RestartFailed {
        /// Why.
        reason: String,
    },
}

/// The embedded broker, watched: a broker process that dies is started again at once on the
/// same address (with backoff while that fails), each time reported as a [`BrokerEvent`].
/// Clients reconnect by themselves. Dropping it stops the broker.
#[derive(Debug)]
pub struct SupervisedBroker {
    addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SupervisedBroker {
    /// Starts the broker (as [`EmbeddedBroker::spawn`]) and a thread that watches it.
    pub fn spawn(
        exe: &Path,
        addr: SocketAddr,
        credentials: Option<(&str, &str)>,
        events: tokio::sync::mpsc::UnboundedSender<BrokerEvent>,
    ) -> Result<Self, BusError> {
        use std::sync::atomic::Ordering;
        let first = EmbeddedBroker::spawn(exe, addr, credentials)?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (exe, creds) = (
            exe.to_path_buf(),
            credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
        );
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kakou-broker-watch".into())
            .spawn(move || {
                let mut broker = Some(first);
                let mut restarts = 0u64;
                let mut backoff = Duration::from_millis(100);
                while !stopping.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(50));
                    let exit = match broker.as_mut().map(|b| b.child.try_wait()) {
                        Some(Ok(None)) => continue,
                        Some(Ok(Some(status))) => status.to_string(),
                        Some(Err(e)) => format!("cannot be watched: {e}"),
                        None => "not running".to_owned(),
                    };
                    if let Some(mut dead) = broker.take() {
                        dead.reap();
                    }
                    let c = creds.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
                    match EmbeddedBroker::spawn(&exe, addr, c) {
                        Ok(b) => {
                            restarts += 1;
                            backoff = Duration::from_millis(100);
                            broker = Some(b);
                            tracing::warn!(
                                "embedded broker on {addr} ended ({exit}); started again"
                            );
                            let _ = events.send(BrokerEvent::Restarted { exit, restarts });
                        }
                        Err(e) => {
                            let _ = events.send(BrokerEvent::RestartFailed {
                                reason: e.to_string(),
                            });
                            std::thread::sleep(backoff);
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                        }
                    }
                }
                if let Some(b) = broker {
                    b.stop();
                }
            })
            .map_err(|e| BusError::Broker(format!("cannot start the broker's watcher: {e}")))?;
        Ok(SupervisedBroker {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// `mqtt://` URL of the broker.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// Stops the broker and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SupervisedBroker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.terminate();
    }
}
