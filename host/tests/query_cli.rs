//! `kakou query …` and `kakou stats …` as an operator runs them, over a store built through
//! the library: exact rows and numbers, JSON output, and the errors for bad arguments.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kakou_host::sdk::model::*;
use kakou_host::store::{ManualAction, PassageRecord, PassageState, PluginVersion, Store};

/// 2026-11-27T00:00Z.
const DAY: i64 = 1_795_737_600_000;
const HOUR: i64 = 3_600_000;

fn kakou(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kakou"))
        .args(args)
        .env_remove("KAKOU_STORE")
        .env_remove("KAKOU_UTC_OFFSET")
        .output()
        .expect("run kakou")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs a command that must succeed; its standard output.
fn ok(args: &[&str]) -> String {
    let out = kakou(args);
    assert!(
        out.status.success(),
        "kakou {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs a command that must fail; its standard error.
fn fails(args: &[&str]) -> String {
    let out = kakou(args);
    assert!(!out.status.success(), "kakou {args:?} succeeded");
    text(&out.stderr)
}

fn obs(device: &str, at_ms: i64, source: Source, superseded: bool, r: Reading) -> Observation {
    Observation {
        device: device.into(),
        at_ms,
        operator: (source != Source::Device).then(|| device.to_owned()),
        source,
        superseded,
        reading: r,
    }
}

fn plate(text: &str) -> Reading {
    Reading::from(Plate {
        text: text.into(),
        colour: PlateColour::Yellow,
        confidence: 90,
        ..Default::default()
    })
}

fn container(number: &str) -> Reading {
    Reading::from(Container {
        number: number.into(),
        iso_type: Some("22G1".into()),
        position: ContainerPosition::Single,
        confidence: 92,
    })
}

fn doc(kind: &str, number: &str) -> DocumentRef {
    DocumentRef {
        kind: kind.into(),
        number: number.into(),
    }
}

struct P {
    id: &'static str,
    lane: &'static str,
    station: &'static str,
    at: i64,
    /// (device, source, superseded, reading)
    readings: Vec<(&'static str, Source, bool, Reading)>,
    matched: Vec<DocumentRef>,
    outcome: Option<Outcome>,
    state: PassageState,
    checks: Vec<Check>,
    actions: Vec<(&'static str, &'static str)>,
}

impl P {
    fn record(self) -> PassageRecord {
        let observations = self
            .readings
            .into_iter()
            .enumerate()
            .map(|(i, (d, src, sup, r))| obs(d, self.at + 100 * i as i64, src, sup, r))
            .collect();
        let mut rec = PassageRecord::new(
            Passage {
                id: self.id.into(),
                site: "test-site".into(),
                office: "5201".into(),
                lane: Lane {
                    id: self.lane.into(),
                    station: self.station.into(),
                    cargo: CargoKind::Container,
                    ..Default::default()
                },
                started_ms: self.at,
                now_ms: self.at + 2_000,
                observations,
                attributes: Vec::new(),
            },
            self.at + 2_000,
        );
        rec.documents = self.matched;
        rec.outcome = self.outcome;
        rec.state = self.state;
        if let Some(o) = self.outcome {
            rec.verdict = Some(Verdict {
                outcome: o,
                checks: self.checks,
                alarms: Vec::new(),
            });
            rec.decided_by = vec![PluginVersion::new("weight-check", "1.0.0")];
        }
        rec.manual_actions = self
            .actions
            .into_iter()
            .map(|(who, action)| ManualAction {
                who: who.into(),
                at_ms: self.at + 60_000,
                action: action.into(),
                note: Some("keyed at the booth".into()),
            })
            .collect();
        rec
    }
}

fn p(id: &'static str, lane: &'static str, station: &'static str, at: i64) -> P {
    P {
        id,
        lane,
        station,
        at,
        readings: Vec::new(),
        matched: Vec::new(),
        outcome: None,
        state: PassageState::Pending,
        checks: Vec::new(),
        actions: Vec::new(),
    }
}

/// Six passages over two lanes and two days (the same set as the library's unit tests):
/// L01-0001 released, L01-0002 sent to inspection after its plate was keyed in, L01-0003
/// waiting for an operator after a container backfill, L02-0001 refused, L02-0002 released by
/// an operator the next day, L01-0004 cancelled.
fn build_store(dir: &Path) -> PathBuf {
    use Source::{Backfill, Device, Manual};
    let d2 = DAY + 24 * HOUR;
    let recs = vec![
        P {
            readings: vec![
                ("plate-cam", Device, false, plate("粤B12345")),
                ("box-cam", Device, false, container("CSQU3054383")),
            ],
            matched: vec![doc("transit-release", "T1")],
            outcome: Some(Outcome::Release),
            state: PassageState::Closed,
            checks: vec![Check::new(
                "weight.tolerance",
                CheckResult::Pass,
                "within 2 %",
            )],
            ..p("L01-0001", "L01", "HP01", DAY + 8 * HOUR)
        },
        P {
            readings: vec![
                ("plate-cam", Device, true, plate("粤B1234S")),
                ("op-7", Manual, false, plate("粤BH3306")),
                ("box-cam", Device, false, container("MSCU5520188")),
                (
                    "doc-reader",
                    Device,
                    false,
                    Reading::from(doc("customs-declaration", "C9")),
                ),
            ],
            matched: vec![doc("transit-release", "T2")],
            outcome: Some(Outcome::Inspect),
            state: PassageState::Inspection,
            checks: vec![
                Check::new("weight.tare", CheckResult::Pass, "vehicle tare 15400 kg"),
                Check::new(
                    "weight.tolerance",
                    CheckResult::Fail,
                    "14500 kg over the declaration",
                )
                .about("MSCU5520188"),
            ],
            actions: vec![("op-7", "manual.plate")],
            ..p("L01-0002", "L01", "HP01", DAY + 9 * HOUR)
        },
        P {
            readings: vec![
                ("plate-cam", Device, false, plate("粤B9F731")),
                ("op-8", Backfill, false, container("OOLU8812348")),
            ],
            matched: vec![doc("local-clearance", "L3")],
            outcome: Some(Outcome::Manual),
            state: PassageState::Manual,
            checks: vec![Check::new(
                "container.read",
                CheckResult::Unknown,
                "no container read",
            )],
            ..p("L01-0003", "L01", "HP01", DAY + 10 * HOUR)
        },
        P {
            readings: vec![
                ("plate-cam", Device, false, plate("粤B12345")),
                ("box-cam", Device, false, container("CSQU3054383")),
            ],
            matched: vec![doc("transit-release", "T1")],
            outcome: Some(Outcome::Refuse),
            state: PassageState::Decided,
            ..p("L02-0001", "L02", "HP02", DAY + 11 * HOUR)
        },
        P {
            readings: vec![("plate-cam", Device, false, plate("粤B12345"))],
            outcome: Some(Outcome::Release),
            state: PassageState::Closed,
            actions: vec![("op-9", "release")],
            ..p("L02-0002", "L02", "HP02", d2 + 8 * HOUR)
        },
        P {
            readings: vec![("plate-cam", Device, false, plate("粤B7C001"))],
            matched: vec![doc("transit-release", "T6")],
            state: PassageState::Cancelled,
            ..p("L01-0004", "L01", "HP01", d2 + 9 * HOUR)
        },
    ];
    let path = dir.join("kakou.redb");
    let store = Store::open(&path).unwrap();
    for rec in recs {
        store.write(|tx| tx.put_passage(&rec.record())).unwrap();
    }
    path
}

/// The ids of a passage table (third column, after the date and time).
fn ids(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(2).unwrap().to_owned())
        .collect()
}

#[test]
fn passages_by_each_criterion_and_combined() {
    let dir = tempfile::tempdir().unwrap();
    let store = build_store(dir.path());
    let s = store.to_str().unwrap();

    let out = kakou(&["query", "passages", "--store", s, "--plate", "粤B12345"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "\
TIME                 ID        LANE  PLATE     CONTAINERS   OUTCOME  STATE    DECIDED BY
2026-11-28 08:00:00  L02-0002  L02   粤B12345  -            release  closed   weight-check@1.0.0
2026-11-27 11:00:00  L02-0001  L02   粤B12345  CSQU3054383  refuse   decided  weight-check@1.0.0
2026-11-27 08:00:00  L01-0001  L01   粤B12345  CSQU3054383  release  closed   weight-check@1.0.0
"
    );
    assert_eq!(
        text(&out.stderr),
        "3 passages (from 3 candidates via the plate index (粤B12345); times UTC+00:00)\n"
    );

    let cases: &[(&[&str], &[&str])] = &[
        (
            &[],
            &[
                "L01-0004", "L02-0002", "L02-0001", "L01-0003", "L01-0002", "L01-0001",
            ],
        ),
        (&["--container", "csqu3054383"], &["L02-0001", "L01-0001"]),
        (&["--station", "HP02"], &["L02-0002", "L02-0001"]),
        (
            &["--doc-type", "transit-release"],
            &["L01-0004", "L02-0001", "L01-0002", "L01-0001"],
        ),
        (&["--doc-number", "T1"], &["L02-0001", "L01-0001"]),
        (
            &["--doc-type", "customs_declaration", "--doc-number", "C9"],
            &["L01-0002"],
        ),
        (&["--lane", "L01", "--from", "2026-11-28"], &["L01-0004"]),
        (
            &[
                "--from",
                "2026-11-27T09:00:00Z",
                "--to",
                "2026-11-27T11:00:00Z",
            ],
            &["L01-0003", "L01-0002"],
        ),
        // A date as --to includes its whole day; 17:00 at +08:00 is 09:00Z.
        (
            &["--to", "2026-11-27", "--from", "2026-11-27T17:00:00+08:00"],
            &["L02-0001", "L01-0003", "L01-0002"],
        ),
        (&["--from", "1795824000000"], &["L01-0004", "L02-0002"]),
        (&["--outcome", "release"], &["L02-0002", "L01-0001"]),
        (&["--state", "Inspection"], &["L01-0002"]),
        (
            &[
                "--plate",
                "粤B12345",
                "--lane",
                "L02",
                "--outcome",
                "refuse",
            ],
            &["L02-0001"],
        ),
        (
            &[
                "--doc-number",
                "T1",
                "--station",
                "HP01",
                "--state",
                "closed",
            ],
            &["L01-0001"],
        ),
        (
            &["--doc-type", "transit-release", "--limit", "2"],
            &["L01-0004", "L02-0001"],
        ),
        (&["--container", "MSCU5520188", "--outcome", "release"], &[]),
    ];
    for (args, want) in cases {
        let mut all = vec!["query", "passages", "--store", s];
        all.extend_from_slice(args);
        let out = kakou(&all);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(ids(&text(&out.stdout)), *want, "{args:?}");
    }

    // The limit says when there is more; 0 lifts it.
    let out = kakou(&["query", "passages", "--store", s, "--limit", "2"]);
    assert!(text(&out.stderr).contains("more passages match: raise --limit"));
    let out = kakou(&["query", "passages", "--store", s, "--limit", "0"]);
    assert_eq!(ids(&text(&out.stdout)).len(), 6);
    assert!(!text(&out.stderr).contains("more passages match"));

    // Times print in the offset asked for.
    let table = ok(&[
        "query",
        "passages",
        "--store",
        s,
        "--lane",
        "L02",
        "--utc-offset",
        "+08:00",
    ]);
    assert!(table.contains("\n2026-11-28 16:00:00  L02-0002"), "{table}");
    assert!(table.contains("\n2026-11-27 19:00:00  L02-0001"), "{table}");

    // JSON lines: the records themselves.
    let json = ok(&[
        "query",
        "passages",
        "--store",
        s,
        "--station",
        "HP02",
        "--json",
    ]);
    let recs: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["passage"]["id"], "L02-0002");
    assert_eq!(recs[0]["manual_actions"][0]["who"], "op-9");
    assert_eq!(recs[1]["outcome"], "refuse");
    assert_eq!(recs[1]["documents"][0]["number"], "T1");
    let rec: PassageRecord = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(rec.passage.started_ms, DAY + 32 * HOUR);
}

#[test]
fn one_passage_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let store = build_store(dir.path());
    let s = store.to_str().unwrap();
    let out = ok(&["query", "passage", "--store", s, "L01-0002"]);
    assert_eq!(
        out,
        "\
passage     L01-0002
site        test-site (office 5201)
lane        L01 (category A, import, container cargo), station HP01
started     2026-11-27 09:00:00 (UTC+00:00)
decided at  2026-11-27 09:00:02
outcome     inspect
state       inspection
decided by  weight-check@1.0.0
documents   customs-declaration C9 (presented), transit-release T2 (matched)
record      created 2026-11-27 09:00:02, updated 2026-11-27 09:00:02
readings (4)
       AT  DEVICE      SOURCE  KIND       VALUE
  +0.000s  plate-cam   device  plate      粤B1234S yellow 90%          superseded
  +0.100s  op-7        manual  plate      粤BH3306 yellow 90%
  +0.200s  box-cam     device  container  MSCU5520188 22G1 single 92%
  +0.300s  doc-reader  device  document   customs-declaration C9
checks (2)
  RESULT  CODE              SUBJECT      REASON
  pass    weight.tare                    vehicle tare 15400 kg
  fail    weight.tolerance  MSCU5520188  14500 kg over the declaration
alarms: none
manual actions (1)
  TIME                 WHO   ACTION        NOTE
  2026-11-27 09:01:00  op-7  manual.plate  keyed at the booth
"
    );
    let json = ok(&["query", "passage", "--store", s, "L01-0003", "--json"]);
    let rec: PassageRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(rec.state, PassageState::Manual);
    assert_eq!(rec.passage.observations[1].source, Source::Backfill);

    let err = fails(&["query", "passage", "--store", s, "L09-0001"]);
    assert!(err.contains("no passage \"L09-0001\" in"), "{err}");
}

#[test]
fn transit_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let store = build_store(dir.path());
    let s = store.to_str().unwrap();
    assert_eq!(
        ok(&["stats", "transit", "--store", s]),
        "\
range     all passages
passages  5 (4 with documents); 1 cancelled, not counted
TYPE                 PASSAGES  DOCUMENTS
customs_declaration         1          1
local_clearance             1          1
transit_release             3          2
"
    );
    assert_eq!(
        ok(&["stats", "transit", "--store", s, "--by", "station"]),
        "\
range     all passages
passages  5 (4 with documents); 1 cancelled, not counted
STATION  PASSAGES  DOCUMENTS
HP01            3          4
HP02            1          1
"
    );
    assert_eq!(
        ok(&[
            "stats",
            "transit",
            "--store",
            s,
            "--by",
            "both",
            "--from",
            "2026-11-27",
            "--to",
            "2026-11-27",
        ]),
        "\
range     started from 2026-11-27 00:00:00 to 2026-11-28 00:00:00, end excluded (UTC+00:00)
passages  4 (4 with documents); 0 cancelled, not counted
TYPE                 STATION  PASSAGES  DOCUMENTS
customs_declaration  HP01            1          1
local_clearance      HP01            1          1
transit_release      HP01            2          2
transit_release      HP02            1          1
"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "stats",
        "transit",
        "--store",
        s,
        "--by",
        "type",
        "--from",
        "2026-11-28",
        "--json",
    ]))
    .unwrap();
    assert_eq!(json["range"]["from_ms"], DAY + 24 * HOUR);
    assert_eq!(json["range"]["to_ms"], serde_json::Value::Null);
    assert_eq!(json["by"], "kind");
    assert_eq!(json["passages"], 1);
    assert_eq!(json["cancelled"], 1);
    assert_eq!(json["rows"], serde_json::json!([]));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["stats", "transit", "--store", s, "--json"])).unwrap();
    assert_eq!(
        json["rows"][2],
        serde_json::json!({"kind": "transit_release", "passages": 3, "documents": 2})
    );
}

