//! Unit tests of queries and statistics over one small, fully known set of passages.

use kakou_plugin_sdk::model::*;

use super::*;
use crate::store::{ManualAction, PassageIndex, PassageRecord, PassageState, PluginVersion, Store};

/// 2026-11-27T00:00Z.
const DAY: i64 = 1_795_737_600_000;
const HOUR: i64 = 3_600_000;

/// A passage record under construction.
struct B(PassageRecord);

impl B {
    fn new(id: &str, lane: &str, station: &str, started_ms: i64) -> B {
        let passage = Passage {
            id: id.into(),
            site: "test-site".into(),
            office: "5201".into(),
            lane: Lane {
                id: lane.into(),
                station: station.into(),
                cargo: CargoKind::Container,
                ..Default::default()
            },
            started_ms,
            now_ms: started_ms + 2_000,
            ..Default::default()
        };
        B(PassageRecord::new(passage, started_ms + 2_000))
    }

    fn obs(mut self, device: &str, source: Source, superseded: bool, r: impl Into<Reading>) -> B {
        let at_ms = self.0.passage.started_ms + 100 * self.0.passage.observations.len() as i64;
        self.0.passage.observations.push(Observation {
            device: device.into(),
            at_ms,
            operator: (source != Source::Device).then(|| device.to_owned()),
            source,
            superseded,
            reading: r.into(),
        });
        self
    }

    /// A current device reading.
    fn read(self, device: &str, r: impl Into<Reading>) -> B {
        self.obs(device, Source::Device, false, r)
    }

    fn matched(mut self, kind: &str, number: &str) -> B {
        self.0.documents.push(doc(kind, number));
        self
    }

    fn decided(mut self, outcome: Option<Outcome>, state: PassageState) -> B {
        self.0.outcome = outcome;
        self.0.state = state;
        if let Some(outcome) = outcome {
            self.0.verdict.get_or_insert_with(Verdict::default).outcome = outcome;
            self.0.decided_by = vec![PluginVersion::new("weight-check", "1.0.0")];
        }
        self
    }

    fn check(mut self, code: &str, result: CheckResult) -> B {
        self.0
            .verdict
            .get_or_insert_with(Verdict::default)
            .checks
            .push(Check::new(code, result, format!("{code} said so")));
        self
    }

    fn action(mut self, who: &str, action: &str) -> B {
        let at_ms = self.0.passage.started_ms + 60_000;
        self.0.manual_actions.push(ManualAction {
            who: who.into(),
            at_ms,
            action: action.into(),
            note: None,
        });
        self
    }
}

fn plate(text: &str) -> Plate {
    Plate {
        text: text.into(),
        colour: PlateColour::Yellow,
        confidence: 90,
        ..Default::default()
    }
}

fn container(number: &str) -> Container {
    Container {
        number: number.into(),
        iso_type: Some("22G1".into()),
        position: ContainerPosition::Single,
        confidence: 92,
    }
}

fn doc(kind: &str, number: &str) -> DocumentRef {
    DocumentRef {
        kind: kind.into(),
        number: number.into(),
    }
}

