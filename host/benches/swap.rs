//! Hot swap latency: from a new plugin folder landing (renamed into place in the site's plugin
//! folder) to the new version serving (a driver in place on its device, between two feeds; a
//! rule set in force for the next passage), with a cold artifact cache (the component is
//! compiled) and a warm one (the compiled artifact is read back), at the daemon's debounce
//! and at a short one. Real plugins built from source, the real device layer on a pty, the real
//! lane context and supervisor.
//!
//! `cargo bench -p kakou-host --bench swap` (set `KAKOU_SWAP_ROUNDS` for more than 8 rounds).

#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop right there

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/swap_support/mod.rs"]
mod swap_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kakou_host::config::SiteManifest;
use kakou_host::device::{DeviceLayer, StartOptions};
use kakou_host::lane::{LaneContext, RuleSet};
use kakou_host::plugin::Runtime;
use kakou_host::sim::pty::Pty;
use kakou_host::store::Store;
use kakou_host::swap::{self, DEFAULT_DEBOUNCE, SwapEvent, SwapSetup};
use swap_support as support;
use tokio::sync::{mpsc, watch};

const XK3190: &str = "plugins/drivers/xk3190";
const CN_BASELINE: &str = "plugins/rules/cn-baseline";
const WEIGHT: &str = "plugins/rules/weight-check";

/// Prepares `pkg` beside `plugins/<kind>/<name>`, then lands it: the running folder renamed
/// away and the new one renamed into place. Returns the moment it landed.
fn land(pkg: &Path, plugins: &Path, kind: &str, name: &str, round: usize) -> Instant {
    let parent = plugins.join(kind);
    let incoming = parent.join(format!(".{name}.incoming-{round}"));
    support::copy_dir(pkg, &incoming);
    let target = parent.join(name);
    let old = parent.join(format!(".{name}.old-{round}"));
    let t0 = Instant::now();
    std::fs::rename(&target, &old).unwrap();
    std::fs::rename(&incoming, &target).unwrap();
    t0
}

fn clear(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
}

struct Figures {
    what: String,
    ms: Vec<f64>,
}

impl Figures {
    fn print(&mut self) {
        self.ms.sort_by(f64::total_cmp);
        let n = self.ms.len();
        println!(
            "{:<52} median {:>7.1} ms   min {:>7.1}   max {:>7.1}   ({n} swaps)",
            self.what,
            self.ms[n / 2],
            self.ms[0],
            self.ms[n - 1]
        );
    }
}

/// Waits for the swap event that `pick` recognises; returns when it arrived.
async fn served(
    events: &mut mpsc::Receiver<SwapEvent>,
    pick: impl Fn(&SwapEvent) -> bool,
) -> Instant {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(120), events.recv())
            .await
            .expect("a swap within 120 s")
            .unwrap();
        if pick(&e) {
            return Instant::now();
        }
        assert!(
            !matches!(
                e,
                SwapEvent::Refused { .. } | SwapEvent::RuleSetRefused { .. }
            ),
            "{e}"
        );
    }
}

#[allow(clippy::too_many_arguments)]
async fn round_trips(
    what: &str,
    rounds: usize,
    cold: bool,
    cache: &Path,
    versions: &[(PathBuf, String)],
    plugins: &Path,
    kind: &str,
    name: &str,
    events: &mut mpsc::Receiver<SwapEvent>,
    pick: impl Fn(&SwapEvent, &str) -> bool,
) -> Figures {
    let mut ms = Vec::new();
    for round in 0..rounds {
        let (pkg, version) = &versions[(round + 1) % versions.len()];
        if cold {
            clear(cache);
        }
        let t0 = land(pkg, plugins, kind, name, round);
        let t1 = served(events, |e| pick(e, version)).await;
        ms.push((t1 - t0).as_secs_f64() * 1000.0);
        let _ = std::fs::remove_dir_all(plugins.join(kind).join(format!(".{name}.old-{round}")));
    }
    Figures {
        what: what.to_owned(),
        ms,
    }
}

