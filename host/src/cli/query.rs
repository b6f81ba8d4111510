//! `kakou query …` (find passages, show one in full) and `kakou stats …` (transit,
//! efficiency, outcomes): the command-line edge over [`crate::query`].
//!
//! Every command opens the store read-only, as `kakou store export` does, so it runs beside a
//! live daemon. Times are read here (dates, RFC 3339, unix ms, in `--utc-offset`) and printed
//! here; the library works in unix ms.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use kakou_plugin_sdk::model::{Outcome, ReadingValue};
use serde::Serialize;

use crate::query::{
    Access, PassageQuery, PassageSummary, TimeRange, TimeSpec, TransitGrouping, UtcOffset,
    efficiency, format_ms, outcome_name, outcomes, parse_outcome, parse_state, state_name,
    transit_stats,
};
use crate::store::{PassageRecord, PassageState, Store};

/// The store to read.
#[derive(Debug, Clone, Args)]
pub struct StoreArg {
    /// The store file (opened read-only: works beside a running daemon).
    #[arg(long, env = "KAKOU_STORE")]
    store: PathBuf,
}

impl StoreArg {
    fn open(&self) -> anyhow::Result<Store> {
        if !self.store.exists() {
            bail!(
                "{}: no such store file (give the daemon's store, e.g. var/kakou.redb)",
                self.store.display()
            );
        }
        Ok(Store::open_for_reading(&self.store)?)
    }
}

/// The UTC offset times are read and printed in.
#[derive(Debug, Clone, Args)]
pub struct OffsetArg {
    /// UTC offset for dates given without one, for days and for the times printed
    /// (e.g. +08:00).
    #[arg(
        long,
        env = "KAKOU_UTC_OFFSET",
        default_value = "+00:00",
        value_parser = parse_offset,
        allow_hyphen_values = true
    )]
    utc_offset: UtcOffset,
}

/// A range of passage start times.
#[derive(Debug, Clone, Args)]
pub struct RangeArgs {
    /// Passages that started at or after this time: a date (2026-11-27), an RFC 3339 time
    /// (2026-11-27T08:00:00+08:00) or unix milliseconds.
    #[arg(long, value_parser = parse_time)]
    from: Option<TimeSpec>,
    /// Passages that started before this time; a date includes that whole day.
    #[arg(long, value_parser = parse_time)]
    to: Option<TimeSpec>,
    #[command(flatten)]
    offset: OffsetArg,
}

impl RangeArgs {
    fn offset(&self) -> UtcOffset {
        self.offset.utc_offset
    }

    fn range(&self) -> anyhow::Result<TimeRange> {
        let off = self.offset();
        let from = self.from.map(|t| t.start_ms(off));
        let to = self.to.map(|t| t.end_ms(off));
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            bail!(
                "--from ({}) is not before --to ({}, exclusive): the range is empty",
                format_ms(f, off),
                format_ms(t, off)
            );
        }
        Ok(TimeRange::new(from, to)?)
    }
}

fn parse_time(s: &str) -> Result<TimeSpec, String> {
    TimeSpec::parse(s).map_err(|e| e.to_string())
}

fn parse_offset(s: &str) -> Result<UtcOffset, String> {
    UtcOffset::parse(s).map_err(|e| e.to_string())
}

fn parse_outcome_arg(s: &str) -> Result<Outcome, String> {
    parse_outcome(s).map_err(|e| e.to_string())
}

fn parse_state_arg(s: &str) -> Result<PassageState, String> {
    parse_state(s).map_err(|e| e.to_string())
}

/// Query commands.
#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// Find passages: by container, plate, station, document kind and number, lane, time,
    /// outcome and state, in any mix; newest first.
    ///
    /// Prints a table (time, id, lane, plate, containers, outcome, state, decided by), or
    /// with --json one passage record per line.
    Passages(PassagesArgs),
    /// Show one passage in full: readings with their source and superseded marks, checks
    /// with results and reasons, alarms, operator actions.
    Passage {
        #[command(flatten)]
        store: StoreArg,
        /// The passage id.
        id: String,
        #[command(flatten)]
        offset: OffsetArg,
        /// Print the record as JSON instead.
        #[arg(long)]
        json: bool,
    },
}