#[test]
fn efficiency_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let store = build_store(dir.path());
    let s = store.to_str().unwrap();
    assert_eq!(
        ok(&["stats", "efficiency", "--store", s]),
        "\
range     all passages
recognition rate per device
  LANE  DEVICE      KIND       NEEDED  READ  USED  KEYED    RATE
  L01   box-cam     container       3     2     2      1   66.7%
  L01   doc-reader  document        1     1     1      0  100.0%
  L01   plate-cam   plate           4     4     3      1   75.0%
  L02   box-cam     container       1     1     1      0  100.0%
  L02   plate-cam   plate           2     2     2      0  100.0%
manual-intervention ratio per lane per day (UTC+00:00)
  LANE  DAY         PASSAGES  MANUAL   RATIO
  L01   2026-11-27         3       2   66.7%
  L01   2026-11-28         1       0    0.0%
  L02   2026-11-27         1       0    0.0%
  L02   2026-11-28         1       1  100.0%
  all                      6       3   50.0%
"
    );
    // Nine hours west of UTC the first passage falls on the 26th and L02's two on the 27th.
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "stats",
        "efficiency",
        "--store",
        s,
        "--utc-offset",
        "-09:00",
        "--json",
    ]))
    .unwrap();
    assert_eq!(json["utc_offset"], "-09:00");
    let days: Vec<(String, String, u64, u64)> = json["manual"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["lane"].as_str().unwrap().to_owned(),
                m["day"].as_str().unwrap().to_owned(),
                m["passages"].as_u64().unwrap(),
                m["manual"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("L01", "2026-11-26", 1, 0),
        ("L01", "2026-11-27", 2, 2),
        ("L01", "2026-11-28", 1, 0),
        ("L02", "2026-11-27", 2, 1),
    ]
    .map(|(l, d, p, m)| (l.to_owned(), d.to_owned(), p, m));
    assert_eq!(days, want);
    assert_eq!(json["recognition"][2]["device"], "plate-cam");
    assert_eq!(json["recognition"][2]["rate"], 0.75);
    assert_eq!(json["manual_overall"]["ratio"], 0.5);
}

