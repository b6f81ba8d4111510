//! The bench gate's lanes, trucks and data.
//!
//! Every lane is an import bulk lane at station HP01 (category C, `required = ["weight",
//! "card"]`) with four devices on serial lines: an XK3190 weighbridge (`stable-count = 1`), a
//! Chafon UHFReader18 e-plate reader in scan mode (it sends tags unasked, `poll-ms = 0`), an
//! RDM6300 card reader and a Modbus RTU barrier relay. The weight opens the passage, the tag
//! joins it, the driver's card completes it: the card is the deciding reading.
//!
//! The trucks are the sample platform data's bulk imports at HP01 (vehicle with its e-plate tag
//! and tare, a driver card of its enterprise, the declared cargo on the scale), kept only when
//! the cn-baseline rule set releases them, so every passage lifts the barrier. Without the tag
//! (weight and card only) cn-baseline cannot tell which vehicle it is, and sends the truck to
//! an operator: the barrier would stay down and there would be nothing to time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kakou_host::config::{LaneConfig, SiteManifest};
use kakou_host::lane::assembly::{Assembled, Assembler};
use kakou_host::lane::{Decision, PassageMessage, RuleSet, state_for};
use kakou_host::plugin::{LoadOptions, Runtime};
use kakou_host::sdk::model::{
    Card, CargoKind, Direction, DocumentStatus, Outcome, Passage, Reading, Tag, Weight,
};
use kakou_host::sdk::wire;
use kakou_host::store::{ApplyOptions, OutboxMessage, PassageRecord, Store, StoreLookups};

use crate::common;

/// Customs office of the bench site.
pub const OFFICE: &str = "5201";
/// Station of every bench lane (the sample bulk documents name it).
pub const STATION: &str = "HP01";

/// Plugins the bench gate loads: its four drivers and the cn-baseline rule set's two plugins.
const PLUGINS: &[&str] = &[
    "plugins/drivers/xk3190",
    "plugins/drivers/chafon-uhf18",
    "plugins/drivers/rdm6300",
    "plugins/drivers/modbus-barrier",
    "plugins/rules/cn-baseline",
    "plugins/rules/weight-check",
];

/// Unix ms now.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// The plugins folder (holding `drivers/` and `rules/`).
pub fn plugins_dir() -> PathBuf {
    common::root().join("plugins")
}

/// The cn-baseline rule set file.
pub fn ruleset_file() -> PathBuf {
    common::root().join("manifests/regions/cn-baseline.toml")
}

/// Builds whichever of the bench's plugins has no component yet (`cargo xtask plugins` builds
/// them all; components already there are used as they are).
pub fn ensure_plugins() {
    for p in PLUGINS {
        if !common::root().join(p).join("plugin.wasm").exists() {
            common::plugin(p);
        }
    }
}

/// Imports the sample platform data (`manifests/data/sample.jsonl`) into a store, as `kakou
/// demo` and `kakou data import` do.
pub fn import_sample(store: &Store) {
    let path = common::root().join("manifests/data/sample.jsonl");
    let report = store
        .import_file(
            &path,
            None,
            &ApplyOptions::new("bench", now_ms()),
            &mut |_| {},
        )
        .unwrap();
    assert!(
        report.applied,
        "the sample data was refused: {:?}",
        report.rejected.first().map(ToString::to_string)
    );
}

/// One lane's `[[lane]]` table, its devices on serial lines `<dir>/<id>-<device>`.
pub fn lane_toml(id: &str, dir: &Path) -> String {
    let tty = |device: &str| dir.join(format!("{id}-{device}")).display().to_string();
    format!(
        r#"
[[lane]]
id = "{id}"
category = "C"
direction = "import"
cargo = "bulk"
station = "{STATION}"
required = ["weight", "card"]
devices = [
  {{ id = "scale",   driver = "xk3190",         transport = {{ serial = "{scale}", baud = 9600 }}, config = {{ stable-count = 1 }}, silence-timeout-ms = 600000 }},
  {{ id = "rfid",    driver = "chafon-uhf18",   transport = {{ serial = "{rfid}", baud = 57600 }}, config = {{ poll-ms = 0 }}, silence-timeout-ms = 600000 }},
  {{ id = "card",    driver = "rdm6300",        transport = {{ serial = "{card}", baud = 9600 }}, silence-timeout-ms = 600000 }},
  {{ id = "barrier", driver = "modbus-barrier", transport = {{ serial = "{barrier}", baud = 9600 }}, silence-timeout-ms = 600000 }},
]
"#,
        scale = tty("scale"),
        rfid = tty("rfid"),
        card = tty("card"),
        barrier = tty("barrier"),
    )
}

/// Lane id of lane `i` (0-based): `L001`, `L002`, …
pub fn lane_id(i: usize) -> String {
    format!("L{:03}", i + 1)
}