fn main() {
    let rounds: usize = std::env::var("KAKOU_SWAP_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
        .max(2);
    let drivers = [
        (common::plugin(XK3190), "xk3190@1.0.0".to_owned()),
        (
            support::versioned(XK3190, "1.0.1", "same", |s| s),
            "xk3190@1.0.1".to_owned(),
        ),
    ];
    let weight = [
        (common::plugin(WEIGHT), "weight-check@1.1.0".to_owned()),
        (
            support::versioned(WEIGHT, "1.1.1", "same", |s| s),
            "weight-check@1.1.1".to_owned(),
        ),
    ];
    let baseline = common::plugin(CN_BASELINE);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("hot swap, file landed -> new version serving ({rounds} swaps each):");
    let mut all = Vec::new();
    for debounce in [DEFAULT_DEBOUNCE, Duration::from_millis(20)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let plugins = dir.join("plugins");
        let cache = common::root().join("target/swap-bench-cache");
        clear(&cache);
        support::install(&drivers[0].0, &plugins, "drivers", "xk3190");
        support::install(&baseline, &plugins, "rules", "cn-baseline");
        support::install(&weight[0].0, &plugins, "rules", "weight-check");
        std::fs::write(
            dir.join("region.toml"),
            "[ruleset]\nname = \"bench\"\nversion = \"1\"\nplugins = [\"cn-baseline\", \"weight-check\"]\n",
        )
        .unwrap();
        let _pty = Pty::open(&dir.join("tty-scale")).unwrap();
        let path = dir.join("site.toml");
        std::fs::write(
            &path,
            "[site]\nid = \"bench\"\noffice = \"5201\"\nplugins = \"plugins\"\nallow-dev-plugins = true\nruleset = \"region.toml\"\n\n\
             [[lane]]\nid = \"L01\"\ncategory = \"A\"\ndirection = \"import\"\ndevices = [\n\
               { id = \"scale\", driver = \"xk3190\", transport = { serial = \"tty-scale\" } },\n]\n",
        )
        .unwrap();
        let manifest = SiteManifest::load(&path).unwrap();
        let figures = rt.block_on(async {
            let runtime = Runtime::new(Some(cache.clone())).unwrap();
            let ruleset = RuleSet::load(
                &runtime,
                &manifest.ruleset_path().unwrap(),
                &manifest.site.plugins,
                &manifest.site.load_options(),
            )
            .unwrap();
            std::fs::create_dir_all(dir.join("var")).unwrap();
            let (lane_tx, _lane_rx) = mpsc::channel(16);
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
            let (tx, _devices) = mpsc::channel(1024);
            let layer = DeviceLayer::start_with(&manifest, &runtime, tx, StartOptions::default())
                .await
                .unwrap();
            let mut setup = SwapSetup::new(&manifest, &runtime, &layer, Some(ctx));
            setup.debounce = debounce;
            let (stop, stopped) = watch::channel(false);
            let (swap_tx, mut events) = mpsc::channel(64);
            let task = swap::spawn(setup, swap_tx, stopped);
            let d = debounce.as_millis();
            let driver = |e: &SwapEvent, v: &str| {
                matches!(e, SwapEvent::DriverSwapped { to, .. } if to == v)
            };
            let rules = |e: &SwapEvent, v: &str| {
                matches!(e, SwapEvent::RuleSetSwapped { to_plugins, .. }
                    if to_plugins.iter().any(|p| p == v))
            };
            let mut figures = Vec::new();
            for cold in [true, false] {
                let cache_state = if cold { "cold" } else { "warm" };
                if !cold {
                    // Both versions compiled once, so every load below is a cache hit.
                    for (pkg, _) in &drivers {
                        runtime
                            .load(pkg, &kakou_host::plugin::LoadOptions::development())
                            .unwrap();
                    }
                    for (pkg, _) in &weight {
                        runtime
                            .load(pkg, &kakou_host::plugin::LoadOptions::development())
                            .unwrap();
                    }
                    runtime
                        .load(&baseline, &kakou_host::plugin::LoadOptions::development())
                        .unwrap();
                }
                figures.push(
                    round_trips(
                        &format!("driver xk3190, {cache_state} cache, debounce {d} ms"),
                        rounds,
                        cold,
                        &cache,
                        &drivers,
                        &plugins,
                        "drivers",
                        "xk3190",
                        &mut events,
                        driver,
                    )
                    .await,
                );
                figures.push(
                    round_trips(
                        &format!("rule set (2 plugins), {cache_state} cache, debounce {d} ms"),
                        rounds,
                        cold,
                        &cache,
                        &weight,
                        &plugins,
                        "rules",
                        "weight-check",
                        &mut events,
                        rules,
                    )
                    .await,
                );
            }
            let _ = stop.send(true);
            let _ = task.await;
            layer.shutdown().await;
            figures
        });
        all.extend(figures);
    }
    for mut f in all {
        f.print();
    }
}
