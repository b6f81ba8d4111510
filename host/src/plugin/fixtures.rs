//! Fixture tests of a built component: the plugin's own sample inputs and the outputs they
//! must give, run sandboxed through the real load path (`kakou plugin test`).
//!
//! Files live in the plugin's `fixtures/` folder:
//!
//! - Drivers: `NAME.bin` (raw device bytes) or `NAME.hex` (hex digits, whitespace and `#`
//!   comments ignored), with `NAME.expected.json` holding the readings: a JSON array, JSON
//!   lines, or `{"settings": {…}, "readings": […], "rejected": N}` when the fixture needs device
//!   settings or a count of rejected frames. Each input is fed whole, then in 1-byte and in
//!   7-byte chunks into a fresh decoder, and every way must give exactly the expected readings.
//! - Rules: `passage.json` or `NAME.passage.json` (what `kakou plugin eval` reads: a passage,
//!   or `{"passage": …, "data": …}`), with `NAME.expected.json` (`passage.expected.json` for
//!   `passage.json`): `{"outcome": "inspect", "checks": [{"code": …, "result": …}], "alarms":
//!   […]}`, where `checks` and `alarms` are compared in order when present, a check's
//!   `message` when given; or `{"error": "…"}` for an evaluation that must fail with a message
//!   containing that text.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kakou_plugin_sdk::harness::{Dataset, DatasetView};
use kakou_plugin_sdk::model::{CheckResult, Outcome, Passage, Reading, Setting, Verdict};
use serde::{Deserialize, Serialize};

use super::loader::LoadedPlugin;
use super::{DriverPlugin, RulesPlugin};

/// Folder of a plugin's fixtures.
pub const FOLDER: &str = "fixtures";
/// Chunk sizes each driver fixture is also fed in.
pub const CHUNKS: [usize; 2] = [1, 7];
/// At most this many diff lines are shown for one fixture.
const MAX_DIFF_LINES: usize = 24;

/// Why fixtures could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// The folder cannot be listed.
    #[error("cannot list {}: {source}", path.display())]
    List {
        /// The fixtures folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// There is nothing to run.
    #[error("{} holds no {what}", path.display())]
    Empty {
        /// The fixtures folder.
        path: PathBuf,
        /// What was looked for.
        what: &'static str,
    },
    /// A file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file cannot be written (`--bless`).
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not a passage file.
    #[error("not a passage file (a passage, or {{\"passage\": …, \"data\": …}}): {0}")]
    NotAPassage(Box<FixtureError>),
    /// A file is not what it should be.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line (0: the whole file).
        line: usize,
        /// 1-based column.
        column: usize,
        /// What was expected.
        message: String,
    },
}

/// How one fixture went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixtureOutcome {
    /// Every run gave the expected result; a short summary.
    Pass(String),
    /// A run differed; what differed, readably.
    Mismatch(String),
    /// The expected file was written from this run (`--bless`).
    Blessed(PathBuf),
    /// The fixture could not be run (a missing or malformed file, a failed call).
    Error(String),
}

/// One fixture's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureReport {
    /// The input file.
    pub input: PathBuf,
    /// The expected file.
    pub expected: PathBuf,
    /// How it went.
    pub outcome: FixtureOutcome,
}

impl FixtureReport {
    /// Whether it counts as a pass (a blessed fixture does).
    pub fn passed(&self) -> bool {
        matches!(
            self.outcome,
            FixtureOutcome::Pass(_) | FixtureOutcome::Blessed(_)
        )
    }
}