/// The site manifest: `lanes` lanes, the cn-baseline rule set, the embedded broker on
/// `broker_port`, the store at `<dir>/kakou.redb`.
pub fn site_toml(site: &str, dir: &Path, lanes: usize, broker_port: u16) -> String {
    let mut text = format!(
        r#"[site]
id = "{site}"
office = "{OFFICE}"
ruleset = "{ruleset}"
plugins = "{plugins}"
allow-dev-plugins = true

[bus]
broker = "embedded"
listen = "127.0.0.1:{broker_port}"

[store]
path = "{store}"
"#,
        ruleset = ruleset_file().display(),
        plugins = plugins_dir().display(),
        store = dir.join("kakou.redb").display(),
    );
    for i in 0..lanes {
        text.push_str(&lane_toml(&lane_id(i), dir));
    }
    text
}

/// A truck of the sample data.
#[derive(Debug, Clone)]
pub struct Truck {
    /// Registered plate (for the report; no device reads it).
    pub plate: String,
    /// E-plate tag EPC bytes.
    pub epc: Vec<u8>,
    /// Driver's card: the five ID bytes an RDM6300 sends.
    pub card: [u8; 5],
    /// Gross weight on the scale: tare plus declared cargo.
    pub gross_kg: f64,
}

impl Truck {
    /// What the weighbridge sends as the truck drives on: the empty scale, then the settled
    /// load twice (tF=0 frames).
    pub fn scale_frames(&self) -> Vec<u8> {
        let mut bytes = wire::xk3190::tf0_frame(0.0, 0);
        for _ in 0..2 {
            bytes.extend(wire::xk3190::tf0_frame(self.gross_kg, 0));
        }
        bytes
    }

    /// What the e-plate reader sends for the truck's tag (scan mode).
    pub fn tag_frame(&self) -> Vec<u8> {
        wire::chafon::scan_output(0, &self.epc)
    }

    /// What the card reader sends for the driver's card: the deciding reading.
    pub fn card_frame(&self) -> Vec<u8> {
        wire::rdm6300::frame(self.card).to_vec()
    }

    /// The readings the drivers make of those bytes, in arrival order (device id, reading).
    pub fn readings(&self) -> Vec<(&'static str, Reading)> {
        let weight = |kg: f64| -> Reading {
            Weight {
                kg,
                stable: true,
                ..Default::default()
            }
            .into()
        };
        vec![
            ("scale", weight(0.0)),
            ("scale", weight(self.gross_kg)),
            (
                "rfid",
                Tag {
                    epc: hex::encode_upper(&self.epc),
                    ..Default::default()
                }
                .into(),
            ),
            (
                "card",
                Card {
                    uid: hex::encode_upper(self.card),
                    ..Default::default()
                }
                .into(),
            ),
        ]
    }
}

/// Candidate trucks: every open bulk import document for HP01 naming a vehicle that is active,
/// has an e-plate tag and a tare, and has an active driver (bound to it, or of its enterprise
/// and bound to none).
fn candidates(store: &Store) -> Vec<Truck> {
    let s = store.snapshot().unwrap();
    let drivers = s.drivers().unwrap();
    let mut out: Vec<Truck> = Vec::new();
    for d in s.documents().unwrap() {
        let usable = d.cargo == CargoKind::Bulk
            && d.direction == Direction::Import
            && d.station == STATION
            && d.status == DocumentStatus::Open
            && d.containers.is_empty();
        let Some(plate) = d.plate.as_deref().filter(|_| usable) else {
            continue;
        };
        if out.iter().any(|t| t.plate == plate) {
            continue;
        }
        let Some(v) = s.vehicle(plate).unwrap().filter(|v| v.active) else {
            continue;
        };
        let (Some(epc), Some(tare)) = (v.tag_epc.as_deref(), v.tare_kg) else {
            continue;
        };
        let driver = drivers
            .iter()
            .find(|x| x.active && x.vehicles.contains(&v.plate))
            .or_else(|| {
                drivers
                    .iter()
                    .find(|x| x.active && x.enterprise == v.enterprise && x.vehicles.is_empty())
            });
        let Some(card) = driver
            .and_then(|x| hex::decode(&x.card_uid).ok())
            .and_then(|b| <[u8; 5]>::try_from(b).ok())
        else {
            continue;
        };
        let Ok(epc) = hex::decode(epc) else {
            continue;
        };
        let declared: f64 = s
            .documents_by_plate(plate)
            .unwrap()
            .iter()
            .filter(|x| x.status == DocumentStatus::Open && x.cargo == CargoKind::Bulk)
            .filter_map(|x| x.declared_kg)
            .sum();
        out.push(Truck {
            plate: plate.to_owned(),
            epc,
            card,
            gross_kg: (tare + declared).round(),
        });
    }
    out
}

