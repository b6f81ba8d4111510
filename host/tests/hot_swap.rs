//! Hot swap, end to end: real wasm plugins built from source (other versions built as copies of
//! the plugin crates), real pseudo-terminals, the real device layer, lane engine, supervisor and
//! daemon. New driver versions are swapped in mid-stream without losing or repeating a frame,
//! rule sets are swapped between passages, refused plugins leave the running one in place, a
//! version that starts trapping is rolled back by itself, site manifest edits apply live or are
//! refused, and a scaffolded, signed plugin dropped into a running daemon brings its device up.

#![allow(clippy::unwrap_used)] // test helpers fail loudly, like the tests

mod common;
mod swap_support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kakou_host::bus::{BusClient, ClientOptions, Message, QoS};
use kakou_host::config::SiteManifest;
use kakou_host::device::{DeviceEvent, DeviceEventKind, DeviceLayer, StartOptions};
use kakou_host::lane::{LaneContext, LaneEvent, LaneInput, LaneSettings, RuleSet, spawn_lane};
use kakou_host::plugin::Runtime;
use kakou_host::plugin::signing::SecretKey;
use kakou_host::sdk::model::{Card, CardKind, ReadingValue};
use kakou_host::sdk::wire;
use kakou_host::sim::pty::Pty;
use kakou_host::store::{PassageRecord, Store};
use kakou_host::swap::{self, SwapEvent, SwapSetup};
use swap_support as support;
use tokio::sync::{mpsc, watch};

const XK3190: &str = "plugins/drivers/xk3190";
const CN_BASELINE: &str = "plugins/rules/cn-baseline";
const WEIGHT: &str = "plugins/rules/weight-check";

/// Hang guard: no single wait in these tests should come near it.
const GUARD: Duration = Duration::from_secs(120);

fn runtime() -> Runtime {
    Runtime::new(Some(common::root().join("target/test-artifact-cache"))).unwrap()
}

