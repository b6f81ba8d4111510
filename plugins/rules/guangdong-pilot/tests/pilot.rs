//! The pilot's rules on their own: pass, fail and unknown of each, on two-plate and ordinary
//! vehicles.

use kakou_plugin_sdk::Rules;
use kakou_plugin_sdk::harness::Dataset;
use kakou_plugin_sdk::model::*;
use kakou_rules_guangdong_pilot::GuangdongPilot;

const NOW: i64 = 1_795_780_812_000;
const ZPLATE: &str = "粤Z1234港";
const ZTAG: &str = "E2000017221101441890BEEF";

fn world() -> Dataset {
    Dataset {
        vehicles: vec![
            Vehicle {
                plate: ZPLATE.into(),
                tag_epc: Some(ZTAG.into()),
                enterprise: "E4403001".into(),
                two_plate: true,
                foreign_plate: Some("KT8848".into()),
                customs_code: Some("HK5301234".into()),
                active: true,
                ..Default::default()
            },
            Vehicle {
                plate: "粤B12345".into(),
                enterprise: "E4403001".into(),
                active: true,
                ..Default::default()
            },
        ],
        drivers: vec![
            TruckDriver {
                id: "D1".into(),
                name: "Wong Ka Ming".into(),
                card_uid: "04A1B2C3D4".into(),
                enterprise: "E4403001".into(),
                vehicles: vec![ZPLATE.into()],
                active: true,
            },
            TruckDriver {
                id: "D2".into(),
                name: "Chen Wei".into(),
                card_uid: "04FFEEDD11".into(),
                enterprise: "E4403001".into(),
                vehicles: vec![],
                active: true,
            },
        ],
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

fn plate(text: &str) -> Observation {
    obs(Plate {
        text: text.into(),
        colour: PlateColour::Black,
        confidence: 95,
        ..Default::default()
    })
}

fn card(uid: &str) -> Observation {
    obs(Card {
        uid: uid.into(),
        ..Default::default()
    })
}

fn passage(direction: Direction, observations: Vec<Observation>) -> Passage {
    Passage {
        office: "5201".into(),
        lane: Lane {
            id: "L03".into(),
            direction,
            station: "HP01".into(),
            ..Default::default()
        },
        now_ms: NOW,
        observations,
        ..Default::default()
    }
}

fn entering() -> Passage {
    passage(
        Direction::Import,
        vec![
            plate(ZPLATE),
            obs(Tag {
                epc: ZTAG.into(),
                ..Default::default()
            }),
            card("04A1B2C3D4"),
        ],
    )
}

fn eval(p: &Passage, d: &Dataset) -> Verdict {
    GuangdongPilot::evaluate(p, &d.at(NOW)).expect("evaluates")
}

fn result(v: &Verdict, code: &str) -> Option<CheckResult> {
    v.checks.iter().find(|c| c.code == code).map(|c| c.result)
}

fn with_balance(mut d: Dataset, n: i32) -> Dataset {
    d.balances = vec![(ZPLATE.into(), n)];
    d
}

#[test]
fn a_balanced_two_plate_vehicle_with_its_driver_passes() {
    let v = eval(&entering(), &world());
    assert_eq!(v.outcome, Outcome::Release, "{v:#?}");
    let codes: Vec<(&str, CheckResult)> = v
        .checks
        .iter()
        .map(|c| (c.code.as_str(), c.result))
        .collect();
    assert_eq!(
        codes,
        [
            ("pilot.two-plate.plate", CheckResult::Pass),
            ("vehicle.customs-code", CheckResult::Pass),
            ("pilot.two-plate.balance", CheckResult::Pass),
            ("pilot.cross-border.driver-binding", CheckResult::Pass),
        ]
    );
    // And leaving again after that entry.
    let mut p = entering();
    p.lane.direction = Direction::Export;
    assert_eq!(
        eval(&p, &with_balance(world(), 1)).outcome,
        Outcome::Release
    );
}

#[test]
fn ordinary_vehicles_are_not_the_pilots_business() {
    let p = passage(
        Direction::Import,
        vec![plate("粤B12345"), card("04FFEEDD11")],
    );
    let v = eval(&p, &world());
    assert_eq!((v.outcome, v.checks.len()), (Outcome::Release, 0));
    // Nor are vehicles nobody can identify: the baseline reports those.
    let v = eval(&passage(Direction::Import, vec![]), &world());
    assert_eq!((v.outcome, v.checks.len()), (Outcome::Release, 0));
}

#[test]
fn a_second_open_entry_is_inspected_with_an_alarm() {
    let v = eval(&entering(), &with_balance(world(), 1));
    assert_eq!(v.outcome, Outcome::Inspect);
    assert_eq!(
        result(&v, "pilot.two-plate.balance"),
        Some(CheckResult::Fail)
    );
    assert_eq!(v.alarms.len(), 1);
    assert_eq!(
        v.alarms[0].message,
        "entering: two-plate vehicle 粤Z1234港 / KT8848 already has 1 open entry without an exit, and at most 1 may be open: its exit must be recorded (or written off) first"
    );

    // A site allowing two open entries lets it in.
    let mut d = with_balance(world(), 1);
    d.parameters
        .push(Setting::new("pilot.two-plate.max-open-entries", "2"));
    assert_eq!(eval(&entering(), &d).outcome, Outcome::Release);
    // And the outcome of a violation is the site's to set.
    let mut d = with_balance(world(), 1);
    d.parameters
        .push(Setting::new("check.pilot.two-plate.balance", "refuse"));
    assert_eq!(eval(&entering(), &d).outcome, Outcome::Refuse);
}

#[test]
fn an_exit_without_an_entry_is_inspected() {
    let mut p = entering();
    p.lane.direction = Direction::Export;
    for n in [0, -1] {
        let v = eval(&p, &with_balance(world(), n));
        assert_eq!(v.outcome, Outcome::Inspect, "{n}");
        assert_eq!(
            result(&v, "pilot.two-plate.balance"),
            Some(CheckResult::Fail)
        );
    }
}

#[test]
fn the_foreign_plate_counts_as_a_plate_read() {
    let mut p = entering();
    p.observations[0] = plate("KT8848");
    let v = eval(&p, &world());
    assert_eq!(v.outcome, Outcome::Release, "{v:#?}");
    assert_eq!(
        v.checks[0].message,
        "two-plate vehicle 粤Z1234港 / KT8848 read by its Hong Kong/Macau plate KT8848"
    );
}

#[test]
fn a_tag_alone_asks_for_the_plate_or_a_backfill() {
    let mut p = entering();
    p.observations.remove(0);
    let v = eval(&p, &world());
    assert_eq!(v.outcome, Outcome::Manual);
    assert_eq!(
        result(&v, "pilot.two-plate.plate"),
        Some(CheckResult::Unknown)
    );

    p.attributes.push(Setting::new("congestion-mode", "true"));
    let v = eval(&p, &world());
    assert_eq!(v.outcome, Outcome::Release, "{v:#?}");
    assert_eq!(v.alarms[0].code, "backfill.vehicle");
}

#[test]
fn a_plate_read_that_is_not_the_vehicles_fails() {
    let mut p = entering();
    p.observations[0] = plate("KZ0001");
    let v = eval(&p, &world());
    assert_eq!(result(&v, "pilot.two-plate.plate"), Some(CheckResult::Fail));
    assert_eq!(v.outcome, Outcome::Inspect);
}

#[test]
fn a_missing_customs_code_asks_for_a_backfill() {
    let mut d = world();
    d.vehicles[0].customs_code = None;
    let v = eval(&entering(), &d);
    assert_eq!(v.outcome, Outcome::Manual);
    assert_eq!(result(&v, "vehicle.customs-code"), Some(CheckResult::Fail));
}

#[test]
fn cross_border_drivers_must_be_bound() {
    let mut p = entering();
    p.observations[2] = card("04FFEEDD11");
    let v = eval(&p, &world());
    assert_eq!(v.outcome, Outcome::Inspect);
    assert_eq!(
        result(&v, "pilot.cross-border.driver-binding"),
        Some(CheckResult::Fail)
    );

    p.observations[2] = card("04DEADBEEF");
    let v = eval(&p, &world());
    assert_eq!(
        result(&v, "pilot.cross-border.driver-binding"),
        Some(CheckResult::Fail)
    );

    p.observations.remove(2);
    let v = eval(&p, &world());
    assert_eq!(v.outcome, Outcome::Manual);
    assert_eq!(
        result(&v, "pilot.cross-border.driver-binding"),
        Some(CheckResult::Unknown)
    );
}

#[test]
fn bad_parameters_are_errors() {
    for value in ["0", "one", "-1"] {
        let mut d = world();
        d.parameters
            .push(Setting::new("pilot.two-plate.max-open-entries", value));
        let e = GuangdongPilot::evaluate(&entering(), &d.at(NOW)).unwrap_err();
        assert!(e.contains("pilot.two-plate.max-open-entries"), "{e}");
    }
}

#[test]
fn describe_matches_the_manifest() {
    let d = GuangdongPilot::describe();
    assert_eq!(d.name, "guangdong-pilot");
    let manifest: toml::Table = toml::from_str(include_str!("../plugin.toml")).expect("parses");
    let plugin = manifest["plugin"].as_table().expect("[plugin]");
    assert_eq!(plugin["version"].as_str(), Some(d.version.as_str()));
    let codes: Vec<&str> = plugin["rule-codes"]
        .as_array()
        .expect("rule-codes")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert_eq!(codes, d.rule_codes);
    let keys: Vec<&str> = d.parameters.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "pilot.two-plate.max-open-entries",
            "check.pilot.two-plate.plate",
            "check.vehicle.customs-code",
            "check.pilot.two-plate.balance",
            "check.pilot.cross-border.driver-binding",
        ]
    );
}
