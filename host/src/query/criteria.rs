//! What a passage query asks for, and the names of outcomes and states as users type them.

use kakou_plugin_sdk::model::Outcome;
use kakou_plugin_sdk::proto::{iso6346, plate};
use serde::{Deserialize, Serialize};

use super::{QueryError, TimeRange};
use crate::store::{PassageRecord, PassageState, document_kind_key};

/// The four outcomes, least severe first.
pub const OUTCOMES: [Outcome; 4] = [
    Outcome::Release,
    Outcome::Manual,
    Outcome::Inspect,
    Outcome::Refuse,
];

/// An outcome's name: `release`, `manual`, `inspect`, `refuse`.
pub fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Release => "release",
        Outcome::Manual => "manual",
        Outcome::Inspect => "inspect",
        Outcome::Refuse => "refuse",
    }
}

/// A passage state's name: `pending`, `decided`, `manual`, `inspection`, `inspected`,
/// `closed`, `cancelled`.
pub fn state_name(state: PassageState) -> &'static str {
    match state {
        PassageState::Pending => "pending",
        PassageState::Decided => "decided",
        PassageState::Manual => "manual",
        PassageState::Inspection => "inspection",
        PassageState::Inspected => "inspected",
        PassageState::Closed => "closed",
        PassageState::Cancelled => "cancelled",
    }
}

/// Reads an outcome name, any case.
pub fn parse_outcome(text: &str) -> Result<Outcome, QueryError> {
    let t = text.trim().to_lowercase();
    OUTCOMES
        .into_iter()
        .find(|o| outcome_name(*o) == t)
        .ok_or_else(|| QueryError::UnknownOutcome {
            given: text.to_owned(),
        })
}

/// Reads a passage state name, any case.
pub fn parse_state(text: &str) -> Result<PassageState, QueryError> {
    let t = text.trim().to_lowercase();
    PassageState::ALL
        .into_iter()
        .find(|s| state_name(*s) == t)
        .ok_or_else(|| QueryError::UnknownState {
            given: text.to_owned(),
        })
}

/// A query over recorded passages: every criterion given must hold (an empty query matches
/// every passage). Values are compared as the store indexes them: container numbers and
/// plates normalised, document kinds with `-` and `_` alike and in any case, codes trimmed.
///
/// Answered newest first by [`PassageQuery::run`] (see [`find_passages`](super::find_passages)).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PassageQuery {
    /// A container carried (ISO 6346).
    pub container: Option<String>,
    /// A plate: the plate read, or the registered plate the lane resolved the truck to.
    pub plate: Option<String>,
    /// The lane's station / yard code.
    pub station: Option<String>,
    /// A document kind presented or matched against (`transit-release` …).
    pub document_kind: Option<String>,
    /// A document number presented or matched against; with `document_kind`, both must
    /// name the same document.
    pub document_number: Option<String>,
    /// The lane id.
    pub lane: Option<String>,
    /// When the passage started.
    pub range: TimeRange,
    /// The final outcome.
    pub outcome: Option<Outcome>,
    /// The life-cycle state.
    pub state: Option<PassageState>,
    /// At most this many passages (the newest); `None`: all.
    pub limit: Option<usize>,
}

impl PassageQuery {
    /// Whether a record meets every criterion (the limit aside).
    pub fn matches(&self, rec: &PassageRecord) -> bool {
        let keys = rec.keys();
        if let Some(c) = &self.container
            && !keys.containers.contains(&iso6346::normalize(c))
        {
            return false;
        }
        if let Some(p) = &self.plate
            && !keys.plates.contains(&plate::normalize(p))
        {
            return false;
        }
        if let Some(s) = &self.station
            && keys.station.as_deref() != Some(s.trim())
        {
            return false;
        }
        if self.document_kind.is_some() || self.document_number.is_some() {
            let kind = self.document_kind.as_deref().map(document_kind_key);
            let number = self.document_number.as_deref().map(str::trim);
            let named = keys.documents.iter().any(|(k, n)| {
                kind.as_deref().is_none_or(|kind| kind == k) && number.is_none_or(|num| num == n)
            });
            if !named {
                return false;
            }
        }
        if let Some(l) = &self.lane
            && keys.lane != l.trim()
        {
            return false;
        }
        if !self.range.contains(rec.passage.started_ms) {
            return false;
        }
        if self.outcome.is_some() && rec.outcome != self.outcome {
            return false;
        }
        self.state.is_none_or(|s| rec.state == s)
    }
}