/// Runs every fixture of a loaded plugin. With `bless`, expected files that are missing or
/// differ are (re)written from what the component does.
pub fn run(plugin: &LoadedPlugin, bless: bool) -> Result<Vec<FixtureReport>, FixtureError> {
    let folder = plugin.manifest().dir().join(FOLDER);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .map_err(|source| FixtureError::List {
            path: folder.clone(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let driver = plugin.clone().into_driver();
    let rules = plugin.clone().into_rules();
    let (stem, what): (fn(&Path) -> Option<&str>, _) = match driver {
        Some(_) => (
            driver_stem,
            "driver fixtures (NAME.bin or NAME.hex, with NAME.expected.json)",
        ),
        None => (
            rules_stem,
            "rules fixtures (passage.json or NAME.passage.json, with NAME.expected.json)",
        ),
    };
    let cases: Vec<(PathBuf, PathBuf)> = files
        .iter()
        .filter_map(|p| stem(p).map(|s| (p.clone(), expected_path(&folder, s))))
        .collect();
    if cases.is_empty() {
        return Err(FixtureError::Empty { path: folder, what });
    }
    let mut reports = Vec::new();
    for (input, expected) in cases {
        let outcome = match (&driver, &rules) {
            (Some(d), _) => run_driver(d, &input, &expected, bless),
            (None, Some(r)) => run_rules(r, &input, &expected, bless),
            (None, None) => Ok(FixtureOutcome::Error(
                "the plugin is neither a driver nor a rule set".into(),
            )),
        }
        .unwrap_or_else(|e| FixtureOutcome::Error(e.to_string()));
        reports.push(FixtureReport {
            input,
            expected,
            outcome,
        });
    }
    Ok(reports)
}

fn expected_path(folder: &Path, stem: &str) -> PathBuf {
    folder.join(format!("{stem}.expected.json"))
}

/// `NAME` of `NAME.bin` / `NAME.hex`.
fn driver_stem(path: &Path) -> Option<&str> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(".bin")
        .or_else(|| name.strip_suffix(".hex"))
        .filter(|s| !s.is_empty())
}

/// `NAME` of `NAME.passage.json`, `passage` of `passage.json`.
fn rules_stem(path: &Path) -> Option<&str> {
    let name = path.file_name()?.to_str()?;
    if name == "passage.json" {
        return Some("passage");
    }
    name.strip_suffix(".passage.json").filter(|s| !s.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Drivers

/// What a driver fixture must give.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriverExpectation {
    /// Device settings to open the decoder with.
    pub settings: Vec<Setting>,
    /// The readings, in order.
    pub readings: Vec<Reading>,
    /// How many rejections, when given.
    pub rejected: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDriverExpectation {
    #[serde(default)]
    settings: std::collections::BTreeMap<String, serde_json::Value>,
    readings: Vec<Reading>,
    rejected: Option<usize>,
}

/// Parses a driver's expected file: a JSON array of readings, JSON lines, one reading, or
/// `{"settings": …, "readings": […], "rejected": N}`.
pub fn parse_driver_expectation(
    path: &Path,
    text: &str,
) -> Result<DriverExpectation, FixtureError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Array(_)) => Ok(DriverExpectation {
            readings: parse_json(path, text)?,
            ..Default::default()
        }),
        Ok(serde_json::Value::Object(o)) if o.contains_key("readings") => {
            let raw: RawDriverExpectation = parse_json(path, text)?;
            let mut settings = Vec::new();
            for (key, value) in raw.settings {
                let value = match value {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    other => {
                        return Err(malformed(
                            path,
                            0,
                            format!(
                                "setting `{key}` is {other}: expected a string, number or boolean"
                            ),
                        ));
                    }
                };
                settings.push(Setting { key, value });
            }
            Ok(DriverExpectation {
                settings,
                readings: raw.readings,
                rejected: raw.rejected,
            })
        }
        Ok(serde_json::Value::Object(_)) => Ok(DriverExpectation {
            readings: vec![parse_json(path, text)?],
            ..Default::default()
        }),
        Ok(_) => Err(malformed(
            path,
            1,
            "expected readings: a JSON array, JSON lines, or {\"readings\": […]}".into(),
        )),
        // Not one JSON value: JSON lines.
        Err(_) => {
            let mut readings = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let r: Reading = serde_json::from_str(line).map_err(|e| {
                    malformed_at(
                        path,
                        i + 1,
                        e.column(),
                        format!("not a reading: {}", short(&e)),
                    )
                })?;
                readings.push(r);
            }
            Ok(DriverExpectation {
                readings,
                ..Default::default()
            })
        }
    }
}