/// The six passages every test reads (times UTC):
///
/// | id | lane/station | started | readings | documents | outcome / state |
/// |---|---|---|---|---|---|
/// | L01-0001 | L01/HP01 | 27th 08:00 | plate, box | T1 | release / closed |
/// | L01-0002 | L01/HP01 | 27th 09:00 | plate superseded + keyed, box, doc C9 | T2 | inspect / inspection |
/// | L01-0003 | L01/HP01 | 27th 10:00 | plate, box backfilled | L3 | manual / manual |
/// | L02-0001 | L02/HP02 | 27th 11:00 | plate, box | T1 | refuse / decided |
/// | L02-0002 | L02/HP02 | 28th 08:00 | plate (bulk), operator released | – | release / closed |
/// | L01-0004 | L01/HP01 | 28th 09:00 | plate | T6 | – / cancelled |
fn fixture() -> Vec<PassageRecord> {
    let d2 = DAY + 24 * HOUR;
    vec![
        B::new("L01-0001", "L01", "HP01", DAY + 8 * HOUR)
            .read("plate-cam", plate("粤B12345"))
            .read("box-cam", container("CSQU3054383"))
            .matched("transit-release", "T1")
            .decided(Some(Outcome::Release), PassageState::Closed)
            .check("weight.tolerance", CheckResult::Pass),
        B::new("L01-0002", "L01", "HP01", DAY + 9 * HOUR)
            .obs("plate-cam", Source::Device, true, plate("粤B1234S"))
            .obs("op-7", Source::Manual, false, plate("粤BH3306"))
            .read("box-cam", container("MSCU5520188"))
            .read("doc-reader", doc("customs-declaration", "C9"))
            .matched("transit-release", "T2")
            .action("op-7", "manual.plate")
            .decided(Some(Outcome::Inspect), PassageState::Inspection)
            .check("weight.tare", CheckResult::Pass)
            .check("weight.tolerance", CheckResult::Fail),
        B::new("L01-0003", "L01", "HP01", DAY + 10 * HOUR)
            .read("plate-cam", plate("粤B9F731"))
            .obs("op-8", Source::Backfill, false, container("OOLU8812348"))
            .matched("local-clearance", "L3")
            .decided(Some(Outcome::Manual), PassageState::Manual)
            .check("container.read", CheckResult::Unknown),
        B::new("L02-0001", "L02", "HP02", DAY + 11 * HOUR)
            .read("plate-cam", plate("粤B12345"))
            .read("box-cam", container("CSQU3054383"))
            .matched("transit-release", "T1")
            .decided(Some(Outcome::Refuse), PassageState::Decided),
        B::new("L02-0002", "L02", "HP02", d2 + 8 * HOUR)
            .read("plate-cam", plate("粤B12345"))
            .action("op-9", "release")
            .decided(Some(Outcome::Release), PassageState::Closed),
        B::new("L01-0004", "L01", "HP01", d2 + 9 * HOUR)
            .read("plate-cam", plate("粤B7C001"))
            .matched("transit-release", "T6")
            .decided(None, PassageState::Cancelled),
    ]
    .into_iter()
    .map(|b| b.0)
    .collect()
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path().join("kakou.redb")).expect("open store");
    for rec in fixture() {
        store.write(|tx| tx.put_passage(&rec)).expect("put passage");
    }
    (dir, store)
}

fn find(store: &Store, q: &PassageQuery) -> Vec<String> {
    find_passages(store, q)
        .expect("query")
        .passages
        .iter()
        .map(|p| p.id().to_owned())
        .collect()
}

fn q() -> PassageQuery {
    PassageQuery::default()
}

#[test]
fn each_criterion_alone() {
    let (_dir, s) = store();
    let cases: Vec<(PassageQuery, &[&str])> = vec![
        (
            q(),
            &[
                "L01-0004", "L02-0002", "L02-0001", "L01-0003", "L01-0002", "L01-0001",
            ],
        ),
        (
            PassageQuery {
                container: Some("csqu 305438-3".into()),
                ..q()
            },
            &["L02-0001", "L01-0001"],
        ),
        (
            PassageQuery {
                plate: Some("粤B12345".into()),
                ..q()
            },
            &["L02-0002", "L02-0001", "L01-0001"],
        ),
        // The superseded reading is not the passage's plate; the keyed-in one is.
        (
            PassageQuery {
                plate: Some("粤B1234S".into()),
                ..q()
            },
            &[],
        ),
        (
            PassageQuery {
                plate: Some("粤BH3306".into()),
                ..q()
            },
            &["L01-0002"],
        ),
        (
            PassageQuery {
                station: Some(" HP02 ".into()),
                ..q()
            },
            &["L02-0002", "L02-0001"],
        ),
        (
            PassageQuery {
                document_kind: Some("Transit_Release".into()),
                ..q()
            },
            &["L01-0004", "L02-0001", "L01-0002", "L01-0001"],
        ),
        // A presented document counts like a matched one.
        (
            PassageQuery {
                document_kind: Some("customs-declaration".into()),
                ..q()
            },
            &["L01-0002"],
        ),
        (
            PassageQuery {
                document_number: Some("T1".into()),
                ..q()
            },
            &["L02-0001", "L01-0001"],
        ),
        (
            PassageQuery {
                lane: Some("L01".into()),
                range: TimeRange::between(DAY, DAY + 24 * HOUR).expect("range"),
                ..q()
            },
            &["L01-0003", "L01-0002", "L01-0001"],
        ),
        (
            PassageQuery {
                range: TimeRange::new(Some(DAY + 24 * HOUR), None).expect("range"),
                ..q()
            },
            &["L01-0004", "L02-0002"],
        ),
        // `to` is exclusive.
        (
            PassageQuery {
                range: TimeRange::new(None, Some(DAY + 9 * HOUR)).expect("range"),
                ..q()
            },
            &["L01-0001"],
        ),
        (
            PassageQuery {
                outcome: Some(Outcome::Release),
                ..q()
            },
            &["L02-0002", "L01-0001"],
        ),
        (
            PassageQuery {
                state: Some(PassageState::Inspection),
                ..q()
            },
            &["L01-0002"],
        ),
        (
            PassageQuery {
                state: Some(PassageState::Manual),
                ..q()
            },
            &["L01-0003"],
        ),
    ];
    for (query, want) in cases {
        assert_eq!(find(&s, &query), want, "{query:?}");
    }
}

