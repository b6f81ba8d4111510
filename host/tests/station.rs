//! What an operator station finds in a running daemon's store, end to end: the real daemon
//! with its embedded broker, devices on pseudo-terminals, the store read beside it as
//! `kakou store`/`kakou alarm` read it.
//!
//! - The equipment files of the site manifest are written at start-up and rewritten when an
//!   edit of them is applied by hot swap.
//! - A lane alarm raised while nobody listens is listed afterwards (`kakou alarm list`, from
//!   the file and from the daemon) and acknowledged once: a copy of the request gets the
//!   first answer, another request is refused.

#![allow(clippy::unwrap_used)] // test helpers fail loudly, like the tests

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kakou_host::bus::payload;
use kakou_host::bus::{AlarmMessage, BusClient, ClientOptions, QoS};
use kakou_host::config::SiteManifest;
use kakou_host::daemon::DaemonStatusMessage;
use kakou_host::daemon::{AlarmAckReply, AlarmAckRequest};
use kakou_host::sdk::wire;
use kakou_host::sim::pty::Pty;
use kakou_host::store::{AlarmRecord, ApplyOptions, Store};
use tokio::sync::{mpsc, watch};

const SERIAL: &str = "YH-2024-0117";

/// A one-lane site (scale, card reader, barrier on pseudo-terminals in `dir`), the scale's
/// equipment file naming serial number `serial`.
fn site_text(dir: &Path, port: u16, serial: &str) -> String {
    let root = common::root();
    format!(
        r#"[site]
id = "station-{pid}"
office = "5201"
ruleset = "{ruleset}"
plugins = "{plugins}"
allow-dev-plugins = true
[bus]
listen = "127.0.0.1:{port}"
broker = "embedded"
[store]
path = "{store}"
[[lane]]
id = "L01"
category = "C"
direction = "import"
cargo = "bulk"
station = "HP01"
required = ["weight", "card"]
window-ms = 3000
devices = [
  {{ id = "scale",   driver = "xk3190",         transport = {{ serial = "{tty}/tty-scale" }}, config = {{ stable-count = 3 }},
     equipment = {{ make = "Yaohua", model = "XK3190-A9", serial-number = "{serial}", install-date = "2024-05-12" }} }},
  {{ id = "card",    driver = "rdm6300",        transport = {{ serial = "{tty}/tty-card" }}, silence-timeout-ms = 600000 }},
  {{ id = "barrier", driver = "modbus-barrier", transport = {{ serial = "{tty}/tty-barrier" }}, silence-timeout-ms = 600000 }},
]
"#,
        pid = std::process::id(),
        ruleset = root.join("manifests/regions/cn-baseline.toml").display(),
        plugins = root.join("plugins").display(),
        store = dir.join("kakou.redb").display(),
        tty = dir.display(),
    )
}

/// A bus client, what it receives, its link events.
type Watch = (
    BusClient,
    mpsc::Receiver<kakou_host::bus::Message>,
    mpsc::UnboundedReceiver<kakou_host::bus::Link>,
);

/// A running daemon on a one-lane site in a temporary folder.
struct Site {
    dir: tempfile::TempDir,
    port: u16,
    manifest: SiteManifest,
    /// Scale, card reader, barrier.
    ptys: Vec<Pty>,
    /// Subscribed to everything under `kakou/{site}/`.
    bus: Watch,
    stop: watch::Sender<bool>,
    daemon: tokio::task::JoinHandle<Result<(), kakou_host::daemon::DaemonError>>,
}