/// Reads a driver fixture's input: raw bytes, or hex text for `.hex` files.
pub fn read_input(path: &Path) -> Result<Vec<u8>, FixtureError> {
    let bytes = std::fs::read(path).map_err(|source| FixtureError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if path.extension().is_some_and(|e| e == "hex") {
        let text = String::from_utf8_lossy(&bytes);
        parse_hex_text(path, &text)
    } else {
        Ok(bytes)
    }
}

fn parse_hex_text(path: &Path, text: &str) -> Result<Vec<u8>, FixtureError> {
    let mut digits = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default();
        for (col, c) in line.char_indices() {
            if c.is_whitespace() {
                continue;
            }
            let d = c.to_digit(16).ok_or_else(|| {
                malformed_at(
                    path,
                    i + 1,
                    line[..col].chars().count() + 1,
                    format!("{c:?} is not a hex digit (a .hex fixture holds hex digits, whitespace and # comments)"),
                )
            })?;
            digits.push((d as u8, i + 1));
        }
    }
    if digits.len() % 2 == 1 {
        let line = digits.last().map_or(1, |d| d.1);
        return Err(malformed_at(
            path,
            line,
            1,
            "an odd number of hex digits: the last byte is missing a digit".into(),
        ));
    }
    Ok(digits.chunks(2).map(|p| (p[0].0 << 4) | p[1].0).collect())
}

fn run_driver(
    driver: &DriverPlugin,
    input_path: &Path,
    expected_path: &Path,
    bless: bool,
) -> Result<FixtureOutcome, FixtureError> {
    let input = read_input(input_path)?;
    let expected = match std::fs::read_to_string(expected_path) {
        Ok(text) => Some(parse_driver_expectation(expected_path, &text)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(FixtureError::Read {
                path: expected_path.to_path_buf(),
                source,
            });
        }
    };
    let settings = expected
        .as_ref()
        .map(|e| e.settings.clone())
        .unwrap_or_default();

    let feed = |chunk: Option<usize>| -> Result<(Vec<Reading>, usize), String> {
        let mut decoder = driver.open(&settings).map_err(|e| e.to_string())?;
        let (mut readings, mut rejected) = (Vec::new(), 0);
        for piece in input.chunks(chunk.unwrap_or(input.len()).max(1)) {
            let out = decoder.feed(piece).map_err(|e| e.to_string())?;
            readings.extend(out.readings);
            rejected += out.rejected.len();
        }
        Ok((readings, rejected))
    };
    let (whole, whole_rejected) = match feed(None) {
        Ok(r) => r,
        Err(e) => return Ok(FixtureOutcome::Error(e)),
    };

    if bless
        && expected
            .as_ref()
            .is_none_or(|e| e.readings != whole || e.rejected.is_some_and(|n| n != whole_rejected))
    {
        let rejected = expected
            .as_ref()
            .and_then(|e| e.rejected)
            .map(|_| whole_rejected);
        let text = render_driver_expectation(&settings, &whole, rejected);
        write(expected_path, &text)?;
        return Ok(FixtureOutcome::Blessed(expected_path.to_path_buf()));
    }
    let Some(expected) = expected else {
        return Ok(FixtureOutcome::Error(format!(
            "no {} (write the readings it must give there, or run with --bless to write what the component gives now)",
            shown(expected_path)
        )));
    };

    let mut runs = vec![("fed whole".to_owned(), whole, whole_rejected)];
    for chunk in CHUNKS {
        match feed(Some(chunk)) {
            Ok((r, j)) => runs.push((format!("fed in {chunk}-byte chunks"), r, j)),
            Err(e) => {
                return Ok(FixtureOutcome::Error(format!(
                    "fed in {chunk}-byte chunks: {e}"
                )));
            }
        }
    }
    for (how, readings, rejected) in &runs {
        if readings != &expected.readings {
            let exp: Vec<String> = expected.readings.iter().map(reading_json).collect();
            let got: Vec<String> = readings.iter().map(reading_json).collect();
            return Ok(FixtureOutcome::Mismatch(format!(
                "{how}: expected {}, got {}\n{}",
                plural(exp.len(), "reading"),
                got.len(),
                diff(&exp, &got)
            )));
        }
        if let Some(n) = expected.rejected
            && n != *rejected
        {
            return Ok(FixtureOutcome::Mismatch(format!(
                "{how}: expected {}, got {rejected}",
                plural(n, "rejection")
            )));
        }
    }
    Ok(FixtureOutcome::Pass(format!(
        "{}, {} ({} bytes fed whole and in {} chunks)",
        plural(expected.readings.len(), "reading"),
        plural(whole_rejected, "rejection"),
        input.len(),
        CHUNKS
            .iter()
            .map(|c| format!("{c}-byte"))
            .collect::<Vec<_>>()
            .join(" and ")
    )))
}

