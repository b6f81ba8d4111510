//! `kakou demo`: a three-lane gate (categories A, B and C) on simulated devices, the embedded
//! broker and a fresh store with the sample platform data, deciding a realistic mix of trucks
//! with the region's rule set.
//!
//! Owns only the demo's script: the site it writes, the trucks it plays on the simulators and
//! the operator it plays on the bus. The daemon, the devices, the lane engine and the plugins
//! do the work exactly as on a gate PC.

mod console;
mod plan;
mod site;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use tokio::sync::watch;

pub use console::Tally;

use crate::config::SiteManifest;
use crate::store::{ApplyOptions, Store};

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A file could not be written or read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The sample data was refused.
    #[error("the sample data {path} was refused: {reason}")]
    Data {
        /// The file.
        path: PathBuf,
        /// The first reasons.
        reason: String,
    },
    /// The plan could not be made.
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    /// The generated site manifest was refused (a bug).
    #[error(transparent)]
    Manifest(#[from] crate::config::ManifestError),
    /// The daemon stopped.
    #[error(transparent)]
    Daemon(#[from] crate::daemon::DaemonError),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] crate::bus::BusError),
}

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Folder holding `drivers/` and `rules/` plugin folders.
    pub plugins: PathBuf,
    /// Folder for the site manifest, the store and the device links (emptied first).
    pub dir: PathBuf,
    /// Region rule set file.
    pub ruleset: PathBuf,
    /// Platform data to import.
    pub data: PathBuf,
    /// Stop after this many trucks (none: until Ctrl-C).
    pub trucks: Option<u32>,
    /// The `kakou` binary (it runs the embedded broker).
    pub exe: PathBuf,
}

impl DemoOptions {
    /// Defaults relative to the repository (or the current folder when it has one).
    pub fn new(exe: PathBuf) -> Self {
        let root = repo_root();
        DemoOptions {
            plugins: root.join("plugins"),
            dir: root.join("var/demo"),
            ruleset: root.join("manifests/regions/cn-baseline.toml"),
            data: root.join("manifests/data/sample.jsonl"),
            trucks: None,
            exe,
        }
    }
}

