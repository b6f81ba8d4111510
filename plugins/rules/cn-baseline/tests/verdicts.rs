//! The composed verdicts of the national baseline: what the checks decide together, and that
//! the plugin says about itself what its manifest says.

use kakou_plugin_sdk::Rules;
use kakou_plugin_sdk::harness::Dataset;
use kakou_plugin_sdk::model::*;
use kakou_rules_cn_baseline::CnBaseline;

const NOW: i64 = 1_795_780_812_000;
const HOUR: i64 = 3_600_000;

fn world() -> Dataset {
    Dataset {
        enterprises: vec![Enterprise {
            code: "E4403001".into(),
            name: "Huayun Logistics".into(),
            status: EnterpriseStatus::Active,
        }],
        vehicles: vec![Vehicle {
            plate: "粤B12345".into(),
            tag_epc: Some("E2000017221101441890ABCD".into()),
            enterprise: "E4403001".into(),
            active: true,
            ..Default::default()
        }],
        drivers: vec![TruckDriver {
            id: "D1".into(),
            name: "Chen Wei".into(),
            card_uid: "04A1B2C3D4".into(),
            enterprise: "E4403001".into(),
            vehicles: vec![],
            active: true,
        }],
        stations: vec![Station {
            code: "HP01".into(),
            name: "Huangpu container yard".into(),
            office: "5201".into(),
            active: true,
        }],
        documents: vec![Document {
            kind: DocumentKind::TransitRelease,
            number: "T1".into(),
            direction: Direction::Import,
            cargo: CargoKind::Container,
            station: "HP01".into(),
            containers: vec!["CSQU3054383".into(), "TCNU7200794".into()],
            released_ms: Some(NOW - 5 * HOUR),
            destination_office: Some("5201".into()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn obs(reading: impl Into<Reading>) -> Observation {
    Observation {
        device: "d".into(),
        reading: reading.into(),
        ..Default::default()
    }
}

fn passage() -> Passage {
    Passage {
        office: "5201".into(),
        lane: Lane {
            id: "L01".into(),
            direction: Direction::Import,
            cargo: CargoKind::Container,
            station: "HP01".into(),
            ..Default::default()
        },
        now_ms: NOW,
        observations: vec![
            obs(Plate {
                text: "粤B12345".into(),
                confidence: 95,
                ..Default::default()
            }),
            obs(Tag {
                epc: "E2000017221101441890ABCD".into(),
                ..Default::default()
            }),
            obs(Container {
                number: "CSQU3054383".into(),
                position: ContainerPosition::Front,
                ..Default::default()
            }),
            obs(Container {
                number: "TCNU7200794".into(),
                position: ContainerPosition::Rear,
                ..Default::default()
            }),
            obs(Card {
                uid: "04A1B2C3D4".into(),
                ..Default::default()
            }),
        ],
        ..Default::default()
    }
}

fn eval(p: &Passage, d: &Dataset) -> Verdict {
    CnBaseline::evaluate(p, &d.at(p.now_ms)).expect("evaluates")
}

fn failed(v: &Verdict) -> Vec<&str> {
    let failed = v.checks.iter().filter(|c| c.result == CheckResult::Fail);
    failed.map(|c| c.code.as_str()).collect()
}

#[test]
fn two_containers_on_one_document_release() {
    let v = eval(&passage(), &world());
    assert_eq!(v.outcome, Outcome::Release, "{v:#?}");
    let count = |code: &str| v.checks.iter().filter(|c| c.code == code).count();
    // Per container: number, cover, control. Per document: station, lane, transit once.
    assert_eq!(
        (
            count("container.number"),
            count("container.document"),
            count("control.container")
        ),
        (2, 2, 2)
    );
    assert_eq!(
        (
            count("station.match"),
            count("lane.direction"),
            count("transit.time-limit")
        ),
        (1, 1, 1)
    );
}

#[test]
fn the_most_severe_outcome_wins() {
    let mut d = world();
    d.enterprises[0].status = EnterpriseStatus::Suspended;
    d.control_orders.push(ControlOrder {
        id: "BK-9".into(),
        subject_kind: SubjectKind::Container,
        subject: "TCNU7200794".into(),
        reason: "wanted by anti-smuggling bureau".into(),
        action: Outcome::Refuse,
        expires_ms: None,
    });
    let mut p = passage();
    p.observations.retain(|o| o.reading.value.kind() != "card");
    let v = eval(&p, &d);
    assert_eq!(v.outcome, Outcome::Refuse, "{v:#?}");
    assert_eq!(failed(&v), ["enterprise.status", "control.container"]);
    let unknown = v.checks.iter().filter(|c| c.result == CheckResult::Unknown);
    assert_eq!(
        unknown.map(|c| c.code.as_str()).collect::<Vec<_>>(),
        ["driver.card"]
    );
    assert_eq!(v.alarms.len(), 1);
    assert!(v.alarms[0].message.contains("BK-9"));
}

#[test]
fn legality_criteria_are_site_parameters() {
    let mut d = world();
    d.enterprises[0].status = EnterpriseStatus::Suspended;
    assert_eq!(eval(&passage(), &d).outcome, Outcome::Inspect);
    d.parameters
        .push(Setting::new("check.enterprise.status", "refuse"));
    assert_eq!(eval(&passage(), &d).outcome, Outcome::Refuse);
    d.parameters
        .push(Setting::new("check.enterprise.status", "release"));
    let v = eval(&passage(), &d);
    assert_eq!(
        (v.outcome, failed(&v)),
        (Outcome::Release, vec!["enterprise.status"])
    );
    d.parameters
        .push(Setting::new("check.enterprise.status", "off"));
    let v = eval(&passage(), &d);
    assert!(v.checks.iter().all(|c| c.code != "enterprise.status"));
}

#[test]
fn a_bad_parameter_is_an_evaluation_error() {
    let mut d = world();
    d.parameters
        .push(Setting::new("transit.time-limit-hours", "a day"));
    let e = CnBaseline::evaluate(&passage(), &d.at(NOW)).unwrap_err();
    assert!(e.starts_with("parameter `transit.time-limit-hours`"), "{e}");
}

#[test]
fn congestion_mode_releases_a_truck_with_missing_reads_on_a_presented_document() {
    let mut p = passage();
    p.observations
        .retain(|o| !matches!(o.reading.value.kind(), "container" | "plate" | "tag"));
    p.observations.push(obs(DocumentRef {
        kind: "transit-release".into(),
        number: "T1".into(),
    }));
    assert_eq!(eval(&p, &world()).outcome, Outcome::Manual);

    p.attributes.push(Setting::new("congestion-mode", "true"));
    let v = eval(&p, &world());
    assert_eq!(v.outcome, Outcome::Release, "{v:#?}");
    let mut alarms: Vec<&str> = v.alarms.iter().map(|a| a.code.as_str()).collect();
    alarms.sort();
    assert_eq!(alarms, ["backfill.container", "backfill.vehicle"]);

    // A transit past its limit still stops it.
    let mut d = world();
    d.documents[0].deadline_ms = Some(NOW - HOUR);
    let v = eval(&p, &d);
    assert_eq!(
        (v.outcome, failed(&v)),
        (Outcome::Inspect, vec!["transit.time-limit"])
    );
}

#[test]
fn describe_matches_the_manifest() {
    let d = CnBaseline::describe();
    assert_eq!(
        (d.name.as_str(), d.version.as_str()),
        ("cn-baseline", env!("CARGO_PKG_VERSION"))
    );
    let text = include_str!("../plugin.toml");
    let manifest: toml::Table = toml::from_str(text).expect("plugin.toml parses");
    let plugin = manifest["plugin"].as_table().expect("[plugin]");
    assert_eq!(plugin["version"].as_str(), Some(env!("CARGO_PKG_VERSION")));
    let codes: Vec<&str> = plugin["rule-codes"]
        .as_array()
        .expect("rule-codes")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert_eq!(codes, d.rule_codes);
    // Every code has its `check.<code>` parameter, every parameter a default.
    for code in &d.rule_codes {
        assert!(
            d.parameters
                .iter()
                .any(|p| p.key == format!("check.{code}")),
            "{code}"
        );
    }
    assert!(d.parameters.iter().all(|p| p.default_value.is_some()));
}