/// Replaces a file whole (a new file renamed over it), as an editor or a deployment tool does.
fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("edit.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A scale lane: one XK3190 on the pty `tty-scale`, reporting every frame.
const SCALE_LANE: &str = "[[lane]]\nid = \"L01\"\ncategory = \"A\"\ndirection = \"import\"\ndevices = [\n  { id = \"scale\", driver = \"xk3190\", transport = { serial = \"tty-scale\" }, config = { stable-count = 1, report = \"every\" }, max-bytes-per-sec = 100000000 },\n]\n";

/// The site manifest text: `[site]` with `extra` lines, then `rest`.
fn site_text(extra: &str, rest: &str) -> String {
    // Without a rule set the site is a gateway: its lanes relay readings and decide nothing.
    let gateway = if extra.contains("ruleset") {
        ""
    } else {
        "gateway = true\n"
    };
    format!(
        "[site]\nid = \"swap\"\noffice = \"5201\"\nplugins = \"plugins\"\n{gateway}{extra}\n\n{rest}"
    )
}

fn site(dir: &Path, extra: &str, rest: &str) -> SiteManifest {
    let path = dir.join("site.toml");
    std::fs::write(&path, site_text(extra, rest)).unwrap();
    SiteManifest::load(&path).unwrap()
}

/// Streams XK3190 frames with increasing weights (1, 2, 3 … kg) into a pty master from a thread:
/// as fast as the pty takes them, cut into 7-byte writes so frames straddle reads, or one frame
/// per `pause`. After `stop`, it finishes the batch it is in, so only whole frames are written.
struct Streamer {
    stop: Arc<AtomicBool>,
    /// The weight of the last whole frame written.
    last: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
}

impl Streamer {
    fn start(mut master: std::fs::File, pause: Option<Duration>) -> Self {
        let (stop, last, done) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let s = Streamer {
            stop: stop.clone(),
            last: last.clone(),
            done: done.clone(),
        };
        std::thread::spawn(move || {
            let mut next = 1u64;
            while !stop.load(Ordering::Relaxed) && next < 900_000 {
                let batch = if pause.is_some() { 1 } else { 100 };
                let mut bytes = Vec::with_capacity(batch * 12);
                for i in next..next + batch as u64 {
                    bytes.extend(wire::xk3190::tf0_frame(i as f64, 0));
                }
                let written = match pause {
                    Some(_) => master.write_all(&bytes),
                    None => bytes.chunks(7).try_for_each(|c| master.write_all(c)),
                };
                if written.is_err() {
                    break;
                }
                next += batch as u64;
                last.store(next - 1, Ordering::Relaxed);
                if let Some(p) = pause {
                    std::thread::sleep(p);
                }
            }
            done.store(true, Ordering::Relaxed);
        });
        s
    }

    /// Stops after the current batch; `finished()` then gives the last weight written.
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn finished(&self) -> Option<u64> {
        self.done
            .load(Ordering::Relaxed)
            .then(|| self.last.load(Ordering::Relaxed))
    }
}

/// The device layer and the hot-swap supervisor of a site, and what they said.
struct Rig {
    layer: Option<DeviceLayer>,
    devices: mpsc::Receiver<DeviceEvent>,
    swaps: mpsc::Receiver<SwapEvent>,
    lane_events: Option<mpsc::Receiver<LaneEvent>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// Weights read, in order.
    weights: Vec<f64>,
    /// Device faults.
    faults: Vec<String>,
    /// Decided passages, in order.
    records: Vec<PassageRecord>,
    /// Swap events, with how many weights and records had arrived before each.
    log: Vec<(SwapEvent, usize, usize)>,
}

async fn rig(
    manifest: &SiteManifest,
    runtime: &Runtime,
    lanes: Option<(Arc<LaneContext>, mpsc::Receiver<LaneEvent>)>,
) -> Rig {
    let (tx, devices) = mpsc::channel(1 << 16);
    let layer = DeviceLayer::start_with(
        manifest,
        runtime,
        tx,
        StartOptions {
            wait_for_missing_drivers: true,
        },
    )
    .await
    .unwrap();
    let (ctx, lane_events) = match lanes {
        Some((c, rx)) => (Some(c), Some(rx)),
        None => (None, None),
    };
    let mut setup = SwapSetup::new(manifest, runtime, &layer, ctx);
    setup.debounce = Duration::from_millis(100);
    let (stop, stopped) = watch::channel(false);
    let (swap_tx, swaps) = mpsc::channel(256);
    let task = swap::spawn(setup, swap_tx, stopped);
    Rig {
        layer: Some(layer),
        devices,
        swaps,
        lane_events,
        stop,
        task,
        weights: Vec::new(),
        faults: Vec::new(),
        records: Vec::new(),
        log: Vec::new(),
    }
}

impl Rig {
    fn layer(&self) -> &DeviceLayer {
        self.layer.as_ref().unwrap()
    }

    /// Takes in what arrives within 20 ms.
    async fn step(&mut self) {
        let lane = async {
            match self.lane_events.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(e) = self.devices.recv() => match e.kind {
                DeviceEventKind::Reading { reading } => {
                    if let ReadingValue::Weight(w) = reading.value {
                        self.weights.push(w.kg);
                    }
                }
                DeviceEventKind::Fault { error } => self.faults.push(error),
                _ => {}
            },
            Some(e) = self.swaps.recv() => {
                let at = (self.weights.len(), self.records.len());
                self.log.push((e, at.0, at.1));
            }
            Some(e) = lane => {
                if let LaneEvent::Recorded { record, cause, .. } = e
                    && cause == "decided"
                {
                    self.records.push(record);
                }
            }
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }

    /// Takes in events until `done` holds.
    async fn until(&mut self, what: &str, done: impl Fn(&Rig) -> bool) {
        let deadline = tokio::time::Instant::now() + GUARD;
        while !done(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "hang guard: no {what}; swap events: {:#?}; weights read: {}; faults: {:?}",
                self.log
                    .iter()
                    .map(|(e, ..)| e.to_string())
                    .collect::<Vec<_>>(),
                self.weights.len(),
                self.faults
            );
            self.step().await;
        }
    }

    /// Takes in events until a swap event matches `pick`; returns it and where it arrived.
    async fn until_swap(
        &mut self,
        what: &str,
        pick: impl Fn(&SwapEvent) -> bool,
    ) -> (SwapEvent, usize, usize) {
        let seen = self.log.len();
        self.until(what, |r| r.log[seen..].iter().any(|(e, ..)| pick(e)))
            .await;
        self.log[seen..]
            .iter()
            .find(|(e, ..)| pick(e))
            .cloned()
            .unwrap()
    }

    async fn close(mut self) {
        let _ = self.stop.send(true);
        let _ = (&mut self.task).await;
        self.layer.take().unwrap().shutdown().await;
    }
}

fn swapped_to(e: &SwapEvent, version: &str) -> bool {
    matches!(e, SwapEvent::DriverSwapped { to, .. } if to == version)
}

/// Asserts that `weights` is exactly 1, 2, … `n`, showing where it is not.
fn assert_each_once(weights: &[f64], n: u64) {
    for (i, w) in weights.iter().enumerate() {
        let want = (i + 1) as f64;
        assert!(
            *w == want,
            "reading {i} is {w} kg, expected {want}: around it {:?}",
            &weights[i.saturating_sub(3)..(i + 3).min(weights.len())]
        );
    }
    assert_eq!(weights.len() as u64, n, "every frame written was read once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_swapped_mid_stream_decodes_every_frame_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let plugins = dir.join("plugins");
    let v100 = common::plugin(XK3190);
    let v101 = support::versioned(XK3190, "1.0.1", "same", |s| s);
    support::install(&v100, &plugins, "drivers", "xk3190");
    let pty = Pty::open(&dir.join("tty-scale")).unwrap();
    let manifest = site(dir, "allow-dev-plugins = true", SCALE_LANE);
    let mut rig = rig(&manifest, &runtime(), None).await;

    let stream = Streamer::start(pty.master_clone().unwrap(), None);
    rig.until("1000 readings", |r| r.weights.len() >= 1000)
        .await;
    support::install(&v101, &plugins, "drivers", "xk3190");
    let (event, at, _) = rig
        .until_swap("swap to 1.0.1", |e| swapped_to(e, "xk3190@1.0.1"))
        .await;
    let SwapEvent::DriverSwapped { from, devices, .. } = &event else {
        unreachable!()
    };
    assert_eq!(from.as_deref(), Some("xk3190@1.0.0"));
    assert_eq!(devices.len(), 1, "{event}");
    assert!(devices[0].2.lost.is_none(), "{event}");
    rig.until("1000 readings after the swap", |r| {
        r.weights.len() >= at + 1000
    })
    .await;
    stream.stop();
    rig.until("the stream to end and be read", |r| {
        stream
            .finished()
            .is_some_and(|n| r.weights.len() as u64 >= n)
    })
    .await;
    let written = stream.finished().unwrap();
    // Whatever is still on its way would be a duplicate.
    for _ in 0..10 {
        rig.step().await;
    }
    assert_each_once(&rig.weights, written);
    let stats = rig.layer().device("L01", "scale").unwrap().stats();
    assert_eq!(stats.driver, "xk3190@1.0.1");
    assert_eq!(
        (stats.readings, stats.rejected, stats.faults),
        (written, 0, 0),
        "{stats:?}"
    );

    // A frame cut by a swap: half of it goes to the old decoder, which hands it over, and the
    // new one decodes it whole with the rest, once.
    let mut master = pty.master_clone().unwrap();
    let cut = wire::xk3190::tf0_frame((written + 1) as f64, 0);
    master.write_all(&cut[..6]).unwrap();
    let bytes = written * 12 + 6;
    rig.until("the half frame to arrive", |r| {
        r.layer().device("L01", "scale").unwrap().stats().bytes_in == bytes
    })
    .await;
    support::install(&v100, &plugins, "drivers", "xk3190");
    let (event, ..) = rig
        .until_swap("swap back to 1.0.0", |e| swapped_to(e, "xk3190@1.0.0"))
        .await;
    let SwapEvent::DriverSwapped { devices, .. } = &event else {
        unreachable!()
    };
    assert_eq!(
        (devices[0].2.carried_bytes, devices[0].2.carried_readings),
        (6, 0),
        "{event}"
    );
    master.write_all(&cut[6..]).unwrap();
    master
        .write_all(&wire::xk3190::tf0_frame((written + 2) as f64, 0))
        .unwrap();
    rig.until("the cut frame and the next", |r| {
        r.weights.len() as u64 >= written + 2
    })
    .await;
    for _ in 0..10 {
        rig.step().await;
    }
    assert_each_once(&rig.weights, written + 2);
    let stats = rig.layer().device("L01", "scale").unwrap().stats();
    assert_eq!((stats.rejected, stats.faults), (0, 0), "{stats:?}");
    assert!(
        !rig.log
            .iter()
            .any(|(e, ..)| matches!(e, SwapEvent::Refused { .. })),
        "{:?}",
        rig.log
    );
    rig.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_driver_version_that_starts_trapping_is_rolled_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let plugins = dir.join("plugins");
    support::install(&common::plugin(XK3190), &plugins, "drivers", "xk3190");
    let trapping = support::versioned(XK3190, "1.0.2", "traps", |s| {
        let feed = "    fn feed(&mut self, data: &[u8]) -> FeedOutput {\n";
        assert!(s.contains(feed), "the driver's feed changed shape");
        s.replace(
            feed,
            &format!(
                "{feed}        if !data.is_empty() {{\n            panic!(\"1.0.2 traps on every frame\");\n        }}\n"
            ),
        )
    });
    let pty = Pty::open(&dir.join("tty-scale")).unwrap();
    let manifest = site(
        dir,
        "allow-dev-plugins = true\nrollback-after = 3\nrollback-probation-calls = 100",
        SCALE_LANE,
    );
    let mut rig = rig(&manifest, &runtime(), None).await;
    let stream = Streamer::start(pty.master_clone().unwrap(), Some(Duration::from_millis(10)));
    rig.until("readings", |r| r.weights.len() >= 5).await;

    support::install(&trapping, &plugins, "drivers", "xk3190");
    rig.until_swap("the trapping version", |e| swapped_to(e, "xk3190@1.0.2"))
        .await;
    let (event, at, _) = rig
        .until_swap("a rollback", |e| matches!(e, SwapEvent::RolledBack { .. }))
        .await;
    let SwapEvent::RolledBack {
        target,
        from,
        to,
        faults,
        error,
        ..
    } = &event
    else {
        unreachable!()
    };
    assert_eq!(
        (target.as_str(), from.as_str(), to.as_str(), *faults),
        ("drivers/xk3190", "xk3190@1.0.2", "xk3190@1.0.0", 3)
    );
    assert!(error.contains("1.0.2 traps on every frame"), "{error}");
    assert_eq!(event.code(), "plugin.rolled-back");
    assert!(
        rig.faults.len() >= 3
            && rig.faults[..3]
                .iter()
                .all(|f| f.contains("xk3190@1.0.2") && f.contains("trapped")),
        "{:?}",
        rig.faults
    );

    // Readings go on with the version it displaced.
    let last = rig.weights[..at].last().copied().unwrap_or(0.0);
    rig.until("readings after the rollback", |r| {
        r.weights[at..].iter().filter(|w| **w > last).count() >= 5
    })
    .await;
    let after: Vec<f64> = rig.weights[at..].to_vec();
    assert!(
        after.windows(2).all(|w| w[1] > w[0]),
        "in order, none twice: {after:?}"
    );
    assert_eq!(
        rig.layer().device("L01", "scale").unwrap().stats().driver,
        "xk3190@1.0.0"
    );

    // The same build dropped in again is not activated again.
    support::install(&trapping, &plugins, "drivers", "xk3190");
    let (event, ..) = rig
        .until_swap("the rolled-back build refused", |e| {
            matches!(e, SwapEvent::Refused { .. })
        })
        .await;
    assert!(
        event
            .to_string()
            .contains("refused at step `rollback`: this build (sha256 "),
        "{event}"
    );
    stream.stop();
    rig.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_waits_for_a_missing_driver_and_comes_up_when_it_lands() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let plugins = dir.join("plugins");
    let pty = Pty::open(&dir.join("tty-scale")).unwrap();
    let manifest = site(dir, "allow-dev-plugins = true", SCALE_LANE);
    let mut rig = rig(&manifest, &runtime(), None).await;
    let (event, ..) = rig
        .until_swap("the missing driver reported", |e| {
            matches!(e, SwapEvent::DriverMissing { .. })
        })
        .await;
    assert_eq!(event.code(), "plugin.missing");
    assert_eq!(
        event.to_string(),
        format!(
            "driver xk3190 is not installed ({} has no plugin.toml): L01/scale wait for it; drop its package there",
            plugins.join("drivers/xk3190").display()
        )
    );
    let stats = rig.layer().device("L01", "scale").unwrap().stats();
    assert_eq!(stats.driver, "xk3190 (not installed)");
    assert!(!stats.online && stats.status.starts_with("waiting for driver `xk3190`"));

    // The scale talks; its bytes are counted and refused until the driver lands.
    let stream = Streamer::start(pty.master_clone().unwrap(), Some(Duration::from_millis(10)));
    rig.until("bytes refused for want of a driver", |r| {
        r.layer().device("L01", "scale").unwrap().stats().rejected >= 3
    })
    .await;
    assert!(rig.weights.is_empty());
    support::install(&common::plugin(XK3190), &plugins, "drivers", "xk3190");
    let (event, at, _) = rig
        .until_swap("the driver installed", |e| swapped_to(e, "xk3190@1.0.0"))
        .await;
    assert!(
        matches!(&event, SwapEvent::DriverSwapped { from: None, .. }),
        "{event}"
    );
    rig.until("readings", |r| r.weights.len() >= at + 5).await;
    let stats = rig.layer().device("L01", "scale").unwrap().stats();
    assert!(stats.online && stats.driver == "xk3190@1.0.0", "{stats:?}");
    assert!(
        stats
            .reasons
            .keys()
            .any(|r| r.starts_with("no driver: waiting for driver `xk3190`")),
        "{stats:?}"
    );
    let after = &rig.weights[at..];
    assert!(after.windows(2).all(|w| w[1] == w[0] + 1.0), "{after:?}");
    stream.stop();
    rig.close().await;
}

/// A category C lane deciding one passage per card, with the site's region rule set file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_set_swap_decides_each_passage_once_with_the_version_in_force() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let plugins = dir.join("plugins");
    support::install(
        &common::plugin(CN_BASELINE),
        &plugins,
        "rules",
        "cn-baseline",
    );
    support::install(&common::plugin(WEIGHT), &plugins, "rules", "weight-check");
    let weight_101 = support::versioned(WEIGHT, "1.1.1", "same", |s| s);
    std::fs::create_dir_all(dir.join("regions")).unwrap();
    let region = dir.join("regions/test.toml");
    std::fs::write(
        &region,
        "[ruleset]\nname = \"test\"\nversion = \"1\"\nplugins = [\"cn-baseline\", \"weight-check\"]\n[parameters]\n\"weight.tolerance-percent\" = \"3\"\n",
    )
    .unwrap();
    let manifest = site(
        dir,
        "allow-dev-plugins = true\nruleset = \"regions/test.toml\"",
        "[[lane]]\nid = \"L01\"\ncategory = \"C\"\ndirection = \"import\"\nwindow-ms = 60000\n",
    );
    let runtime = runtime();
    let ruleset = RuleSet::load(
        &runtime,
        &manifest.ruleset_path().unwrap(),
        &manifest.site.plugins,
        &manifest.site.load_options(),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("var")).unwrap();
    let (lane_tx, lane_rx) = mpsc::channel(4096);
    let store = Store::open(&manifest.store.path).unwrap();
    let ctx = Arc::new(LaneContext {
        site: manifest.site.id.clone(),
        office: manifest.site.office.clone(),
        store: store.clone(),
        writer: kakou_host::store::Writer::spawn(store).unwrap(),
        ruleset: std::sync::RwLock::new(ruleset),
        outbox: kakou_host::bus::Outbox::unpublished(
            kakou_host::bus::Topics::new(&manifest.site.id),
            manifest.bus.confirm,
        ),
        events: lane_tx,
        observe: true,
    });
    let (lane_stop, lane_stopped) = watch::channel(false);
    let (lane, lane_task) = spawn_lane(
        ctx.clone(),
        LaneSettings {
            config: manifest.lanes[0].clone(),
            barrier: None,
        },
        lane_stopped,
    );
    let mut rig = rig(&manifest, &runtime, Some((ctx, lane_rx))).await;

    let card = |i: u64| LaneInput::Reading {
        device: "card".into(),
        reading: Card {
            uid: format!("{:010X}", 0x1000 + i),
            kind: CardKind::Em4100,
        }
        .into(),
        at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    };
    let is_test2 =
        |e: &SwapEvent| matches!(e, SwapEvent::RuleSetSwapped { to, .. } if to == "test@2");
    let is_weight_101 = |e: &SwapEvent| {
        matches!(e, SwapEvent::RuleSetSwapped { to_plugins, .. }
            if to_plugins == &["weight-check@1.1.1".to_owned()])
    };
    let mut sent = 0u64;
    let mut phase = 0;
    loop {
        // Eight passages in flight: the swaps land while passages are being decided.
        while phase < 3 && sent < rig.records.len() as u64 + 8 {
            lane.inputs.send(card(sent)).await.unwrap();
            sent += 1;
        }
        rig.step().await;
        let swapped_at = |pick: &dyn Fn(&SwapEvent) -> bool| {
            rig.log.iter().find(|(e, ..)| pick(e)).map(|(_, _, r)| *r)
        };
        match phase {
            0 if rig.records.len() >= 20 => {
                // Another version of the rule set: one plugin fewer, another parameter.
                write_atomic(
                    &region,
                    "[ruleset]\nname = \"test\"\nversion = \"2\"\nplugins = [\"weight-check\"]\n[parameters]\n\"weight.tolerance-percent\" = \"5\"\n",
                );
                phase = 1;
            }
            1 if swapped_at(&is_test2).is_some_and(|at| rig.records.len() >= at + 20) => {
                // A new build of one of its plugins.
                support::install(&weight_101, &plugins, "rules", "weight-check");
                phase = 2;
            }
            2 if swapped_at(&is_weight_101).is_some_and(|at| rig.records.len() >= at + 20) => {
                phase = 3;
            }
            3 if rig.records.len() as u64 >= sent => break,
            _ => {}
        }
        assert!(
            !rig.log.iter().any(|(e, ..)| matches!(
                e,
                SwapEvent::Refused { .. } | SwapEvent::RuleSetRefused { .. }
            )),
            "{:?}",
            rig.log
        );
        assert!(
            rig.log.len() <= 2 && rig.records.len() < 5000,
            "runaway: {:?}",
            rig.log
        );
    }
    for _ in 0..10 {
        rig.step().await;
    }

    // Every passage decided once, with a verdict.
    assert_eq!(rig.records.len() as u64, sent);
    let mut ids: Vec<&str> = rig.records.iter().map(|r| r.passage.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len() as u64, sent, "a passage recorded twice");
    assert!(rig.records.iter().all(|r| r.verdict.is_some()));

    // Each decided wholly by one version, recorded with it; versions change once each, in order.
    let version = |r: &PassageRecord| {
        let ruleset = r
            .passage
            .attributes
            .iter()
            .find(|s| s.key == "ruleset")
            .map(|s| s.value.clone())
            .unwrap_or_default();
        let plugins: Vec<String> = r
            .decided_by
            .iter()
            .map(|p| format!("{}@{}", p.name, p.version))
            .collect();
        (ruleset, plugins)
    };
    let mut seen: Vec<(String, Vec<String>)> = Vec::new();
    for r in &rig.records {
        let v = version(r);
        if seen.last() != Some(&v) {
            seen.push(v);
        }
    }
    let s = |v: &str| v.to_owned();
    assert_eq!(
        seen,
        [
            (
                s("test@1"),
                vec![s("cn-baseline@1.0.0"), s("weight-check@1.1.0")]
            ),
            (s("test@2"), vec![s("weight-check@1.1.0")]),
            (s("test@2"), vec![s("weight-check@1.1.1")]),
        ]
    );
    let events: Vec<String> = rig.log.iter().map(|(e, ..)| e.to_string()).collect();
    assert_eq!(
        events,
        [
            "rule set test@1 [cn-baseline@1.0.0, weight-check@1.1.0] replaced by test@2 [weight-check@1.1.0]",
            "rule set test@2 [weight-check@1.1.0] replaced by test@2 [weight-check@1.1.1]",
        ]
    );
    let _ = lane_stop.send(true);
    drop(lane);
    lane_task.await.unwrap();
    rig.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_manifest_edits_apply_live_or_are_refused_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    support::install(
        &common::plugin(XK3190),
        &dir.join("plugins"),
        "drivers",
        "xk3190",
    );
    let pty = Pty::open(&dir.join("tty-scale")).unwrap();
    let manifest = site(dir, "allow-dev-plugins = true", SCALE_LANE);
    let path = manifest.path.clone();
    let mut rig = rig(&manifest, &runtime(), None).await;
    let stream = Streamer::start(pty.master_clone().unwrap(), Some(Duration::from_millis(10)));
    rig.until("readings", |r| r.weights.len() >= 5).await;

    // A broken edit: refused with its file and line; readings go on.
    write_atomic(
        &path,
        &site_text(
            "allow-dev-plugins = true",
            &SCALE_LANE.replace("category = \"A\"", "category = \"Z\""),
        ),
    );
    let (event, at, _) = rig
        .until_swap("the broken edit refused", |e| {
            matches!(e, SwapEvent::SiteRefused { .. })
        })
        .await;
    let SwapEvent::SiteRefused { error } = &event else {
        unreachable!()
    };
    assert!(
        error.starts_with(&format!("{}:10:", path.display())) && error.contains("\"Z\""),
        "{error}"
    );
    assert_eq!(event.code(), "site.refused");
    rig.until("readings after the refusal", |r| r.weights.len() >= at + 5)
        .await;

    // A device's settings and the rollback policy apply live: a new decoder on that device.
    let edited = SCALE_LANE.replace("stable-count = 1,", "stable-count = 1, stable-band-kg = 0,");
    write_atomic(
        &path,
        &site_text("allow-dev-plugins = true\nrollback-after = 5", &edited),
    );
    let (event, ..) = rig
        .until_swap("the live edit", |e| {
            matches!(e, SwapEvent::SiteApplied { .. })
        })
        .await;
    let text = event.to_string();
    assert!(
        text.contains("rollback-after = 5, rollback-probation-calls = 1000")
            && text.contains("device L01/scale config (xk3190@1.0.0 now"),
        "{text}"
    );
    assert!(
        !rig.log
            .iter()
            .any(|(e, ..)| matches!(e, SwapEvent::RestartNeeded { .. })),
        "{:?}",
        rig.log
    );

    // Another lane and a device's transport need a restart: named, not applied.
    write_atomic(
        &path,
        &site_text(
            "allow-dev-plugins = true\nrollback-after = 5",
            &format!(
                "{}\n[[lane]]\nid = \"L02\"\ncategory = \"C\"\ndirection = \"export\"\n",
                edited.replace("serial = \"tty-scale\"", "serial = \"tty-other\"")
            ),
        ),
    );
    let (event, at, _) = rig
        .until_swap("a restart asked for", |e| {
            matches!(e, SwapEvent::RestartNeeded { .. })
        })
        .await;
    let SwapEvent::RestartNeeded { changes } = &event else {
        unreachable!()
    };
    assert_eq!(changes, &["device L01/scale transport", "lane L02 added"]);
    rig.until("readings after it", |r| r.weights.len() >= at + 5)
        .await;
    let applied = rig
        .log
        .iter()
        .filter(|(e, ..)| matches!(e, SwapEvent::SiteApplied { .. }))
        .count();
    assert_eq!(applied, 1, "{:?}", rig.log);
    let all: Vec<f64> = rig.weights.clone();
    assert!(
        all.windows(2).all(|w| w[1] == w[0] + 1.0),
        "every frame read once across the live edit"
    );
    stream.stop();
    rig.close().await;
}

/// The daemon, `kakou run`, as a child process; killed when dropped.
struct Daemon {
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `kakou run --site DIR/site.toml`; returns once it says it is running.
fn daemon(site: &Path) -> Daemon {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kakou"))
        .args(["run", "--site"])
        .arg(site)
        .env(
            "KAKOU_CACHE_DIR",
            common::root().join("target/test-artifact-cache"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("running"), "{line}");
    Daemon { child }
}

/// What the daemon says on the bus.
struct Bus {
    _client: BusClient,
    rx: mpsc::Receiver<Message>,
    weights: Vec<f64>,
    alarms: Vec<serde_json::Value>,
    /// Device status messages (retained: a late subscriber gets the last one).
    statuses: Vec<serde_json::Value>,
}

impl Bus {
    async fn watch(port: u16, site: &str) -> Self {
        let mut options = ClientOptions::new(
            &format!("mqtt://127.0.0.1:{port}"),
            &format!("hot-swap-watcher-{}", std::process::id()),
        );
        options.clean_session = true;
        let (client, rx, _links) = BusClient::connect(&options).unwrap();
        client
            .subscribe(&format!("kakou/{site}/#"), QoS::AtLeastOnce)
            .await
            .unwrap();
        Bus {
            _client: client,
            rx,
            weights: Vec::new(),
            alarms: Vec::new(),
            statuses: Vec::new(),
        }
    }

    async fn until(&mut self, what: &str, done: impl Fn(&Bus) -> bool) {
        let deadline = tokio::time::Instant::now() + GUARD;
        while !done(self) {
            let m = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "hang guard: no {what}; alarms: {:#?}; weights: {}",
                        self.alarms,
                        self.weights.len()
                    )
                })
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            if m.topic.ends_with("/alarm") {
                self.alarms.push(v);
            } else if m.topic.contains("/device/") && m.topic.ends_with("/status") {
                self.statuses.push(v);
            } else if m.topic.contains("/reading/")
                && let Some(kg) = v["reading"]["kg"].as_f64()
            {
                self.weights.push(kg);
            }
        }
    }

    /// Waits for an alarm with `code` after the first `after`; returns its index and message.
    async fn alarm(&mut self, code: &str, after: usize) -> (usize, String) {
        self.until(&format!("alarm {code}"), |b| {
            b.alarms[after.min(b.alarms.len())..]
                .iter()
                .any(|a| a["code"] == code)
        })
        .await;
        let i = after
            + self.alarms[after..]
                .iter()
                .position(|a| a["code"] == code)
                .unwrap();
        (i, self.alarms[i]["message"].as_str().unwrap().to_owned())
    }

    /// Waits for `n` more readings, each heavier than the one before.
    async fn readings_go_on(&mut self, n: usize) {
        let from = self.weights.len();
        self.until("readings", |b| b.weights.len() >= from + n)
            .await;
        let w = &self.weights[from.saturating_sub(1)..];
        assert!(w.windows(2).all(|p| p[1] > p[0]), "{w:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_plugins_leave_the_running_one_decoding() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let plugins = dir.join("plugins");
    let keys = dir.join("keys");
    let (acme_key, _, _) =
        kakou_host::plugin::signing::write_key_pair(&keys, "acme", None).unwrap();
    let (other_key, _, _) =
        kakou_host::plugin::signing::write_key_pair(&keys, "other", None).unwrap();
    let (acme, other) = (
        SecretKey::load(&acme_key).unwrap(),
        SecretKey::load(&other_key).unwrap(),
    );
    let built = common::plugin(XK3190);
    let dist = |name: &str| dir.join("dist").join(name);
    support::install(
        &support::packaged(&built, &dist("good"), Some(&acme)),
        &plugins,
        "drivers",
        "xk3190",
    );

    // One broken supply chain each.
    let tampered = support::packaged(&built, &dist("tampered"), Some(&acme));
    let wasm = tampered.join("plugin.wasm");
    let mut bytes = std::fs::read(&wasm).unwrap();
    bytes.push(0);
    std::fs::write(&wasm, bytes).unwrap();
    let wrong_key = support::packaged(&built, &dist("wrong-key"), Some(&other));
    let unsigned = support::packaged(&built, &dist("unsigned"), None);
    let api2 = common::variant(XK3190, &dir.join("api2-src"), |m| {
        m.replace("api = \"^1.0\"", "api = \"^2.0\"")
    });
    let api2 = support::packaged(&api2, &dist("api2"), Some(&acme));
    let lying = common::variant(XK3190, &dir.join("lying-src"), |m| {
        m.replacen("version = \"1.0.0\"", "version = \"1.0.1\"", 1)
    });
    let lying = support::packaged(&lying, &dist("lying"), Some(&acme));
    let next = support::packaged(
        &support::versioned(XK3190, "1.0.1", "same", |s| s),
        &dist("next"),
        Some(&acme),
    );

    let _pty = Pty::open(&dir.join("tty-scale")).unwrap();
    let port = common::free_port();
    let site_path = dir.join("site.toml");
    std::fs::write(
        &site_path,
        site_text(
            &format!(
                "trusted-keys = [\"keys/acme.pub\"]\n\n[bus]\nbroker = \"embedded\"\nlisten = \"127.0.0.1:{port}\""
            ),
            SCALE_LANE,
        ),
    )
    .unwrap();
    let _daemon = daemon(&site_path);
    let mut bus = Bus::watch(port, "swap").await;
    let stream = Streamer::start(
        _pty.master_clone().unwrap(),
        Some(Duration::from_millis(20)),
    );
    bus.readings_go_on(3).await;

    let cases: [(&str, &Path, &str, &str); 5] = [
        (
            "tampered component",
            &tampered,
            "digest",
            "the file was changed or replaced",
        ),
        (
            "untrusted key",
            &wrong_key,
            "signature",
            "which is not trusted here",
        ),
        (
            "unsigned",
            &unsigned,
            "signature",
            "the plugin is unsigned (no plugin.sig)",
        ),
        (
            "API not served",
            &api2,
            "api version",
            "the plugin needs kakou:plugin ^2.0, but this host provides 1.0.0",
        ),
        (
            "self-description",
            &lying,
            "self-description",
            "the component describes itself as xk3190@1.0.0, but the manifest says xk3190@1.0.1",
        ),
    ];
    let mut seen = 0;
    for (what, pkg, step, reason) in cases {
        support::install(pkg, &plugins, "drivers", "xk3190");
        let (i, message) = bus.alarm("plugin.refused", seen).await;
        seen = i + 1;
        assert!(
            message.starts_with("drivers/xk3190")
                && message.contains(&format!("refused at step `{step}`"))
                && message.contains(reason)
                && message.ends_with("the running version stays"),
            "{what}: {message}"
        );
        bus.readings_go_on(3).await;
    }
    assert!(
        !bus.alarms.iter().any(|a| a["code"] == "plugin.swapped"),
        "{:#?}",
        bus.alarms
    );

    // A good new version, signed by the trusted key, replaces it.
    support::install(&next, &plugins, "drivers", "xk3190");
    let (_, message) = bus.alarm("plugin.swapped", seen).await;
    assert!(
        message.starts_with("driver xk3190: xk3190@1.0.0 replaced by xk3190@1.0.1 on L01/scale"),
        "{message}"
    );
    bus.readings_go_on(3).await;
    stream.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaffolded_signed_driver_dropped_into_a_running_daemon_brings_its_device_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let kakou = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_kakou"))
            .args(args)
            .current_dir(common::root())
            .env("CARGO_TARGET_DIR", common::root().join("target"))
            .env(
                "KAKOU_CACHE_DIR",
                common::root().join("target/test-artifact-cache"),
            )
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kakou {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let s = |p: &PathBuf| p.to_str().unwrap().to_owned();

    // A publisher's key, trusted by the site.
    let keys = dir.join("site/keys");
    kakou(&["plugin", "keygen", "acme", "--dir", &s(&keys)]);
    // The site: a device for a driver that is not installed yet.
    let site_dir = dir.join("site");
    let port = common::free_port();
    let site_path = site_dir.join("site.toml");
    std::fs::write(
        &site_path,
        site_text(
            &format!(
                "trusted-keys = [\"keys/acme.pub\"]\n\n[bus]\nbroker = \"embedded\"\nlisten = \"127.0.0.1:{port}\""
            ),
            "[[lane]]\nid = \"L01\"\ncategory = \"B\"\ndirection = \"export\"\ndevices = [\n  { id = \"scale\", driver = \"acme-scale\", transport = { serial = \"tty-scale\" } },\n]\n",
        ),
    )
    .unwrap();
    let pty = Pty::open(&site_dir.join("tty-scale")).unwrap();
    let daemon = daemon(&site_path);
    let mut bus = Bus::watch(port, "swap").await;
    // The device's status is retained, so it is seen however late this subscribes; it is
    // published from the daemon's loop, which starts after the plugin folder is watched. (The
    // `plugin.missing` alarm may go out before this subscribes: the library test checks it.)
    bus.until("the device waiting for its driver", |b| {
        b.statuses.iter().any(|s| {
            s["state"] == "offline"
                && s["reason"].as_str().is_some_and(|r| {
                    r.starts_with("waiting for driver `acme-scale` to be installed in ")
                })
        })
    })
    .await;

    // The device talks; nothing decodes it yet.
    let stop = Arc::new(AtomicBool::new(false));
    let talker = {
        let (mut master, stop) = (pty.master_clone().unwrap(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if master.write_all(b"ST,+012340.5,kg*3F\r\n").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    // Scaffold, build, seal and sign with the publisher's key.
    let made = kakou(&[
        "plugin",
        "new",
        "--kind",
        "driver",
        "acme-scale",
        "--dir",
        &s(&dir.join("src")),
    ]);
    assert!(made.starts_with("made "), "{made}");
    let dist = dir.join("dist");
    let built = support::with_build_lock(|| {
        kakou(&[
            "plugin",
            "build",
            &s(&dir.join("src/acme-scale")),
            "--out",
            &s(&dist),
            "--key",
            &s(&keys.join("acme.key")),
        ])
    });
    assert!(built.contains("packaged "), "{built}");

    // Dropped into the running daemon's plugin folder under its name.
    support::install(
        &dist.join("acme-scale-0.1.0"),
        &site_dir.join("plugins"),
        "drivers",
        "acme-scale",
    );
    let (_, message) = bus.alarm("plugin.swapped", 0).await;
    assert!(
        message.starts_with("driver acme-scale: acme-scale@0.1.0 installed on L01/scale"),
        "{message}"
    );
    bus.until("a reading from the new driver", |b| {
        b.weights.contains(&12340.5)
    })
    .await;
    bus.until("the device online", |b| {
        b.statuses.last().is_some_and(|s| s["state"] == "online")
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    talker.join().unwrap();
    drop(daemon);
}
