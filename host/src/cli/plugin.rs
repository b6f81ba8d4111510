//! `kakou plugin …`: what a site integrator or rule author runs on a plugin folder.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use kakou_plugin_sdk::harness::{Dataset, DatasetView};
use kakou_plugin_sdk::model::{Passage, Setting};

use crate::plugin::{Description, LoadOptions, LoadedPlugin, Runtime, build};

/// Plugin commands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Validate a plugin folder and print what it is, or exactly why it is refused.
    ///
    /// Runs the whole load path: manifest, digest, API version, compile, component check and
    /// self-description. Exits non-zero when the plugin is refused.
    Check {
        /// Plugin folder (holding plugin.toml and plugin.wasm).
        dir: PathBuf,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Run a driver over raw device bytes and print one JSON line per reading.
    ///
    /// Bytes come from FILE, or standard input when FILE is absent or `-`. Rejected frames and
    /// a summary go to standard error. Example:
    ///
    ///   kakou plugin feed plugins/drivers/xk3190 plugins/drivers/xk3190/fixtures/frames.bin
    Feed {
        /// Driver plugin folder.
        dir: PathBuf,
        /// File of raw bytes (`-` or absent: standard input).
        file: Option<PathBuf>,
        /// Device setting, repeatable: `--set stable-count=5`.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting)]
        settings: Vec<Setting>,
        /// Feed the bytes in chunks of this size, as a serial port would deliver them.
        #[arg(long, value_name = "BYTES")]
        chunk: Option<usize>,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Run a rule set on a passage and print the verdict as JSON.
    ///
    /// PASSAGE.json holds either a passage, or `{"passage": …, "data": …}` where data holds the
    /// registrations, documents, control orders and parameters the rules may look up.
    Eval {
        /// Rules plugin folder.
        dir: PathBuf,
        /// The passage (JSON).
        passage: PathBuf,
        /// Look-up data (JSON), instead of or on top of the passage file's `data`.
        #[arg(long, value_name = "DATA.json")]
        data: Option<PathBuf>,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Build plugin crates into components (cargo, target wasm32-wasip2).
    ///
    /// Writes each component next to its plugin.toml. Adds the wasm32-wasip2 target through
    /// rustup when it is missing.
    Build {
        /// Plugin folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
}

/// How plugins are loaded by these commands.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Refuse development builds that have no `wasm.sha256` in their manifest.
    #[arg(long)]
    sealed: bool,
    /// Compile without the on-disk artifact cache.
    #[arg(long)]
    no_cache: bool,
}

impl LoadArgs {
    fn load(&self, dir: &Path) -> anyhow::Result<LoadedPlugin> {
        let cache = if self.no_cache {
            None
        } else {
            Runtime::default_cache_dir()
        };
        let runtime = Runtime::new(cache)?;
        let options = LoadOptions {
            allow_unsealed: !self.sealed,
        };
        Ok(runtime.load(dir, &options)?)
    }
}

fn parse_setting(s: &str) -> Result<Setting, String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    Ok(Setting::new(k.trim(), v))
}

impl PluginCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            PluginCommand::Check { dir, load } => check(&dir, &load),
            PluginCommand::Feed {
                dir,
                file,
                settings,
                chunk,
                load,
            } => feed(&dir, file.as_deref(), &settings, chunk, &load),
            PluginCommand::Eval {
                dir,
                passage,
                data,
                load,
            } => eval(&dir, &passage, data.as_deref(), &load),
            PluginCommand::Build { dirs } => {
                for dir in dirs {
                    let path = build::build(&dir)?;
                    println!("built {}", path.display());
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

fn check(dir: &Path, load: &LoadArgs) -> anyhow::Result<ExitCode> {
    let plugin = match load.load(dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("refused: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let m = plugin.manifest();
    let mut out = std::io::stdout().lock();
    writeln!(out, "plugin       {} {}", m.name, m.version)?;
    writeln!(out, "kind         {}", m.kind)?;
    writeln!(out, "description  {}", m.description)?;
    if let Some(v) = &m.vendor {
        writeln!(out, "vendor       {v}")?;
    }
    writeln!(
        out,
        "api          {} (linked against kakou:plugin@{})",
        m.api,
        plugin.api_version()
    )?;
    let seal = if m.sha256.is_some() {
        "sealed"
    } else {
        "unsealed development build"
    };
    writeln!(out, "sha256       {} ({seal})", plugin.digest_hex())?;
    let caps: Vec<&str> = m.capabilities.iter().map(|c| c.name()).collect();
    writeln!(
        out,
        "capabilities {}",
        if caps.is_empty() {
            "none".into()
        } else {
            caps.join(", ")
        }
    )?;
    let l = m.limits;
    writeln!(
        out,
        "limits       memory {} MiB, fuel {} per call, deadline {} ms, result {} KiB",
        l.memory_bytes >> 20,
        l.fuel,
        l.deadline_ms,
        l.max_output_bytes / 1024
    )?;
    match plugin.description() {
        Description::Driver(d) => {
            writeln!(out, "devices      {}", d.device_classes.join(", "))?;
            if let Some(ms) = d.poll_interval_ms {
                writeln!(out, "polls every  {ms} ms")?;
            }
            for s in &d.settings {
                let default = s.default_value.as_deref().unwrap_or("(none)");
                writeln!(out, "setting      {} = {default}  # {}", s.key, s.doc)?;
            }
        }
        Description::Rules(r) => {
            writeln!(out, "checks       {}", r.rule_codes.join(", "))?;
            for p in &r.parameters {
                let default = p.default_value.as_deref().unwrap_or("(none)");
                writeln!(out, "parameter    {} = {default}  # {}", p.key, p.doc)?;
            }
        }
    }
    writeln!(out, "ok")?;
    Ok(ExitCode::SUCCESS)
}

fn feed(
    dir: &Path,
    file: Option<&Path>,
    settings: &[Setting],
    chunk: Option<usize>,
    load: &LoadArgs,
) -> anyhow::Result<ExitCode> {
    let plugin = load.load(dir)?;
    let Some(driver) = plugin.into_driver() else {
        bail!(
            "{} is a rules plugin; `plugin feed` runs drivers (use `plugin eval`)",
            dir.display()
        );
    };
    let bytes = match file {
        None => read_stdin()?,
        Some(p) if p == Path::new("-") => read_stdin()?,
        Some(p) => std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
    };
    let mut decoder = driver.open(settings)?;
    let mut out = std::io::stdout().lock();
    let (mut readings, mut rejected, mut rejected_bytes) = (0usize, 0usize, 0u64);
    for piece in bytes.chunks(chunk.unwrap_or(bytes.len()).max(1)) {
        let batch = decoder.feed(piece)?;
        for r in &batch.readings {
            serde_json::to_writer(&mut out, r)?;
            writeln!(out)?;
        }
        for r in &batch.rejected {
            eprintln!("rejected {} bytes: {}", r.bytes, r.reason);
            rejected_bytes += u64::from(r.bytes);
        }
        readings += batch.readings.len();
        rejected += batch.rejected.len();
    }
    let left = decoder.drain()?.len();
    eprintln!(
        "{readings} readings, {rejected} rejections ({rejected_bytes} bytes), {left} bytes left unconsumed, from {} bytes",
        bytes.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut buf)
        .context("cannot read standard input")?;
    Ok(buf)
}

fn eval(
    dir: &Path,
    passage_path: &Path,
    data_path: Option<&Path>,
    load: &LoadArgs,
) -> anyhow::Result<ExitCode> {
    let plugin = load.load(dir)?;
    let Some(rules) = plugin.into_rules() else {
        bail!(
            "{} is a driver; `plugin eval` runs rule sets (use `plugin feed`)",
            dir.display()
        );
    };
    let (passage, mut data) = read_passage(passage_path)?;
    if let Some(p) = data_path {
        let extra: Dataset = read_json(p)?;
        merge(&mut data, extra);
    }
    let data = Arc::new(data);
    let lookups = Arc::new(DatasetView::new(data, passage.now_ms));
    let verdict = rules.evaluate(&passage, Some(lookups))?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &verdict)?;
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_json(path, &text)
}

fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> anyhow::Result<T> {
    serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        anyhow::anyhow!("{}:{}:{}: {message}", path.display(), e.line(), e.column())
    })
}

/// A passage file: a bare passage, or a passage with its look-up data.
fn read_passage(path: &Path) -> anyhow::Result<(Passage, Dataset)> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct WithData {
        passage: Passage,
        #[serde(default)]
        data: Dataset,
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: serde_json::Value = parse_json(path, &text)?;
    let parsed = if value.get("passage").is_some() {
        parse_json::<WithData>(path, &text).map(|w| (w.passage, w.data))
    } else {
        parse_json::<Passage>(path, &text).map(|p| (p, Dataset::default()))
    };
    parsed.context("not a passage file (a passage, or {\"passage\": …, \"data\": …})")
}

fn merge(into: &mut Dataset, extra: Dataset) {
    into.vehicles.extend(extra.vehicles);
    into.drivers.extend(extra.drivers);
    into.enterprises.extend(extra.enterprises);
    into.stations.extend(extra.stations);
    into.documents.extend(extra.documents);
    into.control_orders.extend(extra.control_orders);
    into.parameters.extend(extra.parameters);
    into.balances.extend(extra.balances);
}