/// What `kakou query passages` looks for.
#[derive(Debug, Args)]
pub struct PassagesArgs {
    #[command(flatten)]
    store: StoreArg,
    /// A container carried (ISO 6346; spaces and case do not matter).
    #[arg(long)]
    container: Option<String>,
    /// A plate: the plate read, or the registered plate the truck was resolved to.
    #[arg(long)]
    plate: Option<String>,
    /// The lane's station / yard code.
    #[arg(long)]
    station: Option<String>,
    /// A document kind presented or matched against (transit-release, local-clearance, …).
    #[arg(long = "doc-type", value_name = "KIND")]
    doc_type: Option<String>,
    /// A document number presented or matched against.
    #[arg(long = "doc-number", value_name = "NUMBER")]
    doc_number: Option<String>,
    /// The lane id.
    #[arg(long)]
    lane: Option<String>,
    #[command(flatten)]
    range: RangeArgs,
    /// The final outcome: release, manual, inspect or refuse.
    #[arg(long, value_parser = parse_outcome_arg)]
    outcome: Option<Outcome>,
    /// The state: pending, decided, manual, inspection, inspected, closed or cancelled.
    #[arg(long, value_parser = parse_state_arg)]
    state: Option<PassageState>,
    /// At most this many passages, the newest (0: no limit).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// One passage record per line, as JSON.
    #[arg(long)]
    json: bool,
}