#[test]
fn combined_queries_start_from_the_most_selective_index() {
    let (_dir, s) = store();
    let snap = s.snapshot().expect("snapshot");

    // Plate 粤B12345 names 3 passages, lane L02 two: the lane index drives.
    let query = PassageQuery {
        plate: Some("粤B12345".into()),
        lane: Some("L02".into()),
        outcome: Some(Outcome::Refuse),
        ..q()
    };
    let found = query.run(&snap).expect("run");
    assert_eq!(found.plan.candidates, 2);
    assert_eq!(
        found.plan.access,
        Access::Index {
            index: PassageIndex::Lane,
            value: "L02".into()
        }
    );
    assert_eq!(found.passages.len(), 1);
    assert_eq!(found.passages[0].id(), "L02-0001");

    // A document number beats a station.
    let query = PassageQuery {
        document_number: Some("T1".into()),
        station: Some("HP01".into()),
        ..q()
    };
    let found = query.run(&snap).expect("run");
    assert!(matches!(found.plan.access, Access::Document { .. }));
    assert_eq!(found.plan.candidates, 2);
    assert_eq!(found.passages.len(), 1);
    assert_eq!(found.passages[0].id(), "L01-0001");

    // Kind and number must name the same document.
    let query = PassageQuery {
        document_kind: Some("local-clearance".into()),
        document_number: Some("T1".into()),
        ..q()
    };
    assert!(find(&s, &query).is_empty());
    let query = PassageQuery {
        document_kind: Some("transit-release".into()),
        document_number: Some("T1".into()),
        container: Some("CSQU3054383".into()),
        station: Some("HP02".into()),
        range: TimeRange::between(DAY, DAY + 24 * HOUR).expect("range"),
        ..q()
    };
    assert_eq!(find(&s, &query), ["L02-0001"]);

    // Time range and station narrow the lane's passages; the index's time bounds apply.
    let query = PassageQuery {
        station: Some("HP01".into()),
        range: TimeRange::between(DAY + 9 * HOUR, DAY + 34 * HOUR).expect("range"),
        state: Some(PassageState::Cancelled),
        ..q()
    };
    let found = query.run(&snap).expect("run");
    assert_eq!(found.plan.candidates, 3);
    assert_eq!(found.passages.len(), 1);
    assert_eq!(found.passages[0].id(), "L01-0004");

    // Nothing indexed: every lane's time index.
    let found = q().run(&snap).expect("run");
    assert_eq!(found.plan.access, Access::EveryLane);
    assert_eq!(found.plan.candidates, 6);
}

#[test]
fn the_limit_keeps_the_newest_and_says_there_is_more() {
    let (_dir, s) = store();
    let query = PassageQuery {
        document_kind: Some("transit-release".into()),
        limit: Some(2),
        ..q()
    };
    let found = find_passages(&s, &query).expect("query");
    let ids: Vec<_> = found.passages.iter().map(|p| p.id()).collect();
    assert_eq!(ids, ["L01-0004", "L02-0001"]);
    assert!(found.more);
    let query = PassageQuery {
        limit: Some(4),
        ..query
    };
    let found = find_passages(&s, &query).expect("query");
    assert_eq!(found.passages.len(), 4);
    assert!(!found.more);
}

#[test]
fn summaries_name_plate_containers_and_open_checks() {
    let (_dir, s) = store();
    let rec = s.passage("L01-0002").expect("read").expect("there");
    let sum = PassageSummary::from(&rec);
    assert_eq!(sum.plate.as_deref(), Some("粤BH3306"));
    assert_eq!(sum.containers, ["MSCU5520188"]);
    assert_eq!(sum.decided_by, ["weight-check@1.0.0"]);
    assert_eq!(sum.open_checks, ["weight.tolerance"]);
}