fn reading_json(r: &Reading) -> String {
    serde_json::to_string(r).unwrap_or_else(|e| format!("<{e}>"))
}

/// An expected file in the format the parser reads: a JSON array with one reading per line,
/// or an object when there are settings or a rejection count.
fn render_driver_expectation(
    settings: &[Setting],
    readings: &[Reading],
    rejected: Option<usize>,
) -> String {
    let mut body = String::from("[");
    for (i, r) in readings.iter().enumerate() {
        body.push_str(if i == 0 { "\n  " } else { ",\n  " });
        body.push_str(&reading_json(r));
    }
    body.push_str(if readings.is_empty() { "]" } else { "\n]" });
    if settings.is_empty() && rejected.is_none() {
        return body + "\n";
    }
    let mut out = String::from("{\n");
    if !settings.is_empty() {
        let map: serde_json::Map<String, serde_json::Value> = settings
            .iter()
            .map(|s| (s.key.clone(), serde_json::Value::String(s.value.clone())))
            .collect();
        let _ = writeln!(out, "  \"settings\": {},", serde_json::Value::Object(map));
    }
    if let Some(n) = rejected {
        let _ = writeln!(out, "  \"rejected\": {n},");
    }
    let _ = writeln!(out, "  \"readings\": {}\n}}", body.replace('\n', "\n  "));
    out
}

// ---------------------------------------------------------------------------------------------
// Rules

/// What a rules fixture must give.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RulesExpectation {
    /// The verdict's outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The checks, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<ExpectedCheck>>,
    /// The alarm codes, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<Vec<String>>,
    /// Text the evaluation's error must contain (instead of a verdict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One expected check.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedCheck {
    /// Its code.
    pub code: String,
    /// Its result.
    pub result: CheckResult,
    /// Its exact message, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A passage file: a bare passage, or `{"passage": …, "data": …}`.
pub fn read_passage_file(path: &Path) -> Result<(Passage, Dataset), FixtureError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct WithData {
        passage: Passage,
        #[serde(default)]
        data: Dataset,
    }
    let text = std::fs::read_to_string(path).map_err(|source| FixtureError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value: serde_json::Value = parse_json(path, &text)?;
    let parsed = if value.get("passage").is_some() {
        parse_json::<WithData>(path, &text).map(|w| (w.passage, w.data))
    } else {
        parse_json::<Passage>(path, &text).map(|p| (p, Dataset::default()))
    };
    parsed.map_err(|e| FixtureError::NotAPassage(Box::new(e)))
}

