//! Statistics over the passages that started within a time range: transit counts by document
//! kind and station, recognition rate per device, manual-intervention ratio and outcomes per
//! lane per day, and the inspection and manual queues. The formulas are in
//! `docs/queries.md`.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use kakou_plugin_sdk::model::{Outcome, Source};
use serde::Serialize;

use super::{PassageSummary, QueryError, TimeRange, UtcOffset, day_of};
use crate::store::{PassageIndex, PassageRecord, PassageState, Reader};

/// Calls `f` on every passage that started within `range`, lane by lane, oldest first.
fn each_passage(
    r: &Reader<'_>,
    range: TimeRange,
    mut f: impl FnMut(PassageRecord),
) -> Result<(), QueryError> {
    let Some((lo, hi)) = range.inclusive() else {
        return Ok(());
    };
    for lane in r.passage_index_values(PassageIndex::Lane)? {
        for (_, id) in r.passage_ids(PassageIndex::Lane, &lane, lo, hi)? {
            match r.passage(&id)? {
                Some(rec) => f(rec),
                None => {
                    return Err(r
                        .corrupt(
                            "passages",
                            &id,
                            "the lane index names this passage but it is missing (run `kakou \
                             store check`)"
                                .into(),
                        )
                        .into());
                }
            }
        }
    }
    Ok(())
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

// ---- transit ----

/// How transit counts are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitGrouping {
    /// By document kind.
    Kind,
    /// By station.
    Station,
    /// By document kind and station.
    Both,
}

/// One group of transit counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransitRow {
    /// Document kind (as indexed: lower case, `_` for `-`), when grouped by kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Station code (`-` for a lane without one), when grouped by station.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub station: Option<String>,
    /// Passages in the group: each passage once per document kind it carried.
    pub passages: u64,
    /// Distinct documents (kind and number) in the group.
    pub documents: u64,
}

/// Transit statistics over a time range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitReport {
    /// The range of passage start times.
    pub range: TimeRange,
    /// How `rows` are grouped.
    pub by: TransitGrouping,
    /// Passages in the range, cancelled ones excluded.
    pub passages: u64,
    /// Of those, passages that presented or were matched against at least one document.
    pub with_documents: u64,
    /// Cancelled passages in the range (the truck backed out): not counted anywhere else.
    pub cancelled: u64,
    /// The groups, in order of kind, then station.
    pub rows: Vec<TransitRow>,
}

/// Transit statistics (DOMAIN.md §2.7): passages by document kind, by station, or both,
/// from the documents each passage presented (`Passage::documents()`) and was matched
/// against ([`PassageRecord::documents`]), each passage counted once per kind.
pub fn transit_stats(
    r: &Reader<'_>,
    range: TimeRange,
    by: TransitGrouping,
) -> Result<TransitReport, QueryError> {
    #[derive(Default)]
    struct Acc {
        passages: u64,
        documents: BTreeSet<(String, String)>,
    }
    let mut groups: BTreeMap<(Option<String>, Option<String>), Acc> = BTreeMap::new();
    let mut report = TransitReport {
        range,
        by,
        passages: 0,
        with_documents: 0,
        cancelled: 0,
        rows: Vec::new(),
    };
    each_passage(r, range, |rec| {
        if rec.state == PassageState::Cancelled {
            report.cancelled += 1;
            return;
        }
        report.passages += 1;
        let keys = rec.keys();
        if keys.documents.is_empty() {
            return;
        }
        report.with_documents += 1;
        let station = keys.station.unwrap_or_else(|| "-".to_owned());
        let mut counted = HashSet::new();
        for (kind, number) in keys.documents {
            let group = match by {
                TransitGrouping::Kind => (Some(kind.clone()), None),
                TransitGrouping::Station => (None, Some(station.clone())),
                TransitGrouping::Both => (Some(kind.clone()), Some(station.clone())),
            };
            let acc = groups.entry(group.clone()).or_default();
            if counted.insert(group) {
                acc.passages += 1;
            }
            acc.documents.insert((kind, number));
        }
    })?;
    report.rows = groups
        .into_iter()
        .map(|((kind, station), acc)| TransitRow {
            kind,
            station,
            passages: acc.passages,
            documents: acc.documents.len() as u64,
        })
        .collect();
    Ok(report)
}

// ---- efficiency ----

