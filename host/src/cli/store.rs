//! `kakou store …` (check, back up, export a store file) and `kakou data …` (import platform
//! data by hand, write the sample data).
//!
//! The read-only commands open the file beside a running daemon (see [`crate::store`]);
//! `data import` writes, so it needs the file to itself: while the daemon runs, platform data
//! go through the bus instead.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::store::platform::Progress;
use crate::store::{
    ApplyOptions, CheckReport, OutboxMessage, RecordKind, SCHEMA_VERSION, Store, StoreError,
    exportable_tables, sample,
};

/// Store commands.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Check a store file's integrity and print what it holds.
    ///
    /// Every record decodes, every index entry names a record that has it, every record is
    /// indexed, counters match the passages, the audit log has no gaps; when no other process
    /// holds the file, redb's page checksums are verified too. Exits non-zero on any problem.
    /// Safe beside a running daemon.
    Check {
        /// The redb file.
        path: PathBuf,
    },
    /// Copy a store, consistently, into a new file (safe beside a running daemon).
    ///
    /// The copy is one read transaction written entry by entry into DEST (which must not
    /// exist), then checked.
    Backup {
        /// The redb file.
        path: PathBuf,
        /// The new backup file.
        dest: PathBuf,
    },
    /// Print records as JSON lines: `{"table": …, "key": …, "value": …}`.
    Export {
        /// The redb file.
        path: PathBuf,
        /// Only these tables (repeatable); default: every record table.
        #[arg(long = "table", value_name = "TABLE")]
        tables: Vec<String>,
    },
    /// Write synthetic passages one durable transaction at a time, printing each id once
    /// committed (crash tests).
    #[command(hide = true)]
    Soak {
        /// The redb file.
        path: PathBuf,
        /// How many passages.
        #[arg(long, default_value_t = 1000)]
        count: u64,
        /// Number of the first passage.
        #[arg(long, default_value_t = 0)]
        start: u64,
    },
}

