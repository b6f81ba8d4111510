//! `kakou plugin …`: what a site integrator or rule author runs on a plugin folder.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use kakou_plugin_sdk::harness::{Dataset, DatasetView};
use kakou_plugin_sdk::model::Setting;

use crate::plugin::fixtures::{self, FixtureOutcome};
use crate::plugin::signing::{self, PublicKey, SecretKey};
use crate::plugin::{
    Description, LoadOptions, LoadedPlugin, PluginKind, Runtime, build, package, scaffold,
};

/// Plugin commands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Validate a plugin folder and print what it is, or exactly why it is refused.
    ///
    /// Runs the whole load path: manifest, digest, signature, API version, compile, component
    /// check and self-description. Unsealed and unsigned plugins are accepted unless --sealed
    /// or --trust says otherwise. Exits non-zero when the plugin is refused.
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
    /// Build plugin crates into components (cargo, target wasm32-wasip2), and package them.
    ///
    /// Writes each component next to its plugin.toml (which stays unsealed). Adds the
    /// wasm32-wasip2 target through rustup when it is missing. With --out, also writes the
    /// package OUTDIR/<name>-<version>/ that sites load: plugin.toml sealed with the
    /// component's sha256, plugin.wasm, and plugin.sig when --key is given; then runs the whole
    /// load path on the package and says what it made.
    Build {
        /// Plugin crate folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Package each plugin into this folder.
        #[arg(long, value_name = "OUTDIR")]
        out: Option<PathBuf>,
        /// Sign the packages with this secret key (a .key file from `kakou plugin keygen`).
        #[arg(long, value_name = "KEYFILE", requires = "out")]
        key: Option<PathBuf>,
    },
    /// Make a publisher key pair: NAME.key (secret, mode 0600) and NAME.pub (for sites).
    ///
    /// Never overwrites a key. Sites list the .pub file under `[site] trusted-keys`; keep the
    /// .key file with whoever builds and signs the plugins, never on a gate PC.
    Keygen {
        /// Key name: the files are NAME.key and NAME.pub.
        name: String,
        /// Folder to write the two files in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Comment stored with the key and shown in messages (default: NAME).
        #[arg(long)]
        comment: Option<String>,
    },
    /// Sign a sealed plugin folder: writes plugin.sig beside its plugin.toml.
    ///
    /// The signature covers plugin.toml and the component, so changing either invalidates
    /// it. The manifest must be sealed (`wasm.sha256` matching the component): package it with
    /// `kakou plugin build DIR --out OUTDIR`, or sign while packaging with --key.
    Sign {
        /// Plugin folder (sealed).
        dir: PathBuf,
        /// The secret key (.key file).
        #[arg(long, value_name = "KEYFILE")]
        key: PathBuf,
    },
    /// Check a plugin folder's signature against publisher keys.
    ///
    /// Prints the key that signed and OK, or why the signature is not accepted (unsigned,
    /// unknown key, manifest or component changed after signing) and exits non-zero.
    Verify {
        /// Plugin folder.
        dir: PathBuf,
        /// A trusted public key (.pub file), repeatable.
        #[arg(long = "trust", value_name = "PUBFILE", required = true)]
        trust: Vec<PathBuf>,
    },
    /// Make a new plugin crate with a small working example, native tests and fixtures.
    ///
    /// The crate is standalone (a workspace of its own) and depends on the plugin SDK by
    /// path. Then: edit src/lib.rs, `cargo test`, `kakou plugin build DIR`, `kakou plugin test
    /// DIR`.
    New {
        /// Driver (a device protocol) or rules (a customs rule set).
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Plugin name: lower-case letters, digits and dashes (the folder's name too).
        name: String,
        /// Folder to make the crate in.
        #[arg(long, value_name = "PARENT", default_value = ".")]
        dir: PathBuf,
        /// The plugin-sdk folder to depend on (default: the one this kakou was built from).
        #[arg(long, value_name = "PATH")]
        sdk: Option<PathBuf>,
    },
    /// Run the built component over the plugin's fixtures and compare with what they expect.
    ///
    /// Drivers: fixtures/NAME.bin (or NAME.hex) against NAME.expected.json (readings), fed
    /// whole and in small chunks. Rules: fixtures/passage.json or NAME.passage.json against
    /// NAME.expected.json (outcome, checks, alarms). Prints one line per fixture and a
    /// summary; exits non-zero on any mismatch.
    Test {
        /// Plugin folder (built).
        dir: PathBuf,
        /// Write missing or differing expected files from what the component gives now.
        #[arg(long)]
        bless: bool,
        #[command(flatten)]
        load: LoadArgs,
    },
}

