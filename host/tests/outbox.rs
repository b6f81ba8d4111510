//! The outbox across a broker outage, on the embedded broker and on a Mosquitto of the test's
//! own (with persistence, on a free port): messages pushed before, during and after the broker
//! is down all reach the receiver, each is applied exactly once, and the sender's outbox ends
//! empty. The broker is stopped and started again while the sender keeps writing.

#![allow(clippy::unwrap_used)] // test helpers fail loudly, like the tests

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kakou_host::bus::broker::EmbeddedBroker;
use kakou_host::bus::outbox::{self, AckMessage, Applied, OutboxOptions};
use kakou_host::bus::payload::{self, Envelope};
use kakou_host::bus::{BusClient, ClientOptions, QoS, Topics};
use kakou_host::store::{Confirm, OutboxMessage, Store, Writer};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

const MESSAGES: usize = 300;

#[derive(Debug, Serialize, Deserialize)]
struct Item {
    n: usize,
}

enum Broker {
    Embedded(Option<EmbeddedBroker>),
    Mosquitto { conf: PathBuf, child: Option<Child> },
}

impl Broker {
    fn start(&mut self, addr: SocketAddr) {
        match self {
            Broker::Embedded(slot) => {
                let exe = Path::new(env!("CARGO_BIN_EXE_kakou"));
                *slot = Some(EmbeddedBroker::spawn(exe, addr, None).unwrap());
            }
            Broker::Mosquitto { conf, child } => {
                let c = Command::new(common::mosquitto())
                    .arg("-c")
                    .arg(&*conf)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .unwrap();
                *child = Some(c);
                let deadline = Instant::now() + Duration::from_secs(20);
                while std::net::TcpStream::connect(addr).is_err() {
                    assert!(
                        Instant::now() < deadline,
                        "mosquitto did not listen on {addr}"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    fn stop(&mut self) {
        match self {
            Broker::Embedded(slot) => {
                if let Some(b) = slot.take() {
                    b.stop();
                }
            }
            Broker::Mosquitto { child, .. } => {
                if let Some(mut c) = child.take() {
                    // SIGTERM: Mosquitto writes its persistence file on the way out.
                    let pid = nix::unistd::Pid::from_raw(c.id() as i32);
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                    let _ = c.wait();
                }
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the receiver has applied.
#[derive(Default)]
struct Received {
    ids: BTreeSet<String>,
    new: usize,
    repeats: usize,
}

async fn outage(mut broker: Broker, addr: SocketAddr, dir: &Path, tag: &str) {
    let url = format!("mqtt://{addr}");
    let site = format!("outbox-{tag}-{}", std::process::id());
    let topics = Topics::new(&site);
    broker.start(addr);

    // The receiver: applies each message once in its own store and confirms it.
    let rstore = Store::open(dir.join("receiver.redb")).unwrap();
    let mut ropts = ClientOptions::new(&url, &format!("{site}-receiver"));
    ropts.clean_session = false;
    let (rbus, mut rin, _rlinks) = BusClient::connect(&ropts).unwrap();
    rbus.subscribe(&format!("{}/item/#", topics.root()), QoS::AtLeastOnce)
        .await
        .unwrap();
    let received = Arc::new(Mutex::new(Received::default()));
    let seen = received.clone();
    tokio::spawn(async move {
        while let Some(m) = rin.recv().await {
            let r = outbox::receive::<Item, String>(
                &rstore,
                &rbus,
                "receiver",
                &m.topic,
                &m.payload,
                0,
                |_tx, e| Ok(e.id.clone()),
            )
            .await;
            let mut s = seen.lock().unwrap();
            match r {
                Ok(Applied::New(id)) => {
                    s.new += 1;
                    s.ids.insert(id);
                }
                Ok(Applied::Repeat) => s.repeats += 1,
                // The confirmation is lost with the broker: the sender will ask again.
                Err(outbox::InboxError::Confirm(_)) => {}
                Err(e) => panic!("receiver: {e}"),
            }
        }
    });

    // The sender: its outbox task, fed confirmations from the ack topic.
    let store = Store::open(dir.join("sender.redb")).unwrap();
    let mut sopts = ClientOptions::new(&url, &format!("{site}-sender"));
    sopts.clean_session = false;
    let (sbus, mut sin, _links) = BusClient::connect(&sopts).unwrap();
    sbus.subscribe(&topics.outbox_ack(), QoS::AtLeastOnce)
        .await
        .unwrap();
    let (stop_tx, stop_rx) = watch::channel(false);
    let options = OutboxOptions {
        receiver_timeout: Duration::from_secs(2),
        ..OutboxOptions::default()
    };
    let (sender, task) = outbox::publisher::start(
        store.clone(),
        Writer::spawn(store.clone()).unwrap(),
        &sopts,
        topics.clone(),
        Confirm::Receiver,
        options,
        stop_rx,
    )
    .unwrap();
    let ack_topic = topics.outbox_ack();
    let confirmations = sender.clone();
    tokio::spawn(async move {
        while let Some(m) = sin.recv().await {
            let a: Envelope<AckMessage> = payload::parse(&m.topic, &m.payload).unwrap();
            assert_eq!(m.topic, ack_topic);
            confirmations.confirmed(a.body.acknowledges);
        }
    });

    for n in 0..MESSAGES {
        if n == MESSAGES / 3 {
            broker.stop();
        }
        if n == 2 * MESSAGES / 3 {
            broker.start(addr);
        }
        let id = format!("{site}-{n}");
        let bytes = Envelope::new(id.clone(), 0, Item { n })
            .with_ack(topics.outbox_ack())
            .to_bytes();
        let topic = format!("{}/item/{}", topics.root(), n % 7);
        store
            .write(|tx| tx.outbox_push(&OutboxMessage::confirmed_by_receiver(topic, bytes, id, 0)))
            .unwrap();
        sender.wake();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Generous: this only guards against hanging forever, it measures nothing.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let got = received.lock().unwrap().ids.len();
        let left = store.snapshot().unwrap().outbox_len().unwrap();
        if got == MESSAGES && left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{tag}: after the outage the receiver has {got} of {MESSAGES} messages and the \
             sender's outbox still holds {left}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(true);
    let _ = task.await;
    let r = received.lock().unwrap();
    let expected: BTreeSet<String> = (0..MESSAGES).map(|n| format!("{site}-{n}")).collect();
    assert_eq!(r.ids, expected, "{tag}: every message arrived");
    assert_eq!(
        r.new, MESSAGES,
        "{tag}: each message was applied exactly once"
    );
    eprintln!(
        "{tag}: {MESSAGES} messages across a broker restart, applied once each; {} repeats dropped",
        r.repeats
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_restart_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    outage(
        Broker::Embedded(None),
        ([127, 0, 0, 1], common::free_port()).into(),
        dir.path(),
        "embedded",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_restart_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], common::free_port()).into();
    let data = dir.path().join("mosquitto");
    std::fs::create_dir_all(&data).unwrap();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nlog_dest stderr\nlog_type error\n# Run as root (CI), keep root: the persistence folder is the test's own.\nuser root\n",
            addr.port(),
            data.display()
        ),
    )
    .unwrap();
    let broker = Broker::Mosquitto { conf, child: None };
    outage(broker, addr, dir.path(), "mosquitto").await;
}