/// Reading kinds whose recognition is measured: what a device identifies or measures and an
/// operator can key in instead. Status, presence, position and raw readings are not.
pub const RECOGNISED_KINDS: [&str; 7] = [
    "plate",
    "tag",
    "container",
    "card",
    "weight",
    "document",
    "seal",
];

/// Recognition of one reading kind by one device of a lane.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecognitionRow {
    /// Lane id.
    pub lane: String,
    /// Device id.
    pub device: String,
    /// Reading kind (`plate`, `container` …).
    pub kind: String,
    /// Passages of the lane that needed the kind: it was read by any device or keyed in.
    pub needed: u64,
    /// Of those, passages where this device produced a reading of the kind.
    pub read: u64,
    /// Of those, passages where its reading stayed current (not superseded) and the kind was
    /// not keyed in: reads used without manual correction.
    pub used: u64,
    /// Passages of the lane where the kind was keyed in (manual or backfill).
    pub keyed: u64,
    /// `used / needed`; none when nothing was needed.
    pub rate: Option<f64>,
}

/// Manual-intervention ratio of one lane on one day (or overall).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManualRatio {
    /// Lane id (`*` overall).
    pub lane: String,
    /// `YYYY-MM-DD` in the report's UTC offset (`*` overall).
    pub day: String,
    /// Passages that started that day.
    pub passages: u64,
    /// Of those, passages with any operator action or any reading keyed in.
    pub manual: u64,
    /// `manual / passages`.
    pub ratio: Option<f64>,
}

/// The efficiency report (DOMAIN.md §2.7 "Efficiency", §3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EfficiencyReport {
    /// The range of passage start times.
    pub range: TimeRange,
    /// The offset days are taken in.
    pub utc_offset: String,
    /// Recognition per (lane, device, kind), in that order.
    pub recognition: Vec<RecognitionRow>,
    /// Manual-intervention ratio per (lane, day), in that order.
    pub manual: Vec<ManualRatio>,
    /// The ratio over every passage of the range.
    pub manual_overall: ManualRatio,
}

fn keyed_in(source: Source) -> bool {
    matches!(source, Source::Manual | Source::Backfill)
}

/// Whether an operator intervened in a passage: an action, or a reading keyed in.
fn had_intervention(rec: &PassageRecord) -> bool {
    !rec.manual_actions.is_empty() || rec.passage.observations.iter().any(|o| keyed_in(o.source))
}