/// Platform data commands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Import registrations, documents, control orders and parameters from a file.
    ///
    /// JSON lines (`{"kind": "vehicle", …}` per line) or CSV (one kind per file: --kind, a
    /// `kind` column, or told from the header). Every record is validated first; then all
    /// are applied in one transaction, or none if any was rejected. Importing the same file
    /// again changes nothing. See manifests/data/README.md for the format.
    Import {
        /// The store (the daemon must not be running: it feeds platform data over the bus).
        #[arg(long, env = "KAKOU_STORE")]
        store: PathBuf,
        /// JSON lines or CSV.
        file: PathBuf,
        /// Kind of every record of a CSV file (vehicle, driver, enterprise, station,
        /// document, control-order, parameter).
        #[arg(long, value_parser = parse_kind)]
        kind: Option<RecordKind>,
        /// Validate and report, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who imports (written in the audit log).
        #[arg(long, env = "USER", default_value = "operator")]
        who: String,
    },
    /// Print the demo site's sample data (JSON lines), as in manifests/data/sample.jsonl.
    Sample {
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn parse_kind(s: &str) -> Result<RecordKind, String> {
    RecordKind::parse(s).ok_or_else(|| {
        format!(
            "unknown kind {s:?}; one of {}",
            RecordKind::ALL.map(RecordKind::name).join(", ")
        )
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl StoreCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            StoreCommand::Check { path } => check(&path),
            StoreCommand::Backup { path, dest } => backup(&path, &dest),
            StoreCommand::Export { path, tables } => export(&path, &tables),
            StoreCommand::Soak { path, count, start } => soak(&path, start, count),
        }
    }
}

impl DataCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            DataCommand::Import {
                store,
                file,
                kind,
                dry_run,
                who,
            } => import(&store, &file, kind, dry_run, &who),
            DataCommand::Sample { out } => {
                let text = sample::sample_jsonl();
                match out {
                    Some(path) => std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))?,
                    None => std::io::stdout().lock().write_all(text.as_bytes())?,
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

fn check(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    // redb's page check needs the file to itself; beside a daemon only the logical check runs.
    let pages = match Store::verify_file(path) {
        Ok(ok) => Some(ok),
        Err(StoreError::Busy { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let store = Store::open_for_reading(path)?;
    let mut report = store.snapshot()?.check()?;
    report.pages_verified = pages;
    print_check(&report);
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_check(r: &CheckReport) {
    println!("store     {}", r.path.display());
    match r.schema_version {
        Some(v) => println!("schema    {v} (this build reads up to {SCHEMA_VERSION})"),
        None => println!("schema    none"),
    }
    println!(
        "pages     {}",
        match r.pages_verified {
            Some(true) => "checksums verified",
            Some(false) => "DAMAGED: redb found bad pages and repaired what it could",
            None => "not verified: another process holds the file (logical check only)",
        }
    );
    println!("tables");
    for (name, n) in &r.counts {
        println!("  {name:<28} {n:>10}");
    }
    for note in &r.notes {
        println!("note      {note}");
    }
    if r.problem_count == 0 {
        println!("problems  none");
    } else {
        println!("problems  {}", r.problem_count);
        for p in &r.problems {
            println!("  {p}");
        }
        if r.problem_count > r.problems.len() as u64 {
            println!("  … and {} more", r.problem_count - r.problems.len() as u64);
        }
    }
    println!("{}", if r.is_clean() { "ok" } else { "FAILED" });
}

fn backup(path: &std::path::Path, dest: &std::path::Path) -> anyhow::Result<ExitCode> {
    let store = Store::open_for_reading(path)?;
    let snapshot = store.snapshot()?;
    let report = snapshot.backup_to(dest)?;
    drop(snapshot);
    let copy = Store::open_read_only(dest)?;
    let check = copy.snapshot()?.check()?;
    println!(
        "backed up {} entries of {} tables from {} to {} ({} bytes)",
        report.entries,
        report.tables,
        path.display(),
        dest.display(),
        report.bytes
    );
    if check.is_clean() {
        println!("backup checked: ok");
        Ok(ExitCode::SUCCESS)
    } else {
        print_check(&check);
        Ok(ExitCode::FAILURE)
    }
}

fn export(path: &std::path::Path, tables: &[String]) -> anyhow::Result<ExitCode> {
    let known = exportable_tables();
    let chosen: Vec<&str> = if tables.is_empty() {
        crate::store::RECORD_TABLES.to_vec()
    } else {
        let mut out = Vec::new();
        for t in tables {
            match known.iter().find(|k| **k == t.as_str()) {
                Some(k) => out.push(*k),
                None => bail!("no table {t:?} to export; tables: {}", known.join(", ")),
            }
        }
        out
    };
    let store = Store::open_for_reading(path)?;
    let snapshot = store.snapshot()?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let n = crate::store::export_tables(&snapshot, &chosen, &mut out)?;
    out.flush()?;
    eprintln!("{n} records exported from {}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn soak(path: &std::path::Path, start: u64, count: u64) -> anyhow::Result<ExitCode> {
    let store = Store::open(path)?;
    let base = 1_795_737_600_000;
    let stdout = std::io::stdout();
    for n in start..start.saturating_add(count) {
        let rec = sample::synthetic_passage(n, base);
        store.write(|tx| {
            tx.put_passage(&rec)?;
            let payload = serde_json::to_vec(&rec.passage.id).unwrap_or_default();
            tx.outbox_push(&OutboxMessage::new(
                format!("kakou/soak/lane/{}/passage", rec.passage.lane.id),
                payload,
                rec.created_ms,
            ))?;
            Ok::<_, StoreError>(())
        })?;
        let mut out = stdout.lock();
        writeln!(out, "{}", rec.passage.id)?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

fn import(
    store_path: &std::path::Path,
    file: &std::path::Path,
    kind: Option<RecordKind>,
    dry_run: bool,
    who: &str,
) -> anyhow::Result<ExitCode> {
    // A dry run only reads, so it works beside a running daemon too.
    let store = if dry_run {
        Store::open_for_reading(store_path)?
    } else {
        Store::open(store_path)?
    };
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut stage = "";
    let mut progress = |p: Progress| {
        let (name, done, total) = match p {
            Progress::Reading(d, t) => ("reading", d, t),
            Progress::Validating(d, t) => ("validating", d, t),
            Progress::Applying(d, t) => ("applying", d, t),
        };
        if name != stage {
            stage = name;
            bar.set_message(name);
            bar.set_length(total);
        }
        bar.set_position(done);
    };
    let mut options = ApplyOptions::new(who, now_ms());
    options.dry_run = dry_run;
    let report = store.import_file(file, kind, &options, &mut progress)?;
    bar.finish_and_clear();
    let t = report.totals();
    if !report.rejected.is_empty() {
        for r in &report.rejected {
            eprintln!("rejected: {r}");
        }
        eprintln!(
            "{}: {} rejection(s) in {} record(s); nothing was imported",
            file.display(),
            report.rejected.len(),
            report.records
        );
        return Ok(ExitCode::FAILURE);
    }
    for (k, c) in &report.by_kind {
        println!(
            "{:<14} {:>6} new  {:>6} updated  {:>6} unchanged",
            k.name(),
            c.inserted,
            c.updated,
            c.unchanged
        );
    }
    let verb = if dry_run { "would change" } else { "changed" };
    if report.changed() == 0 {
        println!(
            "{}: nothing to change: all {} records are already in the store",
            file.display(),
            t.unchanged
        );
    } else {
        println!(
            "{}: {verb} {} records ({} new, {} updated), {} unchanged",
            file.display(),
            report.changed(),
            t.inserted,
            t.updated,
            t.unchanged
        );
    }
    Ok(ExitCode::SUCCESS)
}