#[test]
fn outcome_statistics_and_queues() {
    let dir = tempfile::tempdir().unwrap();
    let store = build_store(dir.path());
    let s = store.to_str().unwrap();
    assert_eq!(
        ok(&["stats", "outcomes", "--store", s]),
        "\
range     all passages
outcomes per lane per day (UTC+00:00)
  LANE  DAY         RELEASE  MANUAL  INSPECT  REFUSE  UNDECIDED  TOTAL
  L01   2026-11-27        1       1        1       0          0      3
  L01   2026-11-28        0       0        0       0          1      1
  L02   2026-11-27        0       0        0       1          0      1
  L02   2026-11-28        1       0        0       0          0      1
  all                     2       1        1       1          1      6
inspection queue: 1 passage
  TIME                 ID        LANE  PLATE     CONTAINERS   OPEN CHECKS
  2026-11-27 09:00:00  L01-0002  L01   粤BH3306  MSCU5520188  weight.tolerance
manual queue: 1 passage
  TIME                 ID        LANE  PLATE     CONTAINERS   OPEN CHECKS
  2026-11-27 10:00:00  L01-0003  L01   粤B9F731  OOLU8812348  container.read
"
    );
    let out = ok(&["stats", "outcomes", "--store", s, "--from", "2026-11-28"]);
    assert!(
        out.ends_with("inspection queue: empty\nmanual queue: empty\n"),
        "{out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["stats", "outcomes", "--store", s, "--json"])).unwrap();
    assert_eq!(json["rows"][0]["inspect"], 1);
    assert_eq!(json["inspection_queue"][0]["id"], "L01-0002");
    assert_eq!(json["manual_queue"][0]["open_checks"][0], "container.read");
}

#[test]
fn bad_arguments_say_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let store = build_store(dir.path());
    let s = store.to_str().unwrap();

    let err = fails(&["query", "passages", "--store", s, "--outcome", "released"]);
    assert!(
        err.contains(
            "unknown outcome \"released\"; expected one of: release, manual, inspect, refuse"
        ),
        "{err}"
    );
    let err = fails(&["query", "passages", "--store", s, "--state", "waiting"]);
    assert!(
        err.contains("pending, decided, manual, inspection, inspected, closed, cancelled"),
        "{err}"
    );
    let err = fails(&["stats", "transit", "--store", s, "--from", "27/11/2026"]);
    assert!(err.contains("\"27/11/2026\" is not a time"), "{err}");
    assert!(
        err.contains("expected a date (2026-11-27), an RFC 3339 time"),
        "{err}"
    );
    let err = fails(&["stats", "outcomes", "--store", s, "--to", "2026-02-30"]);
    assert!(err.contains("no valid YYYY-MM-DD date"), "{err}");
    let err = fails(&[
        "stats",
        "efficiency",
        "--store",
        s,
        "--from",
        "2026-11-28",
        "--to",
        "2026-11-27",
    ]);
    assert!(
        err.contains(
            "--from (2026-11-28 00:00:00) is not before --to (2026-11-28 00:00:00, exclusive)"
        ),
        "{err}"
    );
    let err = fails(&["stats", "outcomes", "--store", s, "--utc-offset", "CST"]);
    assert!(
        err.contains("\"CST\" is not a UTC offset; expected Z, UTC, or ±HH:MM"),
        "{err}"
    );
    let err = fails(&["stats", "transit", "--store", s, "--by", "lane"]);
    assert!(
        err.contains("[possible values: type, station, both]"),
        "{err}"
    );
    let missing = dir.path().join("none.redb");
    let err = fails(&["stats", "transit", "--store", missing.to_str().unwrap()]);
    assert!(err.contains("none.redb"), "{err}");
}
