//! Queries over the bus (`kakou/{site}/query`): the same passage queries and statistics as
//! `kakou query` and `kakou stats`, and the stored alarms (`kakou alarm list`), answered on the
//! requester's reply topic.

use serde::{Deserialize, Serialize};

use crate::query::{
    PassageQuery, TimeRange, TransitGrouping, UtcOffset, efficiency, find_passages, outcomes,
    transit_stats,
};
use crate::store::Store;

/// What is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "query", rename_all = "kebab-case")]
pub enum QueryKind {
    /// Passages matching criteria (container, plate, station, document, lane, time, outcome,
    /// state, limit).
    Passages {
        /// The criteria.
        criteria: PassageQuery,
    },
    /// One passage in full.
    Passage {
        /// Passage id.
        passage: String,
    },
    /// Transit counts by document kind, station, or both.
    Transit {
        /// Passages started in this range.
        #[serde(default)]
        range: TimeRange,
        /// `kind`, `station` or `both` (default).
        #[serde(default)]
        by: Option<String>,
    },
    /// Recognition rate per device, manual-intervention ratio per lane per day.
    Efficiency {
        /// Passages started in this range.
        #[serde(default)]
        range: TimeRange,
        /// Days are counted in this offset from UTC, in minutes (default 0).
        #[serde(default)]
        utc_offset_minutes: i32,
    },
    /// The outbox: every message not yet delivered with its stage, attempts and last error
    /// (answered by the daemon's publisher, not the store).
    Outbox,
    /// Stored alarms: those not cleared (`open`), or those first raised in `range`.
    Alarms {
        /// Only the alarms not cleared, whenever raised.
        #[serde(default)]
        open: bool,
        /// Otherwise, alarms first raised in this range.
        #[serde(default)]
        range: TimeRange,
    },
    /// Outcome counts per lane per day, and the inspection and manual queues.
    Outcomes {
        /// Passages started in this range.
        #[serde(default)]
        range: TimeRange,
        /// Days are counted in this offset from UTC, in minutes (default 0).
        #[serde(default)]
        utc_offset_minutes: i32,
    },
}

/// A query message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryRequest {
    /// What is asked.
    #[serde(flatten)]
    pub kind: QueryKind,
    /// Where the answer goes.
    pub reply_to: String,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryReply {
    /// The request's message id.
    pub request: String,
    /// Answered.
    pub ok: bool,
    /// Why not, when not.
    pub message: String,
    /// The result (the JSON of the report or the passages).
    pub result: serde_json::Value,
}

/// Answers a query from the store.
pub fn answer(store: &Store, kind: &QueryKind) -> Result<serde_json::Value, String> {
    let json = |v: Result<serde_json::Value, serde_json::Error>| v.map_err(|e| e.to_string());
    match kind {
        QueryKind::Outbox => {
            Err("the outbox is answered by the running daemon, not the store".into())
        }
        QueryKind::Passages { criteria } => {
            let found = find_passages(store, criteria).map_err(|e| e.to_string())?;
            json(Ok(serde_json::json!({
                "passages": found.passages,
                "more": found.more,
            })))
        }
        QueryKind::Alarms { open, range } => {
            let snap = store.snapshot().map_err(|e| e.to_string())?;
            json(serde_json::to_value(
                stored_alarms(&snap, *open, *range).map_err(|e| e.to_string())?,
            ))
        }
        QueryKind::Passage { passage } => match store.passage(passage) {
            Ok(Some(r)) => json(serde_json::to_value(r)),
            Ok(None) => Err(format!("no passage {passage:?}")),
            Err(e) => Err(e.to_string()),
        },
        QueryKind::Transit { range, by } => {
            let by = match by.as_deref() {
                None | Some("both") => TransitGrouping::Both,
                Some("kind") => TransitGrouping::Kind,
                Some("station") => TransitGrouping::Station,
                Some(other) => {
                    return Err(format!(
                        "`by` = {other:?}: expected \"kind\", \"station\" or \"both\""
                    ));
                }
            };
            let snap = store.snapshot().map_err(|e| e.to_string())?;
            let report = transit_stats(&snap.view(), *range, by).map_err(|e| e.to_string())?;
            json(serde_json::to_value(report))
        }
        QueryKind::Efficiency {
            range,
            utc_offset_minutes,
        }
        | QueryKind::Outcomes {
            range,
            utc_offset_minutes,
        } => {
            let offset = UtcOffset::from_minutes(*utc_offset_minutes).map_err(|e| e.to_string())?;
            let snap = store.snapshot().map_err(|e| e.to_string())?;
            if matches!(kind, QueryKind::Efficiency { .. }) {
                let report = efficiency(&snap.view(), *range, offset).map_err(|e| e.to_string())?;
                json(serde_json::to_value(report))
            } else {
                let report = outcomes(&snap.view(), *range, offset).map_err(|e| e.to_string())?;
                json(serde_json::to_value(report))
            }
        }
    }
}

/// The alarms `kakou alarm list` shows: those not cleared, or those first raised in `range`.
pub fn stored_alarms(
    snap: &crate::store::Snapshot,
    open: bool,
    range: TimeRange,
) -> Result<Vec<crate::store::AlarmRecord>, crate::store::StoreError> {
    if open {
        snap.open_alarms()
    } else {
        let to = range.to_ms.map_or(i64::MAX, |t| t.saturating_sub(1));
        snap.alarms_between(range.from_ms.unwrap_or(i64::MIN), to)
    }
}