/// A plugin kind on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// A device driver.
    Driver,
    /// A customs rule set.
    Rules,
}

/// How plugins are loaded by these commands.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Refuse development builds that have no `wasm.sha256` in their manifest.
    #[arg(long)]
    sealed: bool,
    /// Trust this publisher key (.pub file), repeatable: the plugin must then be signed by one
    /// of the trusted keys. Without it, unsigned plugins are accepted.
    #[arg(long = "trust", value_name = "PUBFILE")]
    trust: Vec<PathBuf>,
    /// Compile without the on-disk artifact cache.
    #[arg(long)]
    no_cache: bool,
}

impl LoadArgs {
    fn options(&self) -> anyhow::Result<LoadOptions> {
        let keys = load_public_keys(&self.trust)?;
        Ok(LoadOptions {
            allow_unsealed: !self.sealed,
            allow_unsigned: keys.is_empty(),
            trusted_keys: keys,
        })
    }

    fn runtime(&self) -> anyhow::Result<Runtime> {
        let cache = if self.no_cache {
            None
        } else {
            Runtime::default_cache_dir()
        };
        Ok(Runtime::new(cache)?)
    }

    fn load(&self, dir: &Path) -> anyhow::Result<LoadedPlugin> {
        let options = self.options()?;
        Ok(self.runtime()?.load(dir, &options)?)
    }
}

fn load_public_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<PublicKey>> {
    paths
        .iter()
        .map(|p| PublicKey::load(p).map_err(anyhow::Error::from))
        .collect()
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
            PluginCommand::Build { dirs, out, key } => {
                build_all(&dirs, out.as_deref(), key.as_deref())
            }
            PluginCommand::Keygen { name, dir, comment } => {
                let (secret, public, key) =
                    signing::write_key_pair(&dir, &name, comment.as_deref())?;
                println!(
                    "wrote {} (secret: keep it with the publisher, never on a gate PC)",
                    secret.display()
                );
                println!(
                    "wrote {} (key {}: a site trusts it by listing the file under [site] trusted-keys)",
                    public.display(),
                    key.label(),
                );
                Ok(ExitCode::SUCCESS)
            }
            PluginCommand::Sign { dir, key } => {
                let key = SecretKey::load(&key)?;
                let (path, _) = package::sign(&dir, &key)?;
                println!(
                    "signed {} with key {}: {}",
                    dir.display(),
                    key.public().label(),
                    path.display()
                );
                Ok(ExitCode::SUCCESS)
            }
            PluginCommand::Verify { dir, trust } => {
                let keys = load_public_keys(&trust)?;
                match package::verify(&dir, &keys) {
                    Ok((manifest, key)) => {
                        println!(
                            "{} ({}): signed by key {}: OK",
                            manifest.id(),
                            dir.display(),
                            key.label()
                        );
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(e) => {
                        eprintln!("refused: {e}");
                        Ok(ExitCode::FAILURE)
                    }
                }
            }
            PluginCommand::New {
                kind,
                name,
                dir,
                sdk,
            } => {
                let kind = match kind {
                    KindArg::Driver => PluginKind::Driver,
                    KindArg::Rules => PluginKind::Rules,
                };
                let made = scaffold::new_plugin(kind, &name, &dir, sdk.as_deref())?;
                println!("made {} ({}):", made.dir.display(), made.package);
                for f in &made.files {
                    println!("  {}", f.display());
                }
                let d = made.dir.display();
                println!(
                    "next: cd {d} && cargo test; then kakou plugin build {d} && kakou plugin test {d}"
                );
                Ok(ExitCode::SUCCESS)
            }
            PluginCommand::Test { dir, bless, load } => test(&dir, bless, &load),
        }
    }
}