/// Statistics commands.
#[derive(Debug, Subcommand)]
pub enum StatsCommand {
    /// Transit statistics: passages by document kind, by station, or both.
    ///
    /// Each passage counts once per document kind it presented or was matched against;
    /// cancelled passages are left out. DOCUMENTS counts distinct document numbers.
    Transit {
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        range: RangeArgs,
        /// Group by document type, by station, or both.
        #[arg(long, value_enum, default_value_t = By::Type)]
        by: By,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Recognition rate per device and manual-intervention ratio per lane per day.
    Efficiency {
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        range: RangeArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Outcomes per lane per day, and the passages waiting in inspection and for an
    /// operator.
    Outcomes {
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        range: RangeArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Grouping of `kakou stats transit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum By {
    /// By document type (also `kind`).
    #[value(alias = "kind")]
    Type,
    /// By station.
    Station,
    /// By document type and station.
    Both,
}

impl QueryCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            QueryCommand::Passages(args) => passages(args),
            QueryCommand::Passage {
                store,
                id,
                offset,
                json,
            } => passage(&store, &id, offset.utc_offset, json),
        }
    }
}

impl StatsCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            StatsCommand::Transit {
                store,
                range,
                by,
                json,
            } => transit(&store, &range, by, json),
            StatsCommand::Efficiency { store, range, json } => efficiency_cmd(&store, &range, json),
            StatsCommand::Outcomes { store, range, json } => outcomes_cmd(&store, &range, json),
        }
    }
}

fn transit(store: &StoreArg, range: &RangeArgs, by: By, json: bool) -> anyhow::Result<ExitCode> {
    let by = match by {
        By::Type => TransitGrouping::Kind,
        By::Station => TransitGrouping::Station,
        By::Both => TransitGrouping::Both,
    };
    let report = transit_stats(&store.open()?.snapshot()?, range.range()?, by)?;
    if json {
        return print_json(&report);
    }
    let mut out = String::new();
    line(
        &mut out,
        format!("range     {}", range_text(report.range, range.offset())),
    );
    line(
        &mut out,
        format!(
            "passages  {} ({} with documents); {} cancelled, not counted",
            report.passages, report.with_documents, report.cancelled
        ),
    );
    let mut head = Vec::new();
    if by != TransitGrouping::Station {
        head.push(("TYPE", false));
    }
    if by != TransitGrouping::Kind {
        head.push(("STATION", false));
    }
    head.extend([("PASSAGES", true), ("DOCUMENTS", true)]);
    let rows = report
        .rows
        .iter()
        .map(|r| {
            let mut row: Vec<String> = Vec::new();
            row.extend(r.kind.clone());
            row.extend(r.station.clone());
            row.extend([r.passages.to_string(), r.documents.to_string()]);
            row
        })
        .collect();
    out.push_str(&table(&head, rows, ""));
    print(&out)
}

fn efficiency_cmd(store: &StoreArg, range: &RangeArgs, json: bool) -> anyhow::Result<ExitCode> {
    let off = range.offset();
    let report = efficiency(&store.open()?.snapshot()?, range.range()?, off)?;
    if json {
        return print_json(&report);
    }
    let mut out = String::new();
    line(
        &mut out,
        format!("range     {}", range_text(report.range, off)),
    );
    line(&mut out, "recognition rate per device".into());
    let rows = report
        .recognition
        .iter()
        .map(|r| {
            vec![
                r.lane.clone(),
                r.device.clone(),
                r.kind.clone(),
                r.needed.to_string(),
                r.read.to_string(),
                r.used.to_string(),
                r.keyed.to_string(),
                percent(r.rate),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            ("LANE", false),
            ("DEVICE", false),
            ("KIND", false),
            ("NEEDED", true),
            ("READ", true),
            ("USED", true),
            ("KEYED", true),
            ("RATE", true),
        ],
        rows,
        "  ",
    ));
    line(
        &mut out,
        format!("manual-intervention ratio per lane per day (UTC{off})"),
    );
    let mut rows: Vec<Vec<String>> = report
        .manual
        .iter()
        .map(|m| {
            vec![
                m.lane.clone(),
                m.day.clone(),
                m.passages.to_string(),
                m.manual.to_string(),
                percent(m.ratio),
            ]
        })
        .collect();
    let all = &report.manual_overall;
    rows.push(vec![
        "all".into(),
        String::new(),
        all.passages.to_string(),
        all.manual.to_string(),
        percent(all.ratio),
    ]);
    out.push_str(&table(
        &[
            ("LANE", false),
            ("DAY", false),
            ("PASSAGES", true),
            ("MANUAL", true),
            ("RATIO", true),
        ],
        rows,
        "  ",
    ));
    print(&out)
}

fn outcomes_cmd(store: &StoreArg, range: &RangeArgs, json: bool) -> anyhow::Result<ExitCode> {
    let off = range.offset();
    let report = outcomes(&store.open()?.snapshot()?, range.range()?, off)?;
    if json {
        return print_json(&report);
    }
    let mut out = String::new();
    line(
        &mut out,
        format!("range     {}", range_text(report.range, off)),
    );
    line(&mut out, format!("outcomes per lane per day (UTC{off})"));
    let mut sum = [0u64; 6];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for r in &report.rows {
        let n = [
            r.release,
            r.manual,
            r.inspect,
            r.refuse,
            r.undecided,
            r.total,
        ];
        for (s, v) in sum.iter_mut().zip(n) {
            *s += v;
        }
        let mut row = vec![r.lane.clone(), r.day.clone()];
        row.extend(n.map(|v| v.to_string()));
        rows.push(row);
    }
    let mut all = vec!["all".to_owned(), String::new()];
    all.extend(sum.map(|v| v.to_string()));
    rows.push(all);
    out.push_str(&table(
        &[
            ("LANE", false),
            ("DAY", false),
            ("RELEASE", true),
            ("MANUAL", true),
            ("INSPECT", true),
            ("REFUSE", true),
            ("UNDECIDED", true),
            ("TOTAL", true),
        ],
        rows,
        "  ",
    ));
    for (name, queue) in [
        ("inspection queue", &report.inspection_queue),
        ("manual queue", &report.manual_queue),
    ] {
        if queue.is_empty() {
            line(&mut out, format!("{name}: empty"));
            continue;
        }
        line(
            &mut out,
            format!("{name}: {}", count(queue.len(), "passage")),
        );
        let rows = queue
            .iter()
            .map(|p| {
                vec![
                    format_ms(p.started_ms, off),
                    p.id.clone(),
                    p.lane.clone(),
                    dash(p.plate.clone().unwrap_or_default()),
                    dash(p.containers.join(" ")),
                    dash(p.open_checks.join(" ")),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                ("TIME", false),
                ("ID", false),
                ("LANE", false),
                ("PLATE", false),
                ("CONTAINERS", false),
                ("OPEN CHECKS", false),
            ],
            rows,
            "  ",
        ));
    }
    print(&out)
}

fn passages(a: PassagesArgs) -> anyhow::Result<ExitCode> {
    let query = PassageQuery {
        container: a.container,
        plate: a.plate,
        station: a.station,
        document_kind: a.doc_type,
        document_number: a.doc_number,
        lane: a.lane,
        range: a.range.range()?,
        outcome: a.outcome,
        state: a.state,
        limit: (a.limit > 0).then_some(a.limit),
    };
    let off = a.range.offset();
    let found = query.run(&a.store.open()?.snapshot()?)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if a.json {
        for rec in &found.passages {
            serde_json::to_writer(&mut out, rec)?;
            writeln!(out)?;
        }
    } else if !found.passages.is_empty() {
        let rows = found
            .passages
            .iter()
            .map(|rec| {
                let s = PassageSummary::from(rec);
                vec![
                    format_ms(s.started_ms, off),
                    s.id,
                    s.lane,
                    dash(s.plate.unwrap_or_default()),
                    dash(s.containers.join(" ")),
                    s.outcome.map_or("-", outcome_name).to_owned(),
                    state_name(s.state).to_owned(),
                    dash(s.decided_by.join(" ")),
                ]
            })
            .collect();
        out.write_all(
            table(
                &[
                    ("TIME", false),
                    ("ID", false),
                    ("LANE", false),
                    ("PLATE", false),
                    ("CONTAINERS", false),
                    ("OUTCOME", false),
                    ("STATE", false),
                    ("DECIDED BY", false),
                ],
                rows,
                "",
            )
            .as_bytes(),
        )?;
    }
    out.flush()?;
    let via = match &found.plan.access {
        Access::Document { .. } => "the document index".to_owned(),
        Access::Index { index, value } => {
            format!(
                "the {} index ({value})",
                format!("{index:?}").to_lowercase()
            )
        }
        Access::EveryLane => "every lane's time index".to_owned(),
    };
    eprintln!(
        "{} (from {} candidates via {via}; times UTC{off})",
        count(found.passages.len(), "passage"),
        found.plan.candidates
    );
    if found.more {
        eprintln!("more passages match: raise --limit (0: no limit) or narrow the query");
    }
    Ok(ExitCode::SUCCESS)
}

fn passage(store: &StoreArg, id: &str, off: UtcOffset, json: bool) -> anyhow::Result<ExitCode> {
    let rec = store
        .open()?
        .passage(id)?
        .with_context(|| format!("no passage {id:?} in {}", store.store.display()))?;
    if json {
        return print_json(&rec);
    }
    print(&describe(&rec, off))
}

/// One passage in full, for a person.
fn describe(rec: &PassageRecord, off: UtcOffset) -> String {
    let p = &rec.passage;
    let mut out = String::new();
    let mut field = |name: &str, value: String| line(&mut out, format!("{name:<12}{value}"));
    field("passage", p.id.clone());
    field(
        "site",
        format!(
            "{} (office {})",
            dash(p.site.clone()),
            dash(p.office.clone())
        ),
    );
    field(
        "lane",
        format!(
            "{} (category {}, {}, {} cargo), station {}",
            p.lane.id,
            name(&p.lane.category).to_uppercase(),
            name(&p.lane.direction),
            name(&p.lane.cargo),
            dash(p.lane.station.clone())
        ),
    );
    field(
        "started",
        format!("{} (UTC{off})", format_ms(p.started_ms, off)),
    );
    field("decided at", format_ms(p.now_ms, off));
    let verdict = rec.verdict.as_ref().map(|v| outcome_name(v.outcome));
    field(
        "outcome",
        match (rec.outcome, verdict) {
            (None, _) => "none yet".to_owned(),
            (Some(o), Some(v)) if outcome_name(o) != v => {
                format!("{} (the rules said {v})", outcome_name(o))
            }
            (Some(o), _) => outcome_name(o).to_owned(),
        },
    );
    field("state", state_name(rec.state).to_owned());
    field(
        "decided by",
        dash(
            rec.decided_by
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
    );
    if let Some(v) = &rec.vehicle {
        field("vehicle", v.clone());
    }
    let mut docs: Vec<String> = p
        .documents()
        .map(|d| format!("{} {} (presented)", d.kind, d.number))
        .collect();
    docs.extend(
        rec.documents
            .iter()
            .map(|d| format!("{} {} (matched)", d.kind, d.number)),
    );
    field("documents", dash(docs.join(", ")));
    if !p.attributes.is_empty() {
        let attrs: Vec<String> = p
            .attributes
            .iter()
            .map(|s| format!("{}={}", s.key, s.value))
            .collect();
        field("attributes", attrs.join(", "));
    }
    field(
        "record",
        format!(
            "created {}, updated {}",
            format_ms(rec.created_ms, off),
            format_ms(rec.updated_ms, off)
        ),
    );

    let rows = p
        .observations
        .iter()
        .map(|o| {
            let dt = o.at_ms - p.started_ms;
            let sign = if dt < 0 { "-" } else { "+" };
            let dt = dt.unsigned_abs();
            vec![
                format!("{sign}{}.{:03}s", dt / 1000, dt % 1000),
                o.device.clone(),
                match &o.operator {
                    Some(op) if *op != o.device => format!("{} by {op}", name(&o.source)),
                    _ => name(&o.source),
                },
                o.reading.value.kind().to_owned(),
                reading_text(&o.reading.value),
                if o.superseded { "superseded" } else { "" }.to_owned(),
            ]
        })
        .collect();
    section(
        &mut out,
        "readings",
        &[
            ("AT", true),
            ("DEVICE", false),
            ("SOURCE", false),
            ("KIND", false),
            ("VALUE", false),
            ("", false),
        ],
        rows,
    );

    let checks = rec
        .verdict
        .iter()
        .flat_map(|v| &v.checks)
        .collect::<Vec<_>>();
    let rows = checks
        .iter()
        .map(|c| {
            vec![
                name(&c.result),
                c.code.clone(),
                c.subject.clone().unwrap_or_default(),
                c.message.clone(),
            ]
        })
        .collect();
    section(
        &mut out,
        "checks",
        &[
            ("RESULT", false),
            ("CODE", false),
            ("SUBJECT", false),
            ("REASON", false),
        ],
        rows,
    );
    let alarms = rec
        .verdict
        .iter()
        .flat_map(|v| &v.alarms)
        .collect::<Vec<_>>();
    let rows = alarms
        .iter()
        .map(|a| vec![name(&a.severity), a.code.clone(), a.message.clone()])
        .collect();
    section(
        &mut out,
        "alarms",
        &[("SEVERITY", false), ("CODE", false), ("MESSAGE", false)],
        rows,
    );
    let rows = rec
        .manual_actions
        .iter()
        .map(|m| {
            vec![
                format_ms(m.at_ms, off),
                m.who.clone(),
                m.action.clone(),
                m.note.clone().unwrap_or_default(),
            ]
        })
        .collect();
    section(
        &mut out,
        "manual actions",
        &[
            ("TIME", false),
            ("WHO", false),
            ("ACTION", false),
            ("NOTE", false),
        ],
        rows,
    );
    out
}

/// A titled, indented table: `title (n)` and the rows, or `title: none`.
fn section(out: &mut String, title: &str, head: &[(&str, bool)], rows: Vec<Vec<String>>) {
    if rows.is_empty() {
        line(out, format!("{title}: none"));
    } else {
        line(out, format!("{title} ({})", rows.len()));
        out.push_str(&table(head, rows, "  "));
    }
}

/// What a reading says, in a few words.
fn reading_text(v: &ReadingValue) -> String {
    match v {
        ReadingValue::Weight(w) => {
            let mut s = format!("{} kg {}", w.kg, name(&w.kind));
            s.push_str(if w.stable { ", stable" } else { ", unstable" });
            if let Some(t) = w.tare_kg {
                s.push_str(&format!(", tare {t} kg"));
            }
            if w.out_of_range {
                s.push_str(", out of range");
            }
            s
        }
        ReadingValue::Plate(p) => format!("{} {} {}%", p.text, name(&p.colour), p.confidence),
        ReadingValue::Tag(t) => match t.rssi_dbm {
            Some(r) => format!("{} antenna {} {r} dBm", t.epc, t.antenna),
            None => format!("{} antenna {}", t.epc, t.antenna),
        },
        ReadingValue::Container(c) => format!(
            "{} {} {} {}%",
            c.number,
            c.iso_type.as_deref().unwrap_or("-"),
            name(&c.position),
            c.confidence
        ),
        ReadingValue::Card(c) => format!("{} {}", c.uid, name(&c.kind)),
        ReadingValue::Position(p) => format!(
            "{:.5},{:.5}{}",
            p.lat,
            p.lon,
            if p.valid { "" } else { " (no fix)" }
        ),
        ReadingValue::Seal(s) => format!("{} {}", s.id, name(&s.state)),
        ReadingValue::Presence(p) => {
            format!("{} {}", p.zone, if p.present { "present" } else { "clear" })
        }
        ReadingValue::Status(s) => format!("{} {} {}", name(&s.level), s.code, s.message),
        ReadingValue::Document(d) => format!("{} {}", d.kind, d.number),
        ReadingValue::Raw(r) => format!("{} ({} bytes)", r.kind, r.data.len()),
    }
}

/// A model enum's snake_case name, as it is serialised.
fn name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "?".to_owned(),
    }
}

fn dash(s: String) -> String {
    if s.is_empty() { "-".to_owned() } else { s }
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn percent(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

fn range_text(r: TimeRange, off: UtcOffset) -> String {
    match (r.from_ms, r.to_ms) {
        (None, None) => "all passages".to_owned(),
        (Some(f), None) => format!("started from {} (UTC{off})", format_ms(f, off)),
        (None, Some(t)) => format!("started before {} (UTC{off})", format_ms(t, off)),
        (Some(f), Some(t)) => format!(
            "started from {} to {}, end excluded (UTC{off})",
            format_ms(f, off),
            format_ms(t, off)
        ),
    }
}

fn line(out: &mut String, text: String) {
    out.push_str(&text);
    out.push('\n');
}

fn print(text: &str) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<ExitCode> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    print(&text)
}

/// Columns as wide as their widest cell (CJK characters take two columns); `(title,
/// right-aligned)` per column; no trailing spaces.
fn table(head: &[(&str, bool)], rows: Vec<Vec<String>>, indent: &str) -> String {
    let titles: Vec<String> = head.iter().map(|(t, _)| (*t).to_owned()).collect();
    let all: Vec<&Vec<String>> = std::iter::once(&titles).chain(rows.iter()).collect();
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            all.iter()
                .map(|r| r.get(i).map_or(0, |c| width(c)))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in all {
        let mut text = indent.to_owned();
        for (i, (w, (_, right))) in widths.iter().zip(head).enumerate() {
            let cell = row.get(i).map_or("", String::as_str);
            let pad = " ".repeat(w.saturating_sub(width(cell)));
            if i > 0 {
                text.push_str("  ");
            }
            if *right {
                text.push_str(&pad);
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&pad);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// Terminal columns a string takes: two for East Asian wide characters.
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let wide = matches!(u32::from(c),
                0x1100..=0x115F
                | 0x2E80..=0x303E
                | 0x3041..=0x33FF
                | 0x3400..=0x4DBF
                | 0x4E00..=0x9FFF
                | 0xA000..=0xA4CF
                | 0xAC00..=0xD7A3
                | 0xF900..=0xFAFF
                | 0xFE30..=0xFE4F
                | 0xFF00..=0xFF60
                | 0xFFE0..=0xFFE6
                | 0x20000..=0x3FFFD);
            if wide { 2 } else { 1 }
        })
        .sum()
}
