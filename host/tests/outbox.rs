//! The outbox across a broker outage: a sender writes messages through its store's outbox
//! while an external broker (a Mosquitto of the test's own, with persistent sessions) is
//! stopped and restarted; a receiver applies each message exactly once.

#![allow(clippy::unwrap_used)] // test helpers fail loudly, like the tests

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kakou_host::bus::outbox::{self, Applied};
use kakou_host::bus::payload::Envelope;
use kakou_host::bus::{BusClient, ClientOptions, QoS};
use kakou_host::store::{AuditEntry, OutboxMessage, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

const MESSAGES: u64 = 300;

#[derive(Debug, Serialize, Deserialize)]
struct Transit {
    n: u64,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A broker that can be stopped and started again on the same port.
trait Broker {
    fn start(&mut self);
    fn stop(&mut self);
}

/// A Mosquitto of the test's own (persistent sessions on disk), so stopping it disturbs nothing
/// else on the machine.
struct Mosquitto {
    config: std::path::PathBuf,
    port: u16,
    running: Option<Child>,
}

impl Broker for Mosquitto {
    fn start(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.running = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("mosquitto did not start on {}", self.port);
    }
    fn stop(&mut self) {
        if let Some(mut c) = self.running.take() {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            )
            .unwrap();
            let _ = c.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn survive_an_outage(broker: &mut dyn Broker, url: &str, tag: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let sender = Store::open(tmp.path().join("sender.redb")).unwrap();
    let receiver = Store::open(tmp.path().join("receiver.redb")).unwrap();
    broker.start();

    let topic = format!("kakou/outbox-{tag}/transit");
    let mut rx_options = ClientOptions::new(url, &format!("receiver-{tag}-{}", std::process::id()));
    rx_options.clean_session = false;
    let (rx_client, mut incoming, _rx_links) = BusClient::connect(&rx_options).unwrap();
    rx_client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    let applied = Arc::new(Mutex::new(Vec::<u64>::new()));
    let repeats = Arc::new(Mutex::new(0u64));
    let (stop, stopped) = watch::channel(false);
    let receiving = {
        let (store, applied, repeats) = (receiver.clone(), applied.clone(), repeats.clone());
        tokio::spawn(async move {
            while let Some(m) = incoming.recv().await {
                let r =
                    outbox::apply_once::<Transit, u64>(&store, &m.topic, &m.payload, 0, |tx, e| {
                        tx.audit(AuditEntry {
                            who: "receiver".into(),
                            action: "transit.apply".into(),
                            subject: e.id.clone(),
                            ..Default::default()
                        })?;
                        Ok(e.body.n)
                    })
                    .unwrap();
                match r {
                    Applied::New(n) => applied.lock().unwrap().push(n),
                    Applied::Repeat => *repeats.lock().unwrap() += 1,
                }
            }
        })
    };

    let mut tx_options = ClientOptions::new(url, &format!("sender-{tag}-{}", std::process::id()));
    tx_options.clean_session = false;
    let (tx_client, _msgs, links) = BusClient::connect(&tx_options).unwrap();
    let wake = Arc::new(Notify::new());
    let publishing = tokio::spawn(outbox::run(
        sender.clone(),
        tx_client,
        links,
        wake.clone(),
        stopped.clone(),
    ));

    for n in 0..MESSAGES {
        let payload = Envelope::new(format!("{tag}-m{n}"), n as i64, Transit { n }).to_bytes();
        sender
            .write(|tx| {
                tx.audit(AuditEntry {
                    who: "sender".into(),
                    action: "transit.release".into(),
                    subject: n.to_string(),
                    ..Default::default()
                })?;
                tx.outbox_push(&OutboxMessage::new(topic.clone(), payload, 0))
            })
            .unwrap();
        wake.notify_one();
        if n == MESSAGES / 3 {
            broker.stop();
        }
        if n == MESSAGES / 2 {
            broker.start();
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }

    let mut waited = 0;
    while applied.lock().unwrap().len() < MESSAGES as usize
        || !sender.outbox_pending(1).unwrap().is_empty()
    {
        waited += 1;
        assert!(
            waited < 1200,
            "after 60 s: {} of {MESSAGES} applied, outbox {:?}",
            applied.lock().unwrap().len(),
            sender.outbox_pending(5).unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut got = applied.lock().unwrap().clone();
    got.sort_unstable();
    assert_eq!(
        got,
        (0..MESSAGES).collect::<Vec<_>>(),
        "every message applied exactly once"
    );
    let _ = stop.send(true);
    publishing.await.unwrap();
    receiving.abort();
    broker.stop();
    eprintln!(
        "{tag}: {MESSAGES} applied once each, {} repeats dropped",
        repeats.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_is_lost_when_mosquitto_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = tmp.path().join("mosquitto.conf");
    std::fs::write(
        &config,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n", tmp.path().display()),
    )
    .unwrap();
    let mut broker = Mosquitto {
        config,
        port,
        running: None,
    };
    survive_an_outage(
        &mut broker,
        &format!("mqtt://127.0.0.1:{port}"),
        "mosquitto",
    )
    .await;
}