/// The lane engine's parts without devices: a store with the sample data, the cn-baseline
/// rule set, one bench lane, and the trucks the rule set releases.
pub struct Engine {
    _dir: tempfile::TempDir,
    /// Site id.
    pub site: String,
    /// The store (sample data imported).
    pub store: Store,
    /// The plugin runtime.
    pub runtime: Runtime,
    /// cn-baseline.
    pub ruleset: RuleSet,
    /// The bench lane `L001`.
    pub lane: LaneConfig,
    /// Trucks that cn-baseline releases on this lane.
    pub trucks: Vec<Truck>,
    /// Candidates it does not release, with its reasons.
    pub refused: Vec<String>,
}

impl Engine {
    /// Sets everything up and picks the trucks. Panics, showing the verdicts, when the rule
    /// set releases none of the candidates.
    pub fn new() -> Engine {
        ensure_plugins();
        let dir = tempfile::tempdir().unwrap();
        let site = "bench".to_owned();
        let text = site_toml(&site, dir.path(), 1, 1883);
        let manifest = SiteManifest::parse(&dir.path().join("site.toml"), &text).unwrap();
        let store = Store::open(dir.path().join("kakou.redb")).unwrap();
        import_sample(&store);
        let runtime = Runtime::new(Runtime::default_cache_dir()).unwrap();
        let ruleset = RuleSet::load(
            &runtime,
            &ruleset_file(),
            &plugins_dir(),
            &LoadOptions::development(),
        )
        .unwrap();
        let mut engine = Engine {
            _dir: dir,
            site,
            store,
            runtime,
            ruleset,
            lane: manifest.lanes[0].clone(),
            trucks: Vec::new(),
            refused: Vec::new(),
        };
        let mut assembler = engine.assembler();
        let mut at = now_ms();
        for t in candidates(&engine.store) {
            at += 10_000;
            let a = assemble(&mut assembler, t.readings(), at);
            let d = engine.judge(&a.passage);
            if d.verdict.outcome == Outcome::Release {
                engine.trucks.push(t);
            } else {
                let why: Vec<String> = d
                    .verdict
                    .checks
                    .iter()
                    .filter(|c| c.result != kakou_host::sdk::model::CheckResult::Pass)
                    .map(|c| format!("{}: {}", c.code, c.message))
                    .collect();
                engine.refused.push(format!(
                    "{} {:?}: {}",
                    t.plate,
                    d.verdict.outcome,
                    why.join("; ")
                ));
            }
        }
        assert!(
            !engine.trucks.is_empty(),
            "cn-baseline releases none of the sample bulk trucks:\n{}",
            engine.refused.join("\n")
        );
        engine
    }

    /// A fresh assembler for the bench lane.
    pub fn assembler(&self) -> Assembler {
        Assembler::new(&self.site, OFFICE, &self.lane)
    }

    /// Runs the rule set on a passage, with the store's look-ups as of the passage's now.
    pub fn judge(&self, passage: &Passage) -> Decision {
        let lookups = StoreLookups::new(&self.store, passage.now_ms).unwrap();
        let lookups = Arc::new(self.ruleset.lookups(lookups));
        self.ruleset.evaluate(passage, lookups)
    }

    /// Writes a decided passage and its outbox message in one durable transaction, as the
    /// lane does.
    pub fn commit(&self, passage: Passage, decision: Decision) {
        let at = passage.now_ms;
        let outcome = decision.verdict.outcome;
        let record = PassageRecord {
            passage,
            verdict: Some(decision.verdict),
            outcome: Some(outcome),
            state: state_for(outcome),
            decided_by: decision.decided_by,
            vehicle: None,
            documents: Vec::new(),
            manual_actions: Vec::new(),
            created_ms: at,
            updated_ms: at,
        };
        let id = format!("{}:{at}:0", record.passage.id);
        let topic = kakou_host::bus::Topics::new(&self.site).passage(&record.passage.lane.id);
        let body = PassageMessage {
            record: record.clone(),
            cause: "decided".into(),
        };
        let message = OutboxMessage::new(
            topic,
            kakou_host::bus::payload::Envelope::new(id, at, body).to_bytes(),
            at,
        );
        self.store
            .write(|tx| {
                tx.put_passage(&record)?;
                tx.outbox_push(&message)
            })
            .unwrap();
    }
}

/// Offers readings to an assembler, `at_ms` onwards (1 ms apart), and returns the passage
/// the last one completes.
pub fn assemble(
    assembler: &mut Assembler,
    readings: Vec<(&'static str, Reading)>,
    at_ms: i64,
) -> Assembled {
    let mut done = None;
    for (i, (device, reading)) in readings.into_iter().enumerate() {
        done = assembler.offer(device, reading, at_ms + i as i64);
    }
    done.expect("the card completes the passage")
}