fn run_rules(
    rules: &RulesPlugin,
    input_path: &Path,
    expected_path: &Path,
    bless: bool,
) -> Result<FixtureOutcome, FixtureError> {
    let (passage, data) = read_passage_file(input_path)?;
    let expected: Option<RulesExpectation> = match std::fs::read_to_string(expected_path) {
        Ok(text) => Some(parse_json(expected_path, &text)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(FixtureError::Read {
                path: expected_path.to_path_buf(),
                source,
            });
        }
    };
    if let Some(e) = &expected
        && e.outcome.is_none()
        && e.error.is_none()
    {
        return Err(malformed(
            expected_path,
            0,
            "expected `outcome` (with `checks` and `alarms`) or `error`".into(),
        ));
    }
    let lookups = Arc::new(DatasetView::new(Arc::new(data), passage.now_ms));
    let result = rules.evaluate(&passage, Some(lookups));
    let got = match &result {
        Ok(v) => Ok(v),
        Err(e) => match &e.kind {
            super::CallErrorKind::Refused(m) => Err(m.clone()),
            // A trap, timeout or the like is never an expected result.
            _ => return Ok(FixtureOutcome::Error(e.to_string())),
        },
    };

    if bless {
        let blessed = match &got {
            Ok(v) => RulesExpectation {
                outcome: Some(v.outcome),
                checks: Some(
                    v.checks
                        .iter()
                        .map(|c| ExpectedCheck {
                            code: c.code.clone(),
                            result: c.result,
                            message: None,
                        })
                        .collect(),
                ),
                alarms: Some(v.alarms.iter().map(|a| a.code.clone()).collect()),
                error: None,
            },
            Err(m) => RulesExpectation {
                error: Some(m.clone()),
                ..Default::default()
            },
        };
        if expected
            .as_ref()
            .is_none_or(|e| compare_verdict(e, &got).is_some())
        {
            let text = serde_json::to_string_pretty(&blessed).unwrap_or_default() + "\n";
            write(expected_path, &text)?;
            return Ok(FixtureOutcome::Blessed(expected_path.to_path_buf()));
        }
    }
    let Some(expected) = expected else {
        return Ok(FixtureOutcome::Error(format!(
            "no {} (write the verdict it must give there, or run with --bless to write what the component gives now)",
            shown(expected_path)
        )));
    };
    Ok(match compare_verdict(&expected, &got) {
        Some(diff) => FixtureOutcome::Mismatch(diff),
        None => match &got {
            Ok(v) => FixtureOutcome::Pass(format!(
                "{} with {} and {}",
                json_name(&v.outcome),
                plural(v.checks.len(), "check"),
                plural(v.alarms.len(), "alarm"),
            )),
            Err(m) => FixtureOutcome::Pass(format!("refused as expected: {m}")),
        },
    })
}

/// What differs between the expectation and the result; `None` when they agree.
fn compare_verdict(expected: &RulesExpectation, got: &Result<&Verdict, String>) -> Option<String> {
    let verdict = match (got, &expected.error) {
        (Err(m), Some(want)) if m.contains(want.as_str()) => return None,
        (Err(m), Some(want)) => {
            return Some(format!(
                "expected an error containing {want:?}, got the error {m:?}"
            ));
        }
        (Err(m), None) => return Some(format!("expected a verdict, got the error {m:?}")),
        (Ok(v), Some(want)) => {
            return Some(format!(
                "expected an error containing {want:?}, got the verdict {}",
                json_name(&v.outcome)
            ));
        }
        (Ok(v), None) => v,
    };
    let mut out = String::new();
    if let Some(o) = expected.outcome
        && o != verdict.outcome
    {
        let _ = writeln!(
            out,
            "outcome: expected {}, got {}",
            json_name(&o),
            json_name(&verdict.outcome)
        );
    }
    if let Some(checks) = &expected.checks {
        let show = |code: &str, result: CheckResult, message: Option<&str>| match message {
            Some(m) => format!("{code} {} {m:?}", json_name(&result)),
            None => format!("{code} {}", json_name(&result)),
        };
        let exp: Vec<String> = checks
            .iter()
            .map(|c| show(&c.code, c.result, c.message.as_deref()))
            .collect();
        let got: Vec<String> = verdict
            .checks
            .iter()
            .zip(checks.iter().map(Some).chain(std::iter::repeat(None)))
            .map(|(c, e)| {
                let message = e
                    .and_then(|e| e.message.as_ref())
                    .map(|_| c.message.as_str());
                show(&c.code, c.result, message)
            })
            .collect();
        if exp != got {
            let _ = writeln!(out, "checks:\n{}", diff(&exp, &got));
        }
    }
    if let Some(alarms) = &expected.alarms {
        let got: Vec<String> = verdict.alarms.iter().map(|a| a.code.clone()).collect();
        if alarms != &got {
            let _ = writeln!(out, "alarms:\n{}", diff(alarms, &got));
        }
    }
    (!out.is_empty()).then(|| out.trim_end().to_owned())
}

/// A contract enum's JSON name (`inspect`, `fail`).
fn json_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(e) => format!("<{e}>"),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared

/// A line diff: `- ` lines only expected, `+ ` lines only got, numbered from 1; unchanged
/// lines are left out.
pub fn diff(expected: &[String], got: &[String]) -> String {
    let (n, m) = (expected.len(), got.len());
    let mut lines = Vec::new();
    if n.saturating_mul(m) > 4_000_000 {
        // Too long for a table: compare position by position.
        for i in 0..n.max(m) {
            match (expected.get(i), got.get(i)) {
                (Some(e), Some(g)) if e == g => {}
                (e, g) => {
                    if let Some(e) = e {
                        lines.push(format!("  - {:>3} {e}", i + 1));
                    }
                    if let Some(g) = g {
                        lines.push(format!("  + {:>3} {g}", i + 1));
                    }
                }
            }
        }
    } else {
        // Longest common subsequence, then walk it.
        let mut lcs = vec![vec![0u32; m + 1]; n + 1];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i][j] = if expected[i] == got[j] {
                    lcs[i + 1][j + 1] + 1
                } else {
                    lcs[i + 1][j].max(lcs[i][j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && expected[i] == got[j] {
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
                lines.push(format!("  - {:>3} {}", i + 1, expected[i]));
                i += 1;
            } else {
                lines.push(format!("  + {:>3} {}", j + 1, got[j]));
                j += 1;
            }
        }
    }
    let more = lines.len().saturating_sub(MAX_DIFF_LINES);
    lines.truncate(MAX_DIFF_LINES);
    if more > 0 {
        lines.push(format!("  … and {more} more differing lines"));
    }
    lines.join("\n")
}

/// `fixtures/NAME`: how a fixture file is named in messages.
fn shown(path: &Path) -> String {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    format!("{FOLDER}/{name}")
}

/// `1 reading`, `2 readings`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn write(path: &Path, text: &str) -> Result<(), FixtureError> {
    std::fs::write(path, text).map_err(|source| FixtureError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn malformed(path: &Path, line: usize, message: String) -> FixtureError {
    malformed_at(path, line, usize::from(line > 0), message)
}

fn malformed_at(path: &Path, line: usize, column: usize, message: String) -> FixtureError {
    FixtureError::Malformed {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

/// serde_json's message without its own " at line L column C".
fn short(e: &serde_json::Error) -> String {
    let message = e.to_string();
    message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_owned()
}

/// Parses JSON into `T`, naming the file, line and column of a mistake.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, FixtureError> {
    serde_json::from_str(text).map_err(|e| malformed_at(path, e.line(), e.column(), short(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kakou_plugin_sdk::model::Weight;

    fn weight(kg: f64) -> Reading {
        Weight {
            kg,
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn expected_readings_in_three_shapes() {
        let p = Path::new("f/x.expected.json");
        let array = parse_driver_expectation(
            p,
            "[{\"type\":\"weight\",\"kg\":1},{\"type\":\"weight\",\"kg\":2.5}]",
        )
        .unwrap();
        assert_eq!(array.readings, vec![weight(1.0), weight(2.5)]);
        let lines = parse_driver_expectation(
            p,
            "{\"type\":\"weight\",\"kg\":1}\n\n{\"type\":\"weight\",\"kg\":2.5}\n",
        )
        .unwrap();
        assert_eq!(lines, array);
        let object = parse_driver_expectation(
            p,
            "{\"settings\":{\"format\":\"eq\",\"stable-count\":2},\"readings\":[{\"type\":\"weight\",\"kg\":1}],\"rejected\":3}",
        )
        .unwrap();
        assert_eq!(
            object.settings,
            vec![
                Setting::new("format", "eq"),
                Setting::new("stable-count", "2")
            ]
        );
        assert_eq!(object.rejected, Some(3));
        let one = parse_driver_expectation(p, "{\"type\":\"weight\",\"kg\":1}").unwrap();
        assert_eq!(one.readings, vec![weight(1.0)]);
        let e = parse_driver_expectation(p, "{\"type\":\"weight\"}\n{\"type\":\"nope\"}\n")
            .unwrap_err();
        assert!(e.to_string().starts_with("f/x.expected.json:2:"), "{e}");
        assert!(e.to_string().contains("not a reading"), "{e}");
    }

    #[test]
    fn rendered_expectations_parse_back() {
        let p = Path::new("x.expected.json");
        let readings = vec![weight(1.0), weight(3260.0)];
        let plain = render_driver_expectation(&[], &readings, None);
        assert!(plain.starts_with("[\n  {\"type\":\"weight\""), "{plain}");
        assert_eq!(
            parse_driver_expectation(p, &plain).unwrap().readings,
            readings
        );
        let with = render_driver_expectation(&[Setting::new("format", "eq")], &readings, Some(2));
        let back = parse_driver_expectation(p, &with).unwrap();
        assert_eq!(back.settings, vec![Setting::new("format", "eq")]);
        assert_eq!(back.rejected, Some(2));
        assert_eq!(back.readings, readings);
        let empty = render_driver_expectation(&[], &[], None);
        assert!(
            parse_driver_expectation(p, &empty)
                .unwrap()
                .readings
                .is_empty()
        );
    }

    #[test]
    fn hex_fixtures() {
        let p = Path::new("f/a.hex");
        assert_eq!(
            parse_hex_text(p, "02 2B # STX +\n30 3a\n").unwrap(),
            vec![0x02, 0x2B, 0x30, 0x3A]
        );
        let e = parse_hex_text(p, "02\n2G\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f/a.hex:2:2: 'G' is not a hex digit (a .hex fixture holds hex digits, whitespace and # comments)"
        );
        assert!(
            parse_hex_text(p, "0")
                .unwrap_err()
                .to_string()
                .contains("odd number")
        );
    }

    #[test]
    fn fixture_names() {
        assert_eq!(driver_stem(Path::new("f/frames.bin")), Some("frames"));
        assert_eq!(driver_stem(Path::new("f/a.hex")), Some("a"));
        assert_eq!(driver_stem(Path::new("f/a.expected.json")), None);
        assert_eq!(driver_stem(Path::new("f/.bin")), None);
        assert_eq!(rules_stem(Path::new("f/passage.json")), Some("passage"));
        assert_eq!(rules_stem(Path::new("f/late.passage.json")), Some("late"));
        assert_eq!(rules_stem(Path::new("f/late.expected.json")), None);
    }

    #[test]
    fn diffs_show_what_was_expected_and_what_came() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let d = diff(&s(&["a", "b", "c"]), &s(&["a", "x", "c", "d"]));
        assert_eq!(d, "  -   2 b\n  +   2 x\n  +   4 d");
        assert_eq!(diff(&s(&["a"]), &s(&["a"])), "");
    }

    #[test]
    fn verdicts_are_compared_field_by_field() {
        use kakou_plugin_sdk::model::Check;
        let mut v = Verdict::default();
        v.check(
            Check::new("w.t", CheckResult::Fail, "too heavy"),
            Outcome::Inspect,
        );
        v.alarm("w.m", kakou_plugin_sdk::model::Severity::Warning, "x");
        let exp: RulesExpectation = serde_json::from_str(
            r#"{"outcome":"inspect","checks":[{"code":"w.t","result":"fail"}],"alarms":["w.m"]}"#,
        )
        .unwrap();
        assert_eq!(compare_verdict(&exp, &Ok(&v)), None);
        let exp: RulesExpectation = serde_json::from_str(
            r#"{"outcome":"release","checks":[{"code":"w.t","result":"pass","message":"ok"}]}"#,
        )
        .unwrap();
        let d = compare_verdict(&exp, &Ok(&v)).unwrap();
        assert!(d.contains("outcome: expected release, got inspect"), "{d}");
        assert!(d.contains("-   1 w.t pass \"ok\""), "{d}");
        assert!(d.contains("+   1 w.t fail \"too heavy\""), "{d}");
        let exp = RulesExpectation {
            error: Some("not a number".into()),
            ..Default::default()
        };
        assert_eq!(
            compare_verdict(&exp, &Err("parameter `x` = \"y\" is not a number".into())),
            None
        );
        assert!(compare_verdict(&exp, &Ok(&v)).is_some());
    }
}