impl Site {
    async fn start() -> Site {
        for p in [
            "plugins/drivers/xk3190",
            "plugins/drivers/rdm6300",
            "plugins/drivers/modbus-barrier",
            "plugins/rules/cn-baseline",
            "plugins/rules/weight-check",
        ] {
            common::plugin(p);
        }
        let dir = tempfile::tempdir().unwrap();
        let port = common::free_port();
        let path = dir.path().join("site.toml");
        std::fs::write(&path, site_text(dir.path(), port, SERIAL)).unwrap();
        let manifest = SiteManifest::load(&path).unwrap();
        {
            let store = Store::open(dir.path().join("kakou.redb")).unwrap();
            let report = store
                .import_file(
                    &common::root().join("manifests/data/sample.jsonl"),
                    None,
                    &ApplyOptions::new("test", 0),
                    &mut |_| {},
                )
                .unwrap();
            assert!(report.applied, "{:?}", report.rejected);
        }
        let ptys = ["tty-scale", "tty-card", "tty-barrier"]
            .iter()
            .map(|n| Pty::open(&dir.path().join(n)).unwrap())
            .collect();
        let (stop, stopped) = watch::channel(false);
        let daemon = tokio::spawn(kakou_host::daemon::run(
            manifest.clone(),
            env!("CARGO_BIN_EXE_kakou").into(),
            stopped,
        ));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the daemon's broker did not listen"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut site = Site {
            bus: watch_bus(port, &manifest.site.id),
            dir,
            port,
            manifest,
            ptys,
            stop,
            daemon,
        };
        site.bus
            .0
            .subscribe(
                &format!("kakou/{}/#", site.manifest.site.id),
                QoS::AtLeastOnce,
            )
            .await
            .unwrap();
        // Online once everything runs, the hot-swap watcher included.
        loop {
            let m = site.next("/daemon/status").await;
            if payload::parse::<DaemonStatusMessage>(&m.topic, &m.payload)
                .unwrap()
                .body
                .state
                == "online"
            {
                break;
            }
        }
        site
    }

    /// Subscribes the test's client to `kakou/{site}/{topic}`.
    async fn listen(&self, topic: &str) {
        self.bus
            .0
            .subscribe(
                &format!("kakou/{}/{topic}", self.manifest.site.id),
                QoS::AtLeastOnce,
            )
            .await
            .unwrap();
    }

    /// The next message on a topic ending with `suffix` (up to 60 s); fails if the daemon stops.
    async fn next(&mut self, suffix: &str) -> kakou_host::bus::Message {
        loop {
            let m = tokio::select! {
                m = tokio::time::timeout(Duration::from_secs(60), self.bus.1.recv()) => {
                    m.unwrap_or_else(|_| panic!("a message on …{suffix} within 60 s")).unwrap()
                }
                ended = &mut self.daemon => panic!("the daemon stopped: {ended:?}"),
            };
            if m.topic.ends_with(suffix) {
                return m;
            }
        }
    }

    /// The next alarm.
    async fn next_alarm(&mut self) -> AlarmMessage {
        let m = self.next("/alarm").await;
        payload::parse::<AlarmMessage>(&m.topic, &m.payload)
            .unwrap()
            .body
    }

    fn store_path(&self) -> PathBuf {
        self.dir.path().join("kakou.redb")
    }

    /// Waits (up to `secs`) until `check` holds of the store as the daemon has committed it.
    async fn until_store<T>(
        &self,
        secs: u64,
        what: &str,
        check: impl Fn(&Store) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(store) = Store::open_for_reading(self.store_path())
                && let Some(found) = check(&store)
            {
                return found;
            }
            assert!(Instant::now() < deadline, "{what} within {secs} s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.daemon)
            .await
            .expect("the daemon stops within 30 s")
            .unwrap()
            .unwrap();
    }
}

/// A bus client of the daemon's broker.
fn watch_bus(port: u16, site: &str) -> Watch {
    let mut options = ClientOptions::new(
        &format!("mqtt://127.0.0.1:{port}"),
        &format!("{site}-watcher"),
    );
    options.clean_session = true;
    BusClient::connect(&options).unwrap()
}