#[test]
fn transit_counts_by_kind_station_and_both() {
    let (_dir, s) = store();
    let snap = s.snapshot().expect("snapshot");
    let row = |kind: Option<&str>, station: Option<&str>, passages, documents| TransitRow {
        kind: kind.map(str::to_owned),
        station: station.map(str::to_owned),
        passages,
        documents,
    };

    let r = transit_stats(&snap, TimeRange::ALL, TransitGrouping::Kind).expect("stats");
    assert_eq!((r.passages, r.with_documents, r.cancelled), (5, 4, 1));
    assert_eq!(
        r.rows,
        [
            row(Some("customs_declaration"), None, 1, 1),
            row(Some("local_clearance"), None, 1, 1),
            row(Some("transit_release"), None, 3, 2),
        ]
    );

    let r = transit_stats(&snap, TimeRange::ALL, TransitGrouping::Station).expect("stats");
    assert_eq!(
        r.rows,
        [row(None, Some("HP01"), 3, 4), row(None, Some("HP02"), 1, 1)]
    );

    let r = transit_stats(&snap, TimeRange::ALL, TransitGrouping::Both).expect("stats");
    assert_eq!(
        r.rows,
        [
            row(Some("customs_declaration"), Some("HP01"), 1, 1),
            row(Some("local_clearance"), Some("HP01"), 1, 1),
            row(Some("transit_release"), Some("HP01"), 2, 2),
            row(Some("transit_release"), Some("HP02"), 1, 1),
        ]
    );

    let second_day = TimeRange::new(Some(DAY + 24 * HOUR), None).expect("range");
    let r = transit_stats(&snap, second_day, TransitGrouping::Kind).expect("stats");
    assert_eq!((r.passages, r.with_documents, r.cancelled), (1, 0, 1));
    assert!(r.rows.is_empty());
}

