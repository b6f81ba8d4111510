//! Replay: recorded passages re-evaluated against another rule set or parameter version, and
//! every outcome that would change. What a rule author runs before publishing a rule set, and
//! what a site runs before switching regions.
//!
//! Reads the store, never writes it. Each passage is evaluated with the readings it was
//! decided on (operators' entries included) and the registrations, documents and control
//! orders as the store holds them now, judged at the passage's own decision time.

use std::collections::BTreeMap;

use kakou_plugin_sdk::model::{CheckResult, Outcome};
use serde::Serialize;

use super::LaneError;
use super::ruleset::RuleSet;
use crate::store::{PassageRecord, Store, StoreLookups};

/// Which parameters a replay decides with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ParameterVersion {
    /// The parameter library as it is now.
    #[default]
    Current,
    /// As it stood when each passage was decided.
    AtDecision,
    /// As it stood at this unix ms.
    At(i64),
}

/// What to replay and how.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Parameter version.
    pub parameters: ParameterVersion,
    /// Parameters forced for the replay (`--set name=value`).
    pub overrides: BTreeMap<String, String>,
    /// Only passages started at or after this unix ms.
    pub from_ms: Option<i64>,
    /// Only passages started before this unix ms.
    pub to_ms: Option<i64>,
    /// Only this lane.
    pub lane: Option<String>,
}

/// A check whose result differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckChange {
    /// Reason code.
    pub code: String,
    /// Result as recorded (none: the check was not made).
    pub before: Option<CheckResult>,
    /// Result on replay (none: the check is not made).
    pub after: Option<CheckResult>,
    /// The replay's message.
    pub message: String,
}

/// A passage whose outcome would change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Passage id.
    pub passage: String,
    /// Lane id.
    pub lane: String,
    /// The rule set that decided it, as recorded.
    pub recorded_by: String,
    /// Outcome as recorded (the rules', before any operator action).
    pub before: Outcome,
    /// Outcome on replay.
    pub after: Outcome,
    /// The checks that differ.
    pub checks: Vec<CheckChange>,
}

/// What a replay found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplayReport {
    /// `name@version` of the rule set replayed.
    pub ruleset: String,
    /// Passages re-evaluated.
    pub passages: u64,
    /// Passages skipped (never decided, cancelled, write-offs).
    pub skipped: u64,
    /// Outcomes that would change.
    pub changes: Vec<Change>,
    /// Counts by `before → after`.
    pub transitions: BTreeMap<String, u64>,
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Release => "release",
        Outcome::Manual => "manual",
        Outcome::Inspect => "inspect",
        Outcome::Refuse => "refuse",
    }
}

/// Re-evaluates the store's decided passages with `ruleset`.
pub fn replay(
    store: &Store,
    ruleset: &RuleSet,
    options: &ReplayOptions,
) -> Result<ReplayReport, LaneError> {
    let snapshot = store.snapshot()?;
    let from = options.from_ms.unwrap_or(i64::MIN);
    let to = options.to_ms.unwrap_or(i64::MAX);
    let records: Vec<PassageRecord> = match &options.lane {
        Some(l) => snapshot.passages_by_lane_between(l, from, to)?,
        None => {
            snapshot.passages_scan(|r| r.passage.started_ms >= from && r.passage.started_ms < to)?
        }
    };
    let mut report = ReplayReport {
        ruleset: ruleset.id(),
        ..Default::default()
    };
    for record in records {
        let Some(recorded) = &record.verdict else {
            report.skipped += 1;
            continue;
        };
        if record.state == crate::store::PassageState::Cancelled {
            report.skipped += 1;
            continue;
        }
        let mut passage = record.passage.clone();
        let recorded_by = passage.attribute("ruleset").unwrap_or("?").to_owned();
        passage.attributes.retain(|s| s.key != "ruleset");
        passage
            .attributes
            .push(kakou_plugin_sdk::model::Setting::new(
                "ruleset",
                ruleset.id(),
            ));
        let mut lookups = ruleset.lookups(StoreLookups::new(store, passage.now_ms)?);
        lookups.overrides = options.overrides.clone();
        lookups.parameters_as_of = match options.parameters {
            ParameterVersion::Current => None,
            ParameterVersion::AtDecision => Some(passage.now_ms),
            ParameterVersion::At(t) => Some(t),
        };
        let lookups = std::sync::Arc::new(lookups);
        let decision = ruleset.evaluate(&passage, lookups.clone());
        if let Some(e) = lookups.take_error() {
            return Err(e.into());
        }
        report.passages += 1;
        let (before, after) = (recorded.outcome, decision.verdict.outcome);
        if before == after {
            continue;
        }
        let mut codes: Vec<&str> = recorded
            .checks
            .iter()
            .chain(&decision.verdict.checks)
            .map(|c| c.code.as_str())
            .collect();
        codes.sort_unstable();
        codes.dedup();
        let result = |checks: &[kakou_plugin_sdk::model::Check], code: &str| {
            checks.iter().find(|c| c.code == code).map(|c| c.result)
        };
        let checks = codes
            .into_iter()
            .filter_map(|code| {
                let b = result(&recorded.checks, code);
                let a = result(&decision.verdict.checks, code);
                (a != b).then(|| CheckChange {
                    code: code.to_owned(),
                    before: b,
                    after: a,
                    message: decision
                        .verdict
                        .checks
                        .iter()
                        .find(|c| c.code == code)
                        .map(|c| c.message.clone())
                        .unwrap_or_default(),
                })
            })
            .collect();
        *report
            .transitions
            .entry(format!(
                "{} → {}",
                outcome_name(before),
                outcome_name(after)
            ))
            .or_default() += 1;
        report.changes.push(Change {
            passage: passage.id.clone(),
            lane: passage.lane.id.clone(),
            recorded_by,
            before,
            after,
            checks,
        });
    }
    Ok(report)
}
