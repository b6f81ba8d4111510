//! The lane engine end to end: the real daemon with its embedded broker, devices on
//! pseudo-terminals written by the test (an XK3190 scale, an RDM6300 card reader, a Modbus
//! barrier), the cn-baseline and weight-check rule sets built from source, the sample platform
//! data, and operators acting through the `kakou` command line over the bus.
//!
//! A category C bulk lane: read failure (the plate is keyed in) → manual → release with the
//! barrier's bytes; a control order put on the vehicle stops it, revoked it passes; congestion
//! mode releases on documents and keeps the passage for backfill; a two-plate vehicle's
//! write-off balances it; every operator action is in the audit log.

#![allow(clippy::unwrap_used)] // test helpers fail loudly, like the tests

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kakou_host::bus::payload::{self, Envelope};
use kakou_host::bus::{BusClient, ClientOptions, QoS};
use kakou_host::config::SiteManifest;
use kakou_host::daemon::{QueryKind, QueryReply, QueryRequest};
use kakou_host::lane::{OperatorAction, OperatorReply, OperatorRequest, PassageMessage};
use kakou_host::query::PassageQuery;
use kakou_host::sdk::model::{CheckResult, Outcome, Plate};
use kakou_host::sdk::wire;
use kakou_host::sim::pty::Pty;
use kakou_host::store::{ApplyOptions, PassageRecord, PassageState, Store};
use tokio::sync::{mpsc, watch};

/// The driver of 粤E7Q218 (bulk, local clearance L520120261127000112 for 30 000 kg).
const CARD: [u8; 5] = [0xEA, 0x72, 0xD8, 0xF6, 0x61];
const PLATE: &str = "粤E7Q218";
/// Tare 13 800 kg + 30 000 kg declared, 120 kg under.
const GROSS: f64 = 43_680.0;

struct Lane {
    scale: Pty,
    card: Pty,
    barrier: Pty,
}

impl Lane {
    /// A truck drives on the scale (the frames settle) and the driver presents the card.
    fn truck(&mut self) {
        self.truck_weighing(GROSS);
    }

    fn truck_weighing(&mut self, gross: f64) {
        let mut scale = self.scale.master_clone().unwrap();
        for kg in [0.0, 12_000.0, 30_000.0, gross, gross, gross, gross] {
            scale.write_all(&wire::xk3190::tf0_frame(kg, 0)).unwrap();
            std::thread::sleep(Duration::from_millis(30));
        }
        let mut card = self.card.master_clone().unwrap();
        card.write_all(&wire::rdm6300::frame(CARD)).unwrap();
    }

    /// Every byte the barrier was sent and the test has not read yet. Called once the daemon
    /// has stopped, so what is in the port's buffer is all there will be.
    fn barrier_rest(&mut self) -> Vec<u8> {
        use nix::fcntl::{FcntlArg, OFlag, fcntl};
        let mut port = self.barrier.master_clone().unwrap();
        fcntl(&port, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
        let mut all = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            match port.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("reading the barrier port: {e}"),
            }
        }
        all
    }

    /// The truck leaves: the scale is empty again.
    fn leaves(&mut self) {
        let mut scale = self.scale.master_clone().unwrap();
        for _ in 0..3 {
            scale.write_all(&wire::xk3190::tf0_frame(0.0, 0)).unwrap();
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// The next bytes the barrier receives (waits up to 30 s).
    fn barrier_bytes(&mut self) -> Vec<u8> {
        let mut port = self.barrier.master_clone().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            if let Ok(n) = port.read(&mut buf) {
                let _ = tx.send(buf[..n].to_vec());
            }
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("barrier bytes within 30 s")
    }
}

/// `kakou` with arguments; returns stdout, panics with stderr on failure.
fn kakou(args: &[&str]) -> String {
    // The daemon runs on this runtime: wait for the command without holding a worker.
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_kakou"))
            .args(args)
            .env("KAKOU_OPERATOR", "O-17")
            .output()
            .unwrap()
    });
    assert!(
        out.status.success(),
        "kakou {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The next passage message on the bus.
/// The next answer on `topic`.
async fn next_reply(
    rx: &mut mpsc::Receiver<kakou_host::bus::Message>,
    topic: &str,
) -> OperatorReply {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("an answer within 30 s")
            .unwrap();
        if m.topic == topic {
            return payload::parse::<OperatorReply>(&m.topic, &m.payload)
                .unwrap()
                .body;
        }
    }
}