#[test]
fn recognition_rate_per_device() {
    let (_dir, s) = store();
    let snap = s.snapshot().expect("snapshot");
    let r = efficiency(&snap, TimeRange::ALL, UtcOffset::UTC).expect("stats");
    let got: Vec<_> = r
        .recognition
        .iter()
        .map(|x| {
            (
                x.lane.as_str(),
                x.device.as_str(),
                x.kind.as_str(),
                x.needed,
                x.read,
                x.used,
                x.keyed,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("L01", "box-cam", "container", 3, 2, 2, 1),
            ("L01", "doc-reader", "document", 1, 1, 1, 0),
            ("L01", "plate-cam", "plate", 4, 4, 3, 1),
            ("L02", "box-cam", "container", 1, 1, 1, 0),
            ("L02", "plate-cam", "plate", 2, 2, 2, 0),
        ]
    );
    let rates: Vec<_> = r.recognition.iter().map(|x| x.rate).collect();
    assert_eq!(
        rates,
        [Some(2.0 / 3.0), Some(1.0), Some(0.75), Some(1.0), Some(1.0)]
    );
}

#[test]
fn manual_ratio_per_lane_per_day_in_the_offset() {
    let (_dir, s) = store();
    let snap = s.snapshot().expect("snapshot");
    let rows = |r: &EfficiencyReport| -> Vec<(String, String, u64, u64)> {
        r.manual
            .iter()
            .map(|m| (m.lane.clone(), m.day.clone(), m.passages, m.manual))
            .collect()
    };
    let own = |v: &[(&str, &str, u64, u64)]| -> Vec<(String, String, u64, u64)> {
        v.iter()
            .map(|(l, d, p, m)| (l.to_string(), d.to_string(), *p, *m))
            .collect()
    };

    let r = efficiency(&snap, TimeRange::ALL, UtcOffset::UTC).expect("stats");
    assert_eq!(
        rows(&r),
        own(&[
            ("L01", "2026-11-27", 3, 2),
            ("L01", "2026-11-28", 1, 0),
            ("L02", "2026-11-27", 1, 0),
            ("L02", "2026-11-28", 1, 1),
        ])
    );
    assert_eq!(r.manual[0].ratio, Some(2.0 / 3.0));
    assert_eq!(r.manual[1].ratio, Some(0.0));
    assert_eq!((r.manual_overall.passages, r.manual_overall.manual), (6, 3));
    assert_eq!(r.manual_overall.ratio, Some(0.5));

    // Nine hours west of UTC, 08:00Z on the 27th is still the 26th.
    let west = UtcOffset::parse("-09:00").expect("offset");
    let r = efficiency(&snap, TimeRange::ALL, west).expect("stats");
    assert_eq!(
        rows(&r),
        own(&[
            ("L01", "2026-11-26", 1, 0),
            ("L01", "2026-11-27", 2, 2),
            ("L01", "2026-11-28", 1, 0),
            ("L02", "2026-11-27", 2, 1),
        ])
    );

    // Only the first day.
    let first = TimeRange::between(DAY, DAY + 24 * HOUR).expect("range");
    let r = efficiency(&snap, first, UtcOffset::UTC).expect("stats");
    assert_eq!((r.manual_overall.passages, r.manual_overall.manual), (4, 2));
}

#[test]
fn outcomes_per_lane_per_day_and_the_queues() {
    let (_dir, s) = store();
    let snap = s.snapshot().expect("snapshot");
    let r = outcomes(&snap, TimeRange::ALL, UtcOffset::UTC).expect("stats");
    let got: Vec<_> = r
        .rows
        .iter()
        .map(|x| {
            (
                x.lane.as_str(),
                x.day.as_str(),
                [
                    x.release,
                    x.manual,
                    x.inspect,
                    x.refuse,
                    x.undecided,
                    x.total,
                ],
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("L01", "2026-11-27", [1, 1, 1, 0, 0, 3]),
            ("L01", "2026-11-28", [0, 0, 0, 0, 1, 1]),
            ("L02", "2026-11-27", [0, 0, 0, 1, 0, 1]),
            ("L02", "2026-11-28", [1, 0, 0, 0, 0, 1]),
        ]
    );
    let ids = |v: &[PassageSummary]| v.iter().map(|p| p.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&r.inspection_queue), ["L01-0002"]);
    assert_eq!(ids(&r.manual_queue), ["L01-0003"]);
    assert_eq!(r.manual_queue[0].open_checks, ["container.read"]);

    let second = TimeRange::new(Some(DAY + 24 * HOUR), None).expect("range");
    let r = outcomes(&snap, second, UtcOffset::UTC).expect("stats");
    assert_eq!(r.rows.len(), 2);
    assert!(r.inspection_queue.is_empty() && r.manual_queue.is_empty());
}

#[test]
fn names_parse_and_errors_list_what_is_valid() {
    assert_eq!(parse_outcome(" Inspect ").expect("parse"), Outcome::Inspect);
    assert_eq!(
        parse_state("inspection").expect("parse"),
        PassageState::Inspection
    );
    for o in OUTCOMES {
        assert_eq!(parse_outcome(outcome_name(o)).expect("parse"), o);
    }
    for st in PassageState::ALL {
        assert_eq!(parse_state(state_name(st)).expect("parse"), st);
    }
    let e = parse_outcome("released").unwrap_err().to_string();
    assert_eq!(
        e,
        "unknown outcome \"released\"; expected one of: release, manual, inspect, refuse"
    );
    let e = parse_state("open").unwrap_err().to_string();
    assert!(e.contains("pending, decided, manual, inspection, inspected, closed, cancelled"));
}

#[test]
fn index_helpers_seek_distinct_values_and_cap() {
    let (_dir, s) = store();
    let snap = s.snapshot().expect("snapshot");
    assert_eq!(
        snap.passage_index_values(PassageIndex::Lane)
            .expect("lanes"),
        ["L01", "L02"]
    );
    assert_eq!(
        snap.passage_index_values(PassageIndex::Station)
            .expect("stations"),
        ["HP01", "HP02"]
    );
    assert_eq!(
        snap.passage_document_kinds().expect("kinds"),
        ["customs_declaration", "local_clearance", "transit_release"]
    );
    let all = snap
        .passage_ids_by_document("transit-release", None, i64::MIN, i64::MAX, usize::MAX)
        .expect("ids");
    assert_eq!(all.len(), 4);
    let capped = snap
        .passage_ids_by_document("transit-release", None, i64::MIN, i64::MAX, 2)
        .expect("ids");
    assert_eq!(capped.len(), 2);
    let capped = snap
        .passage_ids_capped(PassageIndex::Lane, "L01", DAY, DAY + 9 * HOUR, 10)
        .expect("ids");
    assert_eq!(capped.len(), 2);
    // An empty store has no values.
    let dir = tempfile::tempdir().expect("dir");
    let empty = Store::open(dir.path().join("e.redb")).expect("open");
    let snap = empty.snapshot().expect("snapshot");
    assert!(
        snap.passage_index_values(PassageIndex::Lane)
            .expect("lanes")
            .is_empty()
    );
}
