//! Answering a [`PassageQuery`]: choose the index that narrows it most, read the candidates
//! newest first, keep those that meet every criterion.

use kakou_plugin_sdk::model::{CheckResult, Outcome};
use serde::Serialize;

use super::{PassageQuery, QueryError};
use crate::store::{PassageIndex, PassageRecord, PassageState, Reader, Store};

/// Candidate (started_ms, id) pairs, oldest first.
type Ids = Vec<(i64, String)>;

/// How a query's candidates were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The document index (`passages_by_document`), by kind and/or number.
    Document {
        /// Kind, as given.
        kind: Option<String>,
        /// Number, as given.
        number: Option<String>,
    },
    /// A (value, time) passage index: container, plate, station or lane.
    Index {
        /// Which index.
        index: PassageIndex,
        /// The value looked up.
        value: String,
    },
    /// No index criterion: every lane's time index over the query's range.
    EveryLane,
}

/// The access path chosen for a query and how many candidates it yielded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The index read.
    pub access: Access,
    /// Passages it named (within the time range); each was then read and filtered.
    pub candidates: usize,
}

/// What a query found.
#[derive(Debug, Clone)]
pub struct Found {
    /// Matching passages, newest first (by start time, then id), at most the limit.
    pub passages: Vec<PassageRecord>,
    /// More passages match than the limit let through.
    pub more: bool,
    /// How they were found.
    pub plan: Plan,
}

/// The candidate list of one access path; `complete` is false when it stopped at `cap`.
fn candidates(
    r: &Reader<'_>,
    access: &Access,
    (lo, hi): (i64, i64),
    cap: usize,
) -> Result<(Ids, bool), QueryError> {
    let mut ids: Ids = match access {
        Access::Index { index, value } => r.passage_ids_capped(*index, value, lo, hi, cap)?,
        Access::Document {
            kind: Some(kind),
            number,
        } => r.passage_ids_by_document(kind, number.as_deref(), lo, hi, cap)?,
        Access::Document { kind: None, number } => {
            let mut out = Vec::new();
            for kind in r.passage_document_kinds()? {
                let left = cap.saturating_sub(out.len());
                if left == 0 {
                    return Ok((out, false));
                }
                out.extend(r.passage_ids_by_document(&kind, number.as_deref(), lo, hi, left)?);
            }
            out
        }
        Access::EveryLane => {
            let mut out = Vec::new();
            for lane in r.passage_index_values(PassageIndex::Lane)? {
                let left = cap.saturating_sub(out.len());
                if left == 0 {
                    return Ok((out, false));
                }
                out.extend(r.passage_ids_capped(PassageIndex::Lane, &lane, lo, hi, left)?);
            }
            out
        }
    };
    let complete = ids.len() < cap;
    ids.sort_unstable();
    ids.dedup();
    Ok((ids, complete))
}

impl PassageQuery {
    /// The access paths this query could use, most promising first: a document number is
    /// nearly unique, a container passes a few times, a plate more often, a lane or station
    /// sees every truck, and a document kind covers most passages.
    fn accesses(&self) -> Vec<Access> {
        let index = |index, value: &Option<String>| {
            value.as_ref().map(|v| Access::Index {
                index,
                value: v.clone(),
            })
        };
        let document =
            (self.document_kind.is_some() || self.document_number.is_some()).then(|| {
                Access::Document {
                    kind: self.document_kind.clone(),
                    number: self.document_number.clone(),
                }
            });
        let by_number = document.clone().filter(|_| self.document_number.is_some());
        let by_kind = document.filter(|_| self.document_number.is_none());
        [
            by_number,
            index(PassageIndex::Container, &self.container),
            index(PassageIndex::Plate, &self.plate),
            index(PassageIndex::Lane, &self.lane),
            index(PassageIndex::Station, &self.station),
            by_kind,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Picks the access path with the fewest candidates in the time range. Each index after
    /// the first is read only up to the best count so far, so a poor index costs no more
    /// than the best one.
    fn plan(&self, r: &Reader<'_>, bounds: (i64, i64)) -> Result<(Plan, Ids), QueryError> {
        let mut accesses = self.accesses();
        if accesses.is_empty() {
            accesses.push(Access::EveryLane);
        }
        let mut best: Option<(Access, Ids)> = None;
        for access in accesses {
            let cap = best.as_ref().map_or(usize::MAX, |(_, ids)| ids.len());
            if cap == 0 {
                break;
            }
            let (ids, complete) = candidates(r, &access, bounds, cap)?;
            if complete {
                best = Some((access, ids));
            }
        }
        let (access, ids) = best.unwrap_or((Access::EveryLane, Vec::new()));
        Ok((
            Plan {
                access,
                candidates: ids.len(),
            },
            ids,
        ))
    }

    /// Runs the query on one snapshot: the most selective index first, then every other
    /// criterion on the records it names, newest first, up to the limit.
    pub fn run(&self, r: &Reader<'_>) -> Result<Found, QueryError> {
        let Some(bounds) = self.range.inclusive() else {
            return Ok(Found {
                passages: Vec::new(),
                more: false,
                plan: Plan {
                    access: Access::EveryLane,
                    candidates: 0,
                },
            });
        };
        let (plan, ids) = self.plan(r, bounds)?;
        let limit = self.limit.unwrap_or(usize::MAX);
        let mut passages = Vec::new();
        let mut more = false;
        for (_, id) in ids.iter().rev() {
            let Some(rec) = r.passage(id)? else {
                return Err(r
                    .corrupt(
                        "passages",
                        id,
                        "an index names this passage but it is missing (run `kakou store check`)"
                            .into(),
                    )
                    .into());
            };
            if !self.matches(&rec) {
                continue;
            }
            if passages.len() == limit {
                more = true;
                break;
            }
            passages.push(rec);
        }
        Ok(Found {
            passages,
            more,
            plan,
        })
    }
}

/// Runs a query on a fresh snapshot of the store.
pub fn find_passages(store: &Store, query: &PassageQuery) -> Result<Found, QueryError> {
    query.run(&store.snapshot()?)
}

/// One line about a passage: what a list or a queue shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PassageSummary {
    /// Passage id.
    pub id: String,
    /// Lane id.
    pub lane: String,
    /// Station / yard code.
    pub station: String,
    /// Unix ms it started.
    pub started_ms: i64,
    /// The plate in force, else the resolved vehicle's plate.
    pub plate: Option<String>,
    /// Containers in force.
    pub containers: Vec<String>,
    /// Final outcome, once there is one.
    pub outcome: Option<Outcome>,
    /// Life-cycle state.
    pub state: PassageState,
    /// Rule plugins that decided, as `name@version`.
    pub decided_by: Vec<String>,
    /// Codes of the checks that failed or could not tell: why it waits.
    pub open_checks: Vec<String>,
}

impl From<&PassageRecord> for PassageSummary {
    fn from(rec: &PassageRecord) -> Self {
        let p = &rec.passage;
        PassageSummary {
            id: p.id.clone(),
            lane: p.lane.id.clone(),
            station: p.lane.station.clone(),
            started_ms: p.started_ms,
            plate: p
                .plate()
                .map(|pl| pl.text.clone())
                .or_else(|| rec.vehicle.clone()),
            containers: p.containers().iter().map(|c| c.number.clone()).collect(),
            outcome: rec.outcome,
            state: rec.state,
            decided_by: rec.decided_by.iter().map(ToString::to_string).collect(),
            open_checks: rec
                .verdict
                .iter()
                .flat_map(|v| &v.checks)
                .filter(|c| c.result != CheckResult::Pass)
                .map(|c| c.code.clone())
                .collect(),
        }
    }
}
