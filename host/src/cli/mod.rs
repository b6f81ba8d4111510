//! The `kakou` command line: argument parsing and the commands for integrators.
//!
//! Each command is a thin edge over the library modules: it parses, calls, and prints. Errors
//! go back to `main` as `anyhow` with context naming the file or plugin.

mod alarm;
mod check;
mod lane;
mod outbox;
mod plugin;
mod query;
mod store;

use clap::{Parser, Subcommand};

/// kakou: the customs gate runtime.
///
/// A daemon on each gate PC loads sandboxed WebAssembly plugins (one per device vendor's
/// protocol, one per customs rule set) and decides for every truck: release, manual
/// processing, inspection.
#[derive(Debug, Parser)]
#[command(name = "kakou", version, propagate_version = true)]
pub struct Cli {
    /// Log filter, e.g. `info`, `kakou_host=debug` (also RUST_LOG).
    #[arg(long, global = true, env = "KAKOU_LOG", default_value = "warn")]
    pub log: String,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check, build and try plugins (drivers and rule sets).
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// The store: check, back up, export.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Platform data: import registrations, documents, control orders and parameters by hand.
    #[command(subcommand)]
    Data(store::DataCommand),
    /// Operator actions on a lane's passages (sent to the running daemon), and what waits.
    #[command(subcommand)]
    Lane(lane::LaneCommand),
    /// Control orders (布控) on containers, vehicles and drivers.
    #[command(subcommand)]
    Control(lane::ControlCommand),
    /// The parameter library: set (audited, versioned), list, history.
    #[command(subcommand)]
    Param(lane::ParamCommand),
    /// Re-evaluate recorded passages against another rule set or parameter version and report
    /// every outcome that would change (read-only).
    Replay(lane::ReplayArgs),
    /// Find passages, or show one in full (read-only: works beside a running daemon).
    #[command(subcommand)]
    Query(query::QueryCommand),
    /// Statistics over passages: transit, efficiency, outcomes (read-only).
    #[command(subcommand)]
    Stats(query::StatsCommand),
    /// The outbox: every message that must arrive (passages, alarms), where it is in its life
    /// (queued, in flight, acknowledged by the broker, delivered), its attempts and last error.
    ///
    /// `--site S` asks the running daemon; `--store FILE` reads the store file, daemon running
    /// or not (`--delivered N` adds the last N delivered messages with their times).
    Outbox(outbox::OutboxArgs),
    /// Stored alarms with their state (raised, repeats, acknowledged, cleared): list them
    /// (`--site S` asks the running daemon, `--store FILE` reads the file), or acknowledge one.
    #[command(subcommand)]
    Alarm(alarm::AlarmCommand),
    /// Play simulated devices from scenario files (see manifests/sim/).
    ///
    /// Each scenario plays one device on a pseudo-terminal, TCP, UDP or HTTP with the exact
    /// wire format of its driver; several run side by side. Stops at the end of the scenarios
    /// (or on Ctrl-C when one repeats forever).
    Sim {
        /// Scenario files.
        #[arg(required = true)]
        scenarios: Vec<std::path::PathBuf>,
    },
    /// Run the gate daemon for a site: the bus (embedded broker or an external one), every
    /// device, readings and device status out on the bus, commands in. Ctrl-C stops it.
    Run {
        /// The site manifest file, e.g. manifests/sites/lane-a.toml (there is no default: a
        /// daemon started on the wrong site would drive the wrong barriers).
        #[arg(long, env = "KAKOU_SITE")]
        site: std::path::PathBuf,
        /// Async worker threads (default: half the cores, rounded up; the store writer, rules
        /// and the broker have threads of their own).
        #[arg(long, env = "KAKOU_WORKERS")]
        workers: Option<usize>,
    },
    /// Check a site manifest without starting anything: the manifest (devices sharing a port
    /// or serial line, drivers not installed, lanes without a rule set, bus settings), each
    /// device's driver through the load path with the device's settings, and the rule set.
    ///
    /// Prints every problem (file:line:column where there is one) and exits non-zero when
    /// there is any.
    Check {
        /// The site manifest.
        #[arg(long)]
        site: std::path::PathBuf,
    },
    /// Run the embedded MQTT broker (the daemon starts this itself).
    Broker {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:1883")]
        listen: std::net::SocketAddr,
        /// Require this user name (the password comes from KAKOU_BROKER_PASSWORD).
        #[arg(long)]
        user: Option<String>,
        /// Exit when standard input closes (set by the daemon that starts the broker).
        #[arg(long, hide = true)]
        watch_stdin: bool,
    },
    /// Run the site's devices and print every device event as a JSON line.
    ///
    /// Loads each device's driver, opens its link (serial, TCP, UDP, HTTP) and reports readings,
    /// rejected frames, online/offline and faults until Ctrl-C.
    Devices {
        /// The site manifest file, e.g. manifests/sites/lane-a.toml (there is no default: a
        /// daemon started on the wrong site would drive the wrong barriers).
        #[arg(long, env = "KAKOU_SITE")]
        site: std::path::PathBuf,
    },
    /// Run the demo gate: three lanes (categories A, B, C) on simulated devices, the embedded
    /// broker and a fresh store with the sample data, deciding a realistic mix of trucks.
    Demo {
        /// Stop after this many trucks (default: run until Ctrl-C).
        #[arg(long)]
        trucks: Option<u32>,
        /// Region rule set: a name under manifests/regions/ or a file.
        #[arg(long, default_value = "cn-baseline")]
        ruleset: String,
        /// Folder holding drivers/ and rules/ plugin folders.
        #[arg(long)]
        plugins: Option<std::path::PathBuf>,
        /// Folder for the demo's site manifest, store and device links (emptied first).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

impl Cli {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<std::process::ExitCode> {
        match self.command {
            Command::Plugin(c) => c.run(),
            Command::Store(c) => c.run(),
            Command::Data(c) => c.run(),
            Command::Lane(c) => c.run(),
            Command::Control(c) => c.run(),
            Command::Param(c) => c.run(),
            Command::Replay(c) => c.run(),
            Command::Query(c) => c.run(),
            Command::Stats(c) => c.run(),
            Command::Outbox(c) => c.run(),
            Command::Alarm(c) => c.run(),
            Command::Sim { scenarios } => runtime()?.block_on(sim(scenarios)),
            Command::Devices { site } => runtime()?.block_on(devices(site)),
            Command::Check { site } => check::run(&site),
            Command::Run { site, workers } => {
                crate::daemon::runtime(workers)?.block_on(run_daemon(site))
            }
            Command::Broker {
                listen,
                user,
                watch_stdin,
            } => {
                let password = std::env::var(crate::bus::broker::PASSWORD_ENV).ok();
                crate::bus::broker::run(listen, user, password, watch_stdin)?;
                Ok(std::process::ExitCode::SUCCESS)
            }
            Command::Demo {
                trucks,
                ruleset,
                plugins,
                dir,
            } => {
                let mut options = crate::demo::DemoOptions::new(std::env::current_exe()?);
                options.trucks = trucks;
                if let Some(p) = plugins {
                    options.plugins = p;
                }
                if let Some(d) = dir {
                    options.dir = d;
                }
                if ruleset.ends_with(".toml") {
                    options.ruleset = ruleset.into();
                } else if let Some(regions) = options.ruleset.parent() {
                    options.ruleset = regions.join(format!("{ruleset}.toml"));
                }
                let mut out = std::io::stdout();
                crate::daemon::runtime(None)?.block_on(crate::demo::run(&options, &mut out))?;
                Ok(std::process::ExitCode::SUCCESS)
            }
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn sim(paths: Vec<std::path::PathBuf>) -> anyhow::Result<std::process::ExitCode> {
    use crate::sim::scenario::Scenario;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for path in paths {
        let scenario = Scenario::load(&path)?;
        let rx = stopped.clone();
        let name = path
            .file_stem()
            .map_or("sim".into(), |s| s.to_string_lossy().into_owned());
        tasks.spawn(async move {
            let mut log = |line: String| println!("[{name}] {line}");
            let result = crate::sim::play(&scenario, rx, &mut log).await;
            (path, result)
        });
    }
    let mut failed = false;
    loop {
        tokio::select! {
            done = tasks.join_next() => match done {
                Some(Ok((_, Ok(())))) => {}
                Some(Ok((path, Err(e)))) => {
                    eprintln!("error: {}: {e}", path.display());
                    failed = true;
                }
                Some(Err(e)) => {
                    eprintln!("error: a simulator stopped: {e}");
                    failed = true;
                }
                None => break,
            },
            _ = tokio::signal::ctrl_c() => {
                let _ = stop.send(true);
            }
        }
    }
    Ok(if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

async fn devices(site: std::path::PathBuf) -> anyhow::Result<std::process::ExitCode> {
    use std::io::Write;
    let manifest = crate::config::SiteManifest::load(&site)?;
    let runtime = crate::plugin::Runtime::new(crate::plugin::Runtime::default_cache_dir())?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let layer = crate::device::DeviceLayer::start(&manifest, &runtime, tx).await?;
    eprintln!(
        "{} devices on {} lanes running; Ctrl-C to stop",
        layer.devices().count(),
        manifest.lanes.len()
    );
    loop {
        tokio::select! {
            e = rx.recv() => match e {
                Some(event) => {
                    let mut out = std::io::stdout().lock();
                    serde_json::to_writer(&mut out, &event)?;
                    writeln!(out)?;
                }
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    layer.shutdown().await;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn run_daemon(site: std::path::PathBuf) -> anyhow::Result<std::process::ExitCode> {
    let manifest = crate::config::SiteManifest::load(&site)?;
    let exe = std::env::current_exe()?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        let _ = stop.send(true);
    });
    // On a worker, not on this thread (see `daemon::runtime`).
    tokio::spawn(crate::daemon::run(manifest, exe, stopped)).await??;
    Ok(std::process::ExitCode::SUCCESS)
}