fn build_all(dirs: &[PathBuf], out: Option<&Path>, key: Option<&Path>) -> anyhow::Result<ExitCode> {
    let key = key.map(SecretKey::load).transpose()?;
    let runtime = match out {
        Some(_) => Some(Runtime::new(Runtime::default_cache_dir())?),
        None => None,
    };
    for dir in dirs {
        let path = build::build(dir)?;
        println!("built {}", path.display());
        let (Some(out), Some(runtime)) = (out, &runtime) else {
            continue;
        };
        let pkg = package::package(dir, out, key.as_ref())?;
        // What a site would do with it: sealed, and signed by this key when there is one.
        let options = LoadOptions {
            allow_unsealed: false,
            allow_unsigned: key.is_none(),
            trusted_keys: key.iter().map(SecretKey::public).collect(),
        };
        let loaded = runtime
            .load(&pkg.dir, &options)
            .with_context(|| format!("the package {} does not load", pkg.dir.display()))?;
        let m = loaded.manifest();
        println!(
            "packaged {}: {} {} {}, sha256 {}, {}; load path ok (kakou:plugin@{})",
            pkg.dir.display(),
            m.kind,
            m.name,
            m.version,
            hex::encode(pkg.digest),
            loaded.signature(),
            loaded.api_version()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn test(dir: &Path, bless: bool, load: &LoadArgs) -> anyhow::Result<ExitCode> {
    let plugin = load.load(dir)?;
    let reports = fixtures::run(&plugin, bless)?;
    let mut out = std::io::stdout().lock();
    let base = plugin.manifest().dir();
    let rel = |p: &Path| p.strip_prefix(base).unwrap_or(p).display().to_string();
    let (mut ok, mut mismatched, mut errors, mut blessed) = (0, 0, 0, 0);
    for r in &reports {
        let input = rel(&r.input);
        match &r.outcome {
            FixtureOutcome::Pass(summary) => {
                ok += 1;
                writeln!(out, "ok        {input}: {summary}")?;
            }
            FixtureOutcome::Blessed(path) => {
                blessed += 1;
                writeln!(out, "blessed   {input}: wrote {}", rel(path))?;
            }
            FixtureOutcome::Mismatch(diff) => {
                mismatched += 1;
                writeln!(out, "MISMATCH  {input} (against {}):", rel(&r.expected))?;
                for line in diff.lines() {
                    writeln!(out, "    {line}")?;
                }
            }
            FixtureOutcome::Error(e) => {
                errors += 1;
                writeln!(out, "ERROR     {input}: {e}")?;
            }
        }
    }
    writeln!(
        out,
        "{} {}: {ok} ok, {mismatched} mismatched, {errors} errors{}",
        plugin.manifest().id(),
        if reports.len() == 1 {
            "1 fixture".to_owned()
        } else {
            format!("{} fixtures", reports.len())
        },
        if blessed > 0 {
            format!(", {blessed} blessed")
        } else {
            String::new()
        }
    )?;
    Ok(if mismatched + errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
    writeln!(out, "signature    {}", plugin.signature())?;
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
        "limits       memory {} MiB, fuel {} per call, deadline {} ms of CPU time, result {} KiB",
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
    let (passage, mut data) = fixtures::read_passage_file(passage_path)?;
    if let Some(p) = data_path {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        let extra: Dataset = fixtures::parse_json(p, &text)?;
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