fn scale_serial(store: &Store) -> Option<String> {
    store
        .snapshot()
        .ok()?
        .equipment("L01", "scale")
        .ok()??
        .serial_number
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_daemon_writes_the_site_equipment_files_and_rewrites_them_on_an_applied_edit() {
    let mut site = Site::start().await;
    let serial = site
        .until_store(30, "the scale's equipment file", scale_serial)
        .await;
    assert_eq!(serial, SERIAL);
    let files = Store::open_for_reading(site.store_path())
        .unwrap()
        .snapshot()
        .unwrap()
        .equipment_files()
        .unwrap();
    let devices: Vec<(&str, &str)> = files
        .iter()
        .map(|(l, d, _)| (l.as_str(), d.as_str()))
        .collect();
    assert_eq!(
        devices,
        [("L01", "barrier"), ("L01", "card"), ("L01", "scale")]
    );
    assert_eq!(site.manifest.lanes[0].devices.len(), 3);

    // The scale is replaced by another of the same model: the edit is applied live.
    site.listen("alarm").await;
    let replaced = "YH-2026-0342";
    std::fs::write(
        &site.manifest.path,
        site_text(site.dir.path(), site.port, replaced),
    )
    .unwrap();
    let applied = loop {
        let a = site.next_alarm().await;
        assert_ne!(a.code, "site.restart-needed", "{}", a.message);
        if a.code == "site.reloaded" {
            break a;
        }
    };
    assert!(
        applied.message.contains("equipment file of L01/scale"),
        "{}",
        applied.message
    );
    // The alarm follows the write: the store already holds the new file.
    assert_eq!(
        scale_serial(&Store::open_for_reading(site.store_path()).unwrap()).as_deref(),
        Some(replaced)
    );
    site.stop().await;
}

/// `kakou` with arguments: (succeeded, stdout, stderr).
fn kakou(args: &[&str]) -> (bool, String, String) {
    // The daemon runs on this runtime: wait for the command without holding a worker.
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kakou"))
            .args(args)
            .output()
            .unwrap()
    });
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lane_alarm_raised_while_nobody_listens_is_listed_and_acknowledged_once() {
    let mut site = Site::start().await;
    // Nobody listens to the alarm topic. A truck weighs in and shows its driver's card; no
    // plate is read on a category C lane: manual entry, and the barrier stays down.
    let mut scale = site.ptys[0].master_clone().unwrap();
    let mut card = site.ptys[1].master_clone().unwrap();
    for kg in [
        0.0, 12_000.0, 30_000.0, 43_680.0, 43_680.0, 43_680.0, 43_680.0,
    ] {
        scale.write_all(&wire::xk3190::tf0_frame(kg, 0)).unwrap();
    }
    card.write_all(&wire::rdm6300::frame([0xEA, 0x72, 0xD8, 0xF6, 0x61]))
        .unwrap();
    let alarm: AlarmRecord = site
        .until_store(60, "the lane's manual alarm stored", |s| {
            s.snapshot()
                .ok()?
                .open_alarms()
                .ok()?
                .into_iter()
                .find(|a| a.alarm.code == "lane.manual")
        })
        .await;
    assert_eq!(alarm.alarm.lane.as_deref(), Some("L01"));
    let passage = alarm.alarm.passage.clone().expect("names its passage");
    let stored = Store::open_for_reading(site.store_path())
        .unwrap()
        .passage(&passage)
        .unwrap()
        .expect("the passage, stored with it");
    assert_eq!(stored.updated_ms, alarm.first_ms);
    assert!(alarm.acknowledged.is_none() && alarm.count == 1);

    // Listed afterwards, from the file and from the running daemon.
    let store_arg = site.store_path();
    let store_arg = store_arg.to_str().unwrap();
    let site_arg = site.manifest.path.to_str().unwrap().to_owned();
    let (ok, from_file, err) = kakou(&["alarm", "list", "--open", "--store", store_arg]);
    assert!(ok, "{err}");
    assert!(
        from_file.contains(&alarm.id) && from_file.contains("OPEN"),
        "{from_file}"
    );
    let (ok, from_daemon, err) = kakou(&["alarm", "list", "--open", "--site", &site_arg]);
    assert!(ok, "{err}");
    assert_eq!(from_daemon, from_file);

    // Acknowledged over the bus; the same request again gets the first answer.
    let reply_to = format!("kakou/{}/reply/station-test", site.manifest.site.id);
    site.listen("reply/station-test").await;
    let request = AlarmAckRequest {
        alarm: alarm.id.clone(),
        operator: "O-17".into(),
        note: Some("seen on the lane camera".into()),
        reply_to: Some(reply_to.clone()),
    };
    let topic = format!("kakou/{}/alarm-ack", site.manifest.site.id);
    let mut answers = Vec::new();
    for _ in 0..2 {
        let bytes = payload::Envelope::new("ack-1".to_owned(), 0, request.clone()).to_bytes();
        site.bus
            .0
            .publish(&topic, bytes, QoS::AtLeastOnce, false)
            .await
            .unwrap();
        let m = site.next("/reply/station-test").await;
        answers.push(
            payload::parse::<AlarmAckReply>(&m.topic, &m.payload)
                .unwrap()
                .body,
        );
    }
    assert!(answers[0].ok, "{}", answers[0].message);
    assert_eq!(answers[1], answers[0]);
    let acked = answers[0].alarm.clone().expect("the alarm");
    let ack = acked.acknowledged.expect("acknowledged");
    assert_eq!(
        (ack.by.as_str(), ack.note.as_deref()),
        ("O-17", Some("seen on the lane camera"))
    );
    assert!(acked.cleared.is_none(), "acknowledged, still open");

    // Another request to acknowledge it is refused, naming who did.
    let (ok, out, err) = kakou(&[
        "alarm",
        "ack",
        &alarm.id,
        "--operator",
        "O-18",
        "--site",
        &site_arg,
    ]);
    assert!(!ok, "{out}");
    assert!(err.contains("acknowledged before, by O-17"), "{err}");
    let store = Store::open_for_reading(site.store_path()).unwrap();
    let kept = store.snapshot().unwrap().alarm(&alarm.id).unwrap().unwrap();
    assert_eq!(kept.acknowledged.map(|a| a.by).as_deref(), Some("O-17"));
    let audit = store.snapshot().unwrap().audit(1, usize::MAX).unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|r| r.entry.action == "alarm.ack" && r.entry.subject == alarm.id)
            .count(),
        1,
        "acknowledged once"
    );
    site.stop().await;
}