async fn next_passage(rx: &mut mpsc::Receiver<kakou_host::bus::Message>) -> PassageMessage {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("a passage within 60 s")
            .unwrap();
        if m.topic.ends_with("/passage") {
            return payload::parse::<PassageMessage>(&m.topic, &m.payload)
                .unwrap()
                .body;
        }
    }
}

fn check(r: &PassageRecord, code: &str) -> Option<CheckResult> {
    r.verdict
        .as_ref()?
        .checks
        .iter()
        .find(|c| c.code == code)
        .map(|c| c.result)
}

fn site(dir: &Path, port: u16) -> std::path::PathBuf {
    let root = common::root();
    let text = format!(
        r#"[site]
id = "lanes-{pid}"
office = "5201"
ruleset = "{ruleset}"
plugins = "{plugins}"
allow-dev-plugins = true
[bus]
listen = "127.0.0.1:{port}"
broker = "embedded"
[store]
path = "kakou.redb"
[[lane]]
id = "L01"
category = "C"
direction = "import"
cargo = "bulk"
station = "HP01"
required = ["weight", "card"]
window-ms = 3000
devices = [
  {{ id = "scale",   driver = "xk3190",         transport = {{ serial = "tty-scale" }}, config = {{ stable-count = 3 }} }},
  {{ id = "card",    driver = "rdm6300",        transport = {{ serial = "tty-card" }}, silence-timeout-ms = 600000 }},
  {{ id = "barrier", driver = "modbus-barrier", transport = {{ serial = "tty-barrier" }}, silence-timeout-ms = 600000 }},
]
"#,
        pid = std::process::id(),
        ruleset = root.join("manifests/regions/cn-baseline.toml").display(),
        plugins = root.join("plugins").display(),
    );
    let path = dir.join("site.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_category_c_lane_through_manual_entry_control_orders_congestion_and_write_off() {
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
    let d = dir.path();
    let port = common::free_port();
    let site_path = site(d, port);
    let site_arg = site_path.to_str().unwrap();
    let manifest = SiteManifest::load(&site_path).unwrap();
    {
        let store = Store::open(d.join("kakou.redb")).unwrap();
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
    let mut lane = Lane {
        scale: Pty::open(&d.join("tty-scale")).unwrap(),
        card: Pty::open(&d.join("tty-card")).unwrap(),
        barrier: Pty::open(&d.join("tty-barrier")).unwrap(),
    };

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
    let mut options = ClientOptions::new(&format!("mqtt://127.0.0.1:{port}"), "lanes-watcher");
    options.clean_session = true;
    let (bus, mut rx, _links) = BusClient::connect(&options).unwrap();
    bus.subscribe(&format!("kakou/{}/#", manifest.site.id), QoS::AtLeastOnce)
        .await
        .unwrap();
    // Devices open their links before the first truck.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // 1. Read failure: no plate on a category C lane → manual; the operator keys it in.
    lane.truck();
    let m = next_passage(&mut rx).await;
    assert_eq!(m.cause, "decided");
    assert_eq!(
        m.record.state,
        PassageState::Manual,
        "{:?}",
        m.record.verdict
    );
    assert_eq!(
        check(&m.record, "vehicle.registered"),
        Some(CheckResult::Unknown)
    );
    let first = m.record.passage.id.clone();
    let said = kakou(&[
        "lane", "complete", "--site", site_arg, "--lane", "L01", "--plate", PLATE,
    ]);
    assert!(said.contains(&first), "{said}");
    let m = next_passage(&mut rx).await;
    assert_eq!(
        (m.cause.as_str(), m.record.outcome),
        ("complete", Some(Outcome::Release))
    );
    assert_eq!(
        check(&m.record, "weight.tolerance"),
        Some(CheckResult::Pass)
    );
    assert_eq!(m.record.manual_actions[0].who, "O-17");
    // Release pulses the barrier: Modbus write single coil 0 on.
    assert_eq!(
        lane.barrier_bytes(),
        [0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A]
    );
    assert_eq!(
        lane.barrier_bytes(),
        wire::modbus::write_single_coil(1, 0, false)
    );
    lane.leaves();

    // 1b. Data mismatch: 5 t more than declared → inspection; found wrong, refused.
    lane.truck_weighing(GROSS + 5_000.0);
    let m = next_passage(&mut rx).await;
    assert_eq!(m.record.state, PassageState::Manual);
    let heavy = m.record.passage.id.clone();
    kakou(&[
        "lane", "complete", "--site", site_arg, "--lane", "L01", "--plate", PLATE,
    ]);
    let m = next_passage(&mut rx).await;
    assert_eq!(
        m.record.state,
        PassageState::Inspection,
        "{:?}",
        m.record.verdict
    );
    assert_eq!(
        check(&m.record, "weight.tolerance"),
        Some(CheckResult::Fail)
    );
    kakou(&[
        "lane",
        "inspected",
        "--site",
        site_arg,
        "--lane",
        "L01",
        "--passage",
        &heavy,
        "--failed",
        "--note",
        "5 t of undeclared scrap",
    ]);
    let m = next_passage(&mut rx).await;
    assert_eq!(
        (m.record.state, m.record.outcome),
        (PassageState::Inspected, Some(Outcome::Refuse))
    );
    lane.leaves();

    // 2. A control order on the vehicle stops the next truck at once; revoked, it passes.
    kakou(&[
        "control",
        "add",
        "--site",
        site_arg,
        "--id",
        "CO-T-1",
        "--on",
        "vehicle",
        PLATE,
        "--reason",
        "risk alert",
        "--action",
        "refuse",
    ]);
    lane.truck();
    let m = next_passage(&mut rx).await;
    assert_eq!(m.record.state, PassageState::Manual);
    kakou(&[
        "lane", "complete", "--site", site_arg, "--lane", "L01", "--plate", PLATE,
    ]);
    let m = next_passage(&mut rx).await;
    assert_eq!(
        m.record.outcome,
        Some(Outcome::Refuse),
        "{:?}",
        m.record.verdict
    );
    assert_eq!(check(&m.record, "control.vehicle"), Some(CheckResult::Fail));
    lane.leaves();
    kakou(&[
        "control", "revoke", "--site", site_arg, "CO-T-1", "--reason", "cleared",
    ]);

    // 3. Congestion mode: released on its documents before the plate is known, and kept
    //    on the list of passages awaiting backfill until an operator backfills it.
    kakou(&[
        "param",
        "set",
        "--site",
        site_arg,
        "lane.L01.congestion",
        "true",
        "--reason",
        "queue at the gate",
    ]);
    lane.truck();
    let m = next_passage(&mut rx).await;
    assert_eq!(m.record.passage.attribute("congestion-mode"), Some("true"));
    let congested = m.record.passage.id.clone();
    // Bulk documents name the vehicle, so with no plate the operator keys in the document the
    // driver presents; the truck goes on it.
    assert_eq!(
        m.record.state,
        PassageState::Manual,
        "{:?}",
        m.record.verdict
    );
    kakou(&[
        "lane",
        "complete",
        "--site",
        site_arg,
        "--lane",
        "L01",
        "--document",
        "local-clearance:L520120261127000112",
    ]);
    let m = next_passage(&mut rx).await;
    assert_eq!(
        m.record.outcome,
        Some(Outcome::Release),
        "{:?}",
        m.record.verdict
    );
    assert_eq!(m.record.passage.attribute("backfill-needed"), Some("plate"));
    assert_eq!(lane.barrier_bytes()[..2], [0x01, 0x05]);
    lane.leaves();
    let store_arg = d.join("kakou.redb");
    let store_text = store_arg.to_str().unwrap();
    let waiting = kakou(&["lane", "waiting", "--store", store_text]);
    assert!(
        waiting.contains(&congested) && waiting.contains("backfill plate"),
        "{waiting}"
    );
    kakou(&[
        "lane",
        "backfill",
        "--site",
        site_arg,
        "--lane",
        "L01",
        "--passage",
        &congested,
        "--plate",
        PLATE,
    ]);
    let m = next_passage(&mut rx).await;
    assert_eq!(m.cause, "backfill");
    assert_eq!(m.record.passage.attribute("backfill-needed"), None);
    assert_eq!(m.record.passage.plate().unwrap().text, PLATE);
    let waiting = kakou(&["lane", "waiting", "--store", store_text]);
    assert!(!waiting.contains(&congested), "{waiting}");
    kakou(&[
        "param",
        "set",
        "--site",
        site_arg,
        "lane.L01.congestion",
        "false",
    ]);

    // 4. A two-plate vehicle that entered elsewhere unrecorded: written off, then balanced.
    kakou(&[
        "lane",
        "write-off",
        "--site",
        site_arg,
        "--lane",
        "L01",
        "--plate",
        "粤Z1234港",
        "--direction",
        "import",
        "--reason",
        "entered at Huanggang, not recorded",
    ]);
    let _ = next_passage(&mut rx).await;
    let balances = kakou(&["lane", "balances", "--store", store_arg.to_str().unwrap()]);
    assert!(
        balances.contains("粤Z1234港") && balances.contains("+1  1 entry(ies) without exit"),
        "{balances}"
    );
    kakou(&[
        "lane",
        "write-off",
        "--site",
        site_arg,
        "--lane",
        "L01",
        "--plate",
        "粤Z1234港",
        "--direction",
        "export",
        "--reason",
        "left by Huanggang",
    ]);
    let _ = next_passage(&mut rx).await;
    let balances = kakou(&["lane", "balances", "--store", store_arg.to_str().unwrap()]);
    assert!(
        balances.contains("every two-plate vehicle is written off"),
        "{balances}"
    );

    // 5. A request sent twice (a retry, a redelivery) acts once and is answered alike.
    lane.truck();
    let m = next_passage(&mut rx).await;
    assert_eq!(m.record.state, PassageState::Manual);
    let twice = m.record.passage.id.clone();
    let reply_to = format!("kakou/{}/reply/lanes-test-twice", manifest.site.id);
    bus.subscribe(&reply_to, QoS::AtLeastOnce).await.unwrap();
    let request = Envelope::new(
        "twice-1",
        0,
        OperatorRequest {
            operator: "O-17".into(),
            action: OperatorAction::Complete {
                passage: Some(twice.clone()),
                readings: vec![
                    Plate {
                        text: PLATE.into(),
                        confidence: 100,
                        ..Default::default()
                    }
                    .into(),
                ],
            },
            reply_to: Some(reply_to.clone()),
        },
    );
    let manual = format!("kakou/{}/lane/L01/manual", manifest.site.id);
    let mut answers = Vec::new();
    for _ in 0..2 {
        bus.publish(&manual, request.to_bytes(), QoS::AtLeastOnce, false)
            .await
            .unwrap();
        answers.push(next_reply(&mut rx, &reply_to).await);
    }
    assert!(answers[0].ok, "{}", answers[0].message);
    assert_eq!(answers[0], answers[1], "the copy gets the first answer");
    let released = answers[0].passage.as_ref().unwrap();
    assert_eq!(
        (released.passage.id.as_str(), released.outcome),
        (twice.as_str(), Some(Outcome::Release))
    );
    // The barrier frames from the congested release on, up to the next coil-on frame.
    let on = wire::modbus::write_single_coil(1, 0, true);
    let mut barrier_seen = Vec::new();
    while !barrier_seen.windows(on.len()).any(|w| w == on.as_slice()) {
        barrier_seen.extend(lane.barrier_bytes());
    }
    lane.leaves();

    // Bad input on the operator topics is refused with its reason; nothing is done with it.
    let site_id = manifest.site.id.clone();
    for (topic, body, reason) in [
        ("lane/L01/manual", "{not json", "not JSON"),
        (
            "lane/L01/manual",
            r#"{"schema":1,"id":"b-2","at_ms":0,"operator":"O-17","action":"release"}"#,
            "missing field `reason`",
        ),
        (
            "control-order",
            r#"{"schema":1,"id":"b-3","at_ms":0,"operator":"O-17","action":"revoke","order_id":7,"reason":"x"}"#,
            "invalid type",
        ),
        (
            "parameter",
            r#"{"schema":9,"id":"b-4","at_ms":0}"#,
            "schema 9 is not one this daemon reads",
        ),
        (
            "lane/L09/manual",
            r#"{"schema":1,"id":"b-5","at_ms":0,"operator":"O-17","action":"cancel","reason":"x"}"#,
            "on this site",
        ),
    ] {
        let full = format!("kakou/{site_id}/{topic}");
        bus.publish(&full, body.as_bytes().to_vec(), QoS::AtLeastOnce, false)
            .await
            .unwrap();
        let refused = loop {
            let m = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .expect("a rejection within 30 s")
                .unwrap();
            if m.topic.ends_with("/rejected") {
                break String::from_utf8_lossy(&m.payload).into_owned();
            }
        };
        assert!(
            refused.contains(&full) && refused.contains(reason),
            "{topic}: {refused}"
        );
    }

    // Queries over the bus answer as `kakou query` does.
    let reply_to = format!("kakou/{site_id}/reply/lanes-test");
    let request = Envelope::new(
        "q-1",
        0,
        QueryRequest {
            kind: QueryKind::Passages {
                criteria: PassageQuery {
                    plate: Some(PLATE.into()),
                    ..Default::default()
                },
            },
            reply_to: reply_to.clone(),
        },
    );
    bus.publish(
        &format!("kakou/{site_id}/query"),
        request.to_bytes(),
        QoS::AtLeastOnce,
        false,
    )
    .await
    .unwrap();
    let reply = loop {
        let m = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("a query reply within 30 s")
            .unwrap();
        if m.topic == reply_to {
            break payload::parse::<QueryReply>(&m.topic, &m.payload)
                .unwrap()
                .body;
        }
    };
    assert!(reply.ok, "{}", reply.message);
    assert_eq!(reply.request, "q-1");
    // Five trucks of 粤E7Q218 (the congested one was backfilled with its plate).
    assert_eq!(
        reply.result["passages"].as_array().unwrap().len(),
        5,
        "{}",
        reply.result
    );

    let _ = stop.send(true);
    daemon.await.unwrap().unwrap();

    // With the daemon gone, what the barrier still holds unread is everything it was sent
    // after the congested release: the repeated request's one release, and nothing for the
    // backfill and the write-offs (paperwork never moves the barrier).
    barrier_seen.extend(lane.barrier_rest());
    let opens = barrier_seen
        .windows(on.len())
        .filter(|w| *w == on.as_slice())
        .count();
    assert_eq!(
        opens, 1,
        "barrier frames after the congested release: {barrier_seen:02X?}"
    );

    // Every manual action is in the audit log, with who, what, before and after.
    let store = Store::open_for_reading(&store_arg).unwrap();
    let snap = store.snapshot().unwrap();
    let audit = snap.audit(0, 1000).unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.entry.action.as_str()).collect();
    for wanted in [
        "passage.complete",
        "control-order.create",
        "control-order.revoke",
        "parameter.set",
        "vehicle.write-off",
    ] {
        assert!(
            actions.contains(&wanted),
            "{wanted} missing from {actions:?}"
        );
    }
    assert!(
        audit
            .iter()
            .all(|a| a.entry.who == "O-17" || a.entry.who == "test")
    );
    let rec = snap.passage(&congested).unwrap().unwrap();
    assert!(rec.verdict.is_some());
    let completed = audit
        .iter()
        .filter(|a| a.entry.action == "passage.complete" && a.entry.subject == twice)
        .count();
    assert_eq!(completed, 1, "the request sent twice acted once");
}