/// The repository root: the current folder when it holds `manifests/`, else the source tree.
fn repo_root() -> PathBuf {
    if Path::new("manifests").is_dir() && Path::new("plugins").is_dir() {
        return PathBuf::from(".");
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DemoError {
    let what = what.into();
    move |source| DemoError::Io { what, source }
}

/// Runs the demo, printing the lane log to `out`. Returns the tally per lane.
pub async fn run(
    options: &DemoOptions,
    out: &mut (dyn Write + Send),
) -> Result<BTreeMap<String, Tally>, DemoError> {
    let dir = &options.dir;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(format!("emptying {}", dir.display())))?;
    }
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let dir = dir
        .canonicalize()
        .map_err(io(format!("resolving {}", dir.display())))?;

    // A fresh store with the platform's data, as a gate PC has after its first download.
    let store_path = dir.join("kakou.redb");
    let trucks = {
        let store = Store::open(&store_path)?;
        let report = store.import_file(
            &options.data,
            None,
            &ApplyOptions::new("demo", crate::device::now_ms()),
            &mut |_| {},
        )?;
        if !report.applied {
            let reasons: Vec<String> = report
                .rejected
                .iter()
                .take(3)
                .map(ToString::to_string)
                .collect();
            return Err(DemoError::Data {
                path: options.data.clone(),
                reason: reasons.join("; "),
            });
        }
        plan::round(&store.snapshot()?)?
    };

    // The trucks, round after round.
    let total = options.trucks.map_or(usize::MAX, |n| n as usize);
    let rounds = if total == usize::MAX {
        200
    } else {
        total.div_ceil(trucks.len())
    };
    let order: Vec<plan::Truck> = trucks
        .iter()
        .cycle()
        .take((rounds * trucks.len()).min(total))
        .cloned()
        .collect();

    let ports = site::Ports::free().map_err(io("finding free ports"))?;
    let plugins = options
        .plugins
        .canonicalize()
        .map_err(io(format!("resolving {}", options.plugins.display())))?;
    let ruleset = options
        .ruleset
        .canonicalize()
        .map_err(io(format!("resolving {}", options.ruleset.display())))?;
    let manifest_path = dir.join("site.toml");
    std::fs::write(
        &manifest_path,
        site::manifest(&dir, &plugins, &ruleset, &ports),
    )
    .map_err(io(format!("writing {}", manifest_path.display())))?;
    let manifest = SiteManifest::load(&manifest_path)?;

    let rule_name = ruleset
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "kakou demo: site {} · lanes L01 (A, import, container), L02 (B, export, container), \
         L03 (C, import, bulk) · rule set {rule_name} · {} trucks{}",
        manifest.site.id,
        if total == usize::MAX {
            "unlimited".to_owned()
        } else {
            order.len().to_string()
        },
        if total == usize::MAX {
            " (Ctrl-C stops)"
        } else {
            ""
        }
    );

    let (stop, stopped) = watch::channel(false);

    // The simulated devices: one scenario per device, every truck of its lane in turn.
    let mut sims = Vec::new();
    for lane in 0..3 {
        let lane_trucks: Vec<&plan::Truck> = order.iter().filter(|t| t.lane == lane).collect();
        for s in site::scenarios(&dir, &ports, lane, &lane_trucks) {
            let shutdown = stopped.clone();
            sims.push(tokio::spawn(async move {
                let mut quiet = |_: String| {};
                if let Err(e) = crate::sim::play(&s, shutdown, &mut quiet).await {
                    tracing::warn!("simulated {}: {e}", s.protocol);
                }
            }));
        }
    }
    // Links exist before the daemon opens them.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let daemon = tokio::spawn(crate::daemon::run(
        manifest.clone(),
        options.exe.clone(),
        stopped.clone(),
    ));
    let url = format!("mqtt://127.0.0.1:{}", ports.broker);
    // The console connects once the daemon's broker listens.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", ports.broker)).is_err() {
        if daemon.is_finished() || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    if daemon.is_finished() {
        return match daemon.await {
            Ok(Err(e)) => Err(e.into()),
            _ => Ok(BTreeMap::new()),
        };
    }

    let expected = if total == usize::MAX { 0 } else { order.len() };
    let console = console::run(
        &url,
        &manifest.site.id,
        order,
        expected,
        out,
        stopped.clone(),
    );
    // On Ctrl-C the console is told to stop like everything else and still returns what it
    // counted, so the summary covers the trucks seen so far.
    let tally = {
        let mut console = std::pin::pin!(console);
        let finished = tokio::select! {
            t = &mut console => Some(t),
            _ = tokio::signal::ctrl_c() => None,
        };
        match finished {
            Some(t) => t?,
            None => {
                let _ = stop.send(true);
                console.await?
            }
        }
    };
    let _ = stop.send(true);
    if let Ok(Err(e)) = daemon.await {
        let _ = writeln!(out, "daemon: {e}");
    }
    for s in sims {
        let _ = s.await;
    }

    let _ = writeln!(out, "\nsummary");
    for (lane, t) in &tally {
        let _ = writeln!(
            out,
            "  {lane}: {} trucks · {} released · {} refused · {} operator actions",
            t.passages, t.outcomes[0], t.outcomes[3], t.manual_actions
        );
    }
    let kakou = invocation();
    let _ = writeln!(
        out,
        "\nthe store is kept: {kakou} query passages --store {0}\n                   {kakou} stats efficiency --store {0}",
        store_path.display()
    );
    Ok(tally)
}

/// How the user runs this `kakou` again: `kakou` when the running binary is the one found on
/// `PATH`, else its own path (a binary in a build folder is not on `PATH`, and `kakou …` would
/// not be found).
fn invocation() -> String {
    let Ok(me) = std::env::current_exe().and_then(|p| p.canonicalize()) else {
        return "kakou".to_owned();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .filter_map(|d| d.join("kakou").canonicalize().ok())
            .next()
            .is_some_and(|found| found == me)
    });
    if on_path {
        "kakou".to_owned()
    } else {
        me.display().to_string()
    }
}

#[cfg(test)]
mod invocation_tests {
    #[test]
    fn a_binary_not_found_on_path_is_named_by_its_path() {
        // The test binary is not `kakou` on PATH, so the hint names it by its path.
        let me = std::env::current_exe().unwrap().canonicalize().unwrap();
        assert_eq!(super::invocation(), me.display().to_string());
    }
}