/// Recognition rate per device and manual-intervention ratio per lane per day, over every
/// passage that started within `range` (cancelled ones included: their readings were made).
pub fn efficiency(
    r: &Reader<'_>,
    range: TimeRange,
    offset: UtcOffset,
) -> Result<EfficiencyReport, QueryError> {
    #[derive(Default)]
    struct Lk {
        needed: u64,
        keyed: u64,
    }
    #[derive(Default)]
    struct Dev {
        read: u64,
        used: u64,
    }
    let mut lane_kind: BTreeMap<(String, &'static str), Lk> = BTreeMap::new();
    let mut devices: BTreeMap<(String, String, &'static str), Dev> = BTreeMap::new();
    let mut days: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    each_passage(r, range, |rec| {
        let lane = rec.passage.lane.id.clone();
        let obs = &rec.passage.observations;
        let kind_of = |o: &kakou_plugin_sdk::model::Observation| {
            let k = o.reading.value.kind();
            RECOGNISED_KINDS.iter().copied().find(|r| *r == k)
        };
        let keyed: HashSet<&'static str> = obs
            .iter()
            .filter(|o| keyed_in(o.source))
            .filter_map(kind_of)
            .collect();
        let needed: BTreeSet<&'static str> = obs.iter().filter_map(kind_of).collect();
        for kind in needed {
            let lk = lane_kind.entry((lane.clone(), kind)).or_default();
            lk.needed += 1;
            lk.keyed += u64::from(keyed.contains(kind));
        }
        // (device, kind) → a current reading among its readings.
        let mut reads: BTreeMap<(&str, &'static str), bool> = BTreeMap::new();
        for o in obs.iter().filter(|o| o.source == Source::Device) {
            if let Some(kind) = kind_of(o) {
                *reads.entry((o.device.as_str(), kind)).or_default() |= !o.superseded;
            }
        }
        for ((device, kind), current) in reads {
            let d = devices
                .entry((lane.clone(), device.to_owned(), kind))
                .or_default();
            d.read += 1;
            d.used += u64::from(current && !keyed.contains(kind));
        }
        let day = days
            .entry((lane, day_of(rec.passage.started_ms, offset)))
            .or_default();
        day.0 += 1;
        day.1 += u64::from(had_intervention(&rec));
    })?;
    let recognition = devices
        .into_iter()
        .map(|((lane, device, kind), d)| {
            let lk = lane_kind.get(&(lane.clone(), kind));
            let needed = lk.map_or(0, |l| l.needed);
            RecognitionRow {
                keyed: lk.map_or(0, |l| l.keyed),
                rate: ratio(d.used, needed),
                lane,
                device,
                kind: kind.to_owned(),
                needed,
                read: d.read,
                used: d.used,
            }
        })
        .collect();
    let (mut all, mut all_manual) = (0, 0);
    let manual = days
        .into_iter()
        .map(|((lane, day), (passages, manual))| {
            all += passages;
            all_manual += manual;
            ManualRatio {
                lane,
                day,
                passages,
                manual,
                ratio: ratio(manual, passages),
            }
        })
        .collect();
    Ok(EfficiencyReport {
        range,
        utc_offset: offset.to_string(),
        recognition,
        manual,
        manual_overall: ManualRatio {
            lane: "*".into(),
            day: "*".into(),
            passages: all,
            manual: all_manual,
            ratio: ratio(all_manual, all),
        },
    })
}

// ---- outcomes ----

/// Outcomes of one lane on one day.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct OutcomeRow {
    /// Lane id.
    pub lane: String,
    /// `YYYY-MM-DD` in the report's UTC offset.
    pub day: String,
    /// Released.
    pub release: u64,
    /// Left to an operator.
    pub manual: u64,
    /// Sent to inspection.
    pub inspect: u64,
    /// Refused.
    pub refuse: u64,
    /// No outcome yet (pending, or cancelled before a decision).
    pub undecided: u64,
    /// All passages.
    pub total: u64,
}

/// Outcomes per lane per day and the two queues.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomeReport {
    /// The range of passage start times.
    pub range: TimeRange,
    /// The offset days are taken in.
    pub utc_offset: String,
    /// Per (lane, day), in that order.
    pub rows: Vec<OutcomeRow>,
    /// Passages in the inspection state (sent to inspection, not yet marked inspected),
    /// oldest first.
    pub inspection_queue: Vec<PassageSummary>,
    /// Passages in the manual state (waiting for an operator), oldest first.
    pub manual_queue: Vec<PassageSummary>,
}

/// Outcome counts per lane per day, and the passages of the range waiting in inspection and
/// for an operator.
pub fn outcomes(
    r: &Reader<'_>,
    range: TimeRange,
    offset: UtcOffset,
) -> Result<OutcomeReport, QueryError> {
    let mut rows: BTreeMap<(String, String), OutcomeRow> = BTreeMap::new();
    let mut inspection = Vec::new();
    let mut manual = Vec::new();
    each_passage(r, range, |rec| {
        let lane = rec.passage.lane.id.clone();
        let day = day_of(rec.passage.started_ms, offset);
        let row = rows
            .entry((lane.clone(), day.clone()))
            .or_insert_with(|| OutcomeRow {
                lane,
                day,
                ..Default::default()
            });
        row.total += 1;
        *match rec.outcome {
            Some(Outcome::Release) => &mut row.release,
            Some(Outcome::Manual) => &mut row.manual,
            Some(Outcome::Inspect) => &mut row.inspect,
            Some(Outcome::Refuse) => &mut row.refuse,
            None => &mut row.undecided,
        } += 1;
        match rec.state {
            PassageState::Inspection => inspection.push(PassageSummary::from(&rec)),
            PassageState::Manual => manual.push(PassageSummary::from(&rec)),
            _ => {}
        }
    })?;
    let by_time =
        |a: &PassageSummary, b: &PassageSummary| (a.started_ms, &a.id).cmp(&(b.started_ms, &b.id));
    inspection.sort_by(by_time);
    manual.sort_by(by_time);
    Ok(OutcomeReport {
        range,
        utc_offset: offset.to_string(),
        rows: rows.into_values().collect(),
        inspection_queue: inspection,
        manual_queue: manual,
    })
}
