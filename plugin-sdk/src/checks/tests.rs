//! Every check's pass, fail and unknown, on one small gate world held in a [`Dataset`].

use super::*;
use crate::harness::Dataset;
use crate::model::*;

const NOW: i64 = 1_795_780_812_000;
const HOUR: i64 = 3_600_000;
const BOX: &str = "CSQU3054383";
const PLATE: &str = "粤B12345";
const TAG: &str = "E2000017221101441890ABCD";
const CARD: &str = "04A1B2C3D4";
const TWO_PLATE: &str = "粤Z1234港";
const TWO_PLATE_TAG: &str = "E2000017221101441890BEEF";

fn world() -> Dataset {
    Dataset {
        enterprises: vec![
            Enterprise {
                code: "E4403001".into(),
                name: "Huayun Logistics".into(),
                status: EnterpriseStatus::Active,
            },
            Enterprise {
                code: "E4403002".into(),
                name: "Nanhai Haulage".into(),
                status: EnterpriseStatus::Suspended,
            },
            Enterprise {
                code: "E4403003".into(),
                name: "Pearl Freight".into(),
                status: EnterpriseStatus::Revoked,
            },
        ],
        vehicles: vec![
            Vehicle {
                plate: PLATE.into(),
                tag_epc: Some(TAG.into()),
                enterprise: "E4403001".into(),
                tare_kg: Some(15_000.0),
                active: true,
                ..Default::default()
            },
            Vehicle {
                plate: TWO_PLATE.into(),
                tag_epc: Some(TWO_PLATE_TAG.into()),
                enterprise: "E4403001".into(),
                two_plate: true,
                foreign_plate: Some("KT8848".into()),
                customs_code: Some("HK5301234".into()),
                active: true,
                ..Default::default()
            },
        ],
        drivers: vec![
            TruckDriver {
                id: "D001".into(),
                name: "Chen Wei".into(),
                card_uid: CARD.into(),
                enterprise: "E4403001".into(),
                vehicles: vec![],
                active: true,
            },
            TruckDriver {
                id: "D002".into(),
                name: "Li Na".into(),
                card_uid: "04FFEEDD11".into(),
                enterprise: "E4403001".into(),
                vehicles: vec![PLATE.into()],
                active: true,
            },
        ],
        stations: vec![
            Station {
                code: "HP01".into(),
                name: "Huangpu container yard".into(),
                office: "5201".into(),
                active: true,
            },
            Station {
                code: "HP02".into(),
                name: "Huangpu bulk yard".into(),
                office: "5201".into(),
                active: true,
            },
            Station {
                code: "HP09".into(),
                name: "Old yard".into(),
                office: "5201".into(),
                active: false,
            },
        ],
        documents: vec![Document {
            kind: DocumentKind::TransitRelease,
            number: "T1".into(),
            direction: Direction::Import,
            cargo: CargoKind::Container,
            station: "HP01".into(),
            containers: vec![BOX.into()],
            released_ms: Some(NOW - 10 * HOUR),
            origin_office: Some("5300".into()),
            destination_office: Some("5201".into()),
            status: DocumentStatus::Open,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn obs(reading: impl Into<Reading>) -> Observation {
    Observation {
        device: "d".into(),
        at_ms: NOW - 5_000,
        reading: reading.into(),
        ..Default::default()
    }
}

fn plate(text: &str) -> Observation {
    obs(Plate {
        text: text.into(),
        confidence: 95,
        ..Default::default()
    })
}

fn tag(epc: &str) -> Observation {
    obs(Tag {
        epc: epc.into(),
        antenna: 1,
        ..Default::default()
    })
}

fn container(number: &str) -> Observation {
    obs(Container {
        number: number.into(),
        iso_type: Some("22G1".into()),
        confidence: 90,
        ..Default::default()
    })
}

fn card(uid: &str) -> Observation {
    obs(Card {
        uid: uid.into(),
        kind: CardKind::Iso14443a,
    })
}

fn presented(number: &str) -> Observation {
    obs(DocumentRef {
        kind: "transit-release".into(),
        number: number.into(),
    })
}

/// A clean passage on an import container lane at station HP01, office 5201.
fn passage() -> Passage {
    Passage {
        id: "P1".into(),
        site: "gz-huangpu-01".into(),
        office: "5201".into(),
        lane: Lane {
            id: "L01".into(),
            category: LaneCategory::A,
            direction: Direction::Import,
            cargo: CargoKind::Container,
            station: "HP01".into(),
        },
        started_ms: NOW - 12_000,
        now_ms: NOW,
        observations: vec![plate(PLATE), tag(TAG), container(BOX), card(CARD)],
        attributes: vec![],
    }
}

fn without(mut p: Passage, kind: &str) -> Passage {
    p.observations.retain(|o| o.reading.value.kind() != kind);
    p
}

/// The passage with `number` as its only container.
fn with_container(p: Passage, number: &str) -> Passage {
    let mut p = without(p, "container");
    p.observations.push(container(number));
    p
}

/// The passage with `text` as its only plate.
fn with_plate(p: Passage, text: &str) -> Passage {
    let mut p = without(p, "plate");
    p.observations.push(plate(text));
    p
}

fn congested(mut p: Passage) -> Passage {
    p.attributes.push(Setting::new("congestion-mode", "true"));
    p
}

fn param(d: &mut Dataset, key: &str, value: &str) {
    d.parameters.push(Setting::new(key, value));
}

fn eval(rule: Rule, p: &Passage, d: &Dataset) -> Verdict {
    run(&[rule], p, &d.at(p.now_ms)).unwrap_or_else(|e| panic!("evaluation failed: {e}"))
}

/// The results recorded under `code`, in order.
fn results(v: &Verdict, code: &str) -> Vec<CheckResult> {
    v.checks
        .iter()
        .filter(|c| c.code == code)
        .map(|c| c.result)
        .collect()
}

fn message<'a>(v: &'a Verdict, code: &str) -> &'a str {
    v.checks
        .iter()
        .find(|c| c.code == code)
        .map_or("", |c| c.message.as_str())
}

use CheckResult::{Fail, Pass, Unknown};

// ---- policy ----

#[test]
fn failure_outcome_and_off_are_parameters() {
    let p = with_container(passage(), "CSQU3054384");
    let mut d = world();
    let v = eval(CONTAINER, &p, &d);
    assert_eq!(
        (v.outcome, results(&v, "container.number")),
        (Outcome::Inspect, vec![Fail])
    );

    param(&mut d, "check.container.number", "release");
    let v = eval(CONTAINER, &p, &d);
    assert_eq!(
        (v.outcome, results(&v, "container.number")),
        (Outcome::Release, vec![Fail])
    );

    param(&mut d, "check.container.number", " Refuse ");
    assert_eq!(eval(CONTAINER, &p, &d).outcome, Outcome::Refuse);

    param(&mut d, "check.container.number", "off");
    let v = eval(CONTAINER, &p, &d);
    assert!(results(&v, "container.number").is_empty(), "{v:?}");
    assert_eq!(v.outcome, Outcome::Release);
}

#[test]
fn unknown_never_weighs_more_than_a_failure() {
    let p = without(passage(), "card");
    let mut d = world();
    assert_eq!(eval(DRIVER, &p, &d).outcome, Outcome::Manual);
    param(&mut d, "check.driver.card", "release");
    let v = eval(DRIVER, &p, &d);
    assert_eq!(
        (v.outcome, results(&v, "driver.card")),
        (Outcome::Release, vec![Unknown])
    );
}

#[test]
fn bad_parameters_are_errors_naming_them() {
    let mut d = world();
    param(&mut d, "check.lane.cargo", "maybe");
    let e = run(&[LANE], &passage(), &d.at(NOW)).unwrap_err();
    assert_eq!(
        e,
        "parameter `check.lane.cargo` = \"maybe\": expected `release`, `manual`, `inspect`, `refuse` or `off`"
    );

    let mut d = world();
    param(&mut d, "check.control.vehicle", "off");
    let e = run(&[CONTROL], &passage(), &d.at(NOW)).unwrap_err();
    assert!(e.contains("cannot be switched off"), "{e}");

    for (key, value, rule) in [
        ("driver.require-vehicle-binding", "sometimes", DRIVER),
        (
            "container.accepted-documents",
            "transit-release,manifest",
            CONTAINER,
        ),
        ("transit.time-limit-hours", "-4", TRANSIT),
        ("transit.time-limit-hours", "two days", TRANSIT),
    ] {
        let mut d = world();
        param(&mut d, key, value);
        let e = run(&[rule], &passage(), &d.at(NOW)).unwrap_err();
        assert!(e.contains(key), "{key}: {e}");
    }
}

#[test]
fn describe_lists_every_code_and_parameter_once() {
    let all = [
        CONTAINER, VEHICLE, ENTERPRISE, DRIVER, STATION, LANE, TRANSIT, CONTROL, CONTAINER,
    ];
    let d = describe("x", "1.0.0", &all);
    assert_eq!(d.rule_codes.len(), 17, "{:?}", d.rule_codes);
    let default = |key: &str| {
        d.parameters
            .iter()
            .find(|s| s.key == key)
            .and_then(|s| s.default_value.clone())
    };
    assert_eq!(
        default("check.container.number").as_deref(),
        Some("inspect")
    );
    assert_eq!(default("check.control.driver").as_deref(), Some("release"));
    assert_eq!(default("transit.time-limit-hours").as_deref(), Some("48"));
    assert_eq!(
        default("driver.require-vehicle-binding").as_deref(),
        Some("false")
    );
    assert_eq!(d.parameters.len(), 17 + 3);
    for code in &d.rule_codes {
        assert!(default(&format!("check.{code}")).is_some(), "{code}");
    }
}

// ---- container ----

#[test]
fn container_pass() {
    let v = eval(CONTAINER, &passage(), &world());
    assert_eq!(v.outcome, Outcome::Release, "{v:?}");
    assert_eq!(results(&v, "container.number"), vec![Pass]);
    assert_eq!(results(&v, "container.document"), vec![Pass]);
    assert_eq!(
        message(&v, "container.document"),
        "open transit release T1 covers it"
    );
    assert_eq!(v.checks[0].subject.as_deref(), Some(BOX));
}

#[test]
fn container_number_fail() {
    let v = eval(
        CONTAINER,
        &with_container(passage(), "csqu 305438-4"),
        &world(),
    );
    assert_eq!(v.outcome, Outcome::Inspect);
    assert_eq!(results(&v, "container.number"), vec![Fail]);
    assert!(results(&v, "container.document").is_empty());
    assert_eq!(
        message(&v, "container.number"),
        "container number \"CSQU3054384\" is not valid: check digit mismatch: expected 3, found '4'"
    );
}

#[test]
fn container_document_fail_says_why() {
    let mut d = world();
    d.documents[0].status = DocumentStatus::Used;
    let v = eval(CONTAINER, &passage(), &d);
    assert_eq!(
        (v.outcome, results(&v, "container.document")),
        (Outcome::Inspect, vec![Fail])
    );
    assert_eq!(
        message(&v, "container.document"),
        "no usable release document: transit release T1 is already used"
    );

    let mut d = world();
    d.documents[0].kind = DocumentKind::CustomsDeclaration;
    let v = eval(CONTAINER, &passage(), &d);
    assert_eq!(
        message(&v, "container.document"),
        "no usable release document: T1 is a customs declaration, not an accepted release document"
    );
    param(
        &mut d,
        "container.accepted-documents",
        "transit-release, customs-declaration",
    );
    assert_eq!(
        results(&eval(CONTAINER, &passage(), &d), "container.document"),
        vec![Pass]
    );
}

#[test]
fn container_without_any_document_asks_an_operator() {
    // The release data may not have reached the gate yet: missing data, not a mismatch.
    let v = eval(
        CONTAINER,
        &with_container(passage(), "TCNU7200794"),
        &world(),
    );
    assert_eq!(
        (v.outcome, results(&v, "container.document")),
        (Outcome::Manual, vec![Unknown])
    );
    assert_eq!(
        message(&v, "container.document"),
        "no release document was found: download it or key in its number"
    );
}

#[test]
fn container_unknown_when_not_read() {
    let v = eval(CONTAINER, &without(passage(), "container"), &world());
    assert_eq!(v.outcome, Outcome::Manual, "{v:?}");
    assert_eq!(results(&v, "container.number"), vec![Unknown]);
    assert_eq!(results(&v, "container.document"), vec![Unknown]);
    assert!(v.alarms.is_empty());
}

#[test]
fn a_container_number_read_and_refused_is_named_with_why() {
    // As the host keeps it: superseded, with the reason in `misread`.
    let mut p = without(passage(), "container");
    let mut refused = container("MSKU1234566");
    refused.superseded = true;
    refused.reading.attributes.push(Setting::new(
        "misread",
        "check digit 6 does not match the computed 5",
    ));
    p.observations.push(refused);
    let v = eval(CONTAINER, &p, &world());
    assert_eq!(v.outcome, Outcome::Manual, "{v:?}");
    assert_eq!(
        message(&v, "container.number"),
        "no valid container number: read and refused MSKU1234566 (check digit 6 does not \
         match the computed 5): an operator keys it in"
    );
}

#[test]
fn congestion_releases_on_valid_documents_and_asks_for_backfill() {
    let mut p = congested(without(passage(), "container"));
    p.observations.push(presented("T1"));
    let v = eval(CONTAINER, &p, &world());
    assert_eq!(v.outcome, Outcome::Release, "{v:?}");
    assert_eq!(results(&v, "container.number"), vec![Unknown]);
    assert_eq!(results(&v, "container.document"), vec![Pass]);
    assert_eq!(v.alarms.len(), 1);
    assert_eq!(
        (v.alarms[0].code.as_str(), v.alarms[0].severity),
        ("backfill.container", Severity::Info)
    );
    assert!(
        v.alarms[0]
            .message
            .starts_with("backfill needed: no container number was read")
    );

    // Without a valid document congestion mode does not help.
    let v = eval(
        CONTAINER,
        &congested(without(passage(), "container")),
        &world(),
    );
    assert_eq!(v.outcome, Outcome::Manual);
    assert_eq!(results(&v, "container.document"), vec![Unknown]);
}

#[test]
fn bulk_lanes_need_a_document_naming_the_truck_or_presented() {
    let mut p = without(passage(), "container");
    p.lane.cargo = CargoKind::Bulk;
    let mut d = world();
    let v = eval(CONTAINER, &p, &d);
    assert_eq!(
        (v.outcome, results(&v, "bulk.document")),
        (Outcome::Manual, vec![Unknown])
    );
    assert!(results(&v, "container.number").is_empty());

    d.documents.push(Document {
        kind: DocumentKind::LocalClearance,
        number: "L7".into(),
        cargo: CargoKind::Bulk,
        station: "HP02".into(),
        plate: Some(PLATE.into()),
        ..Default::default()
    });
    let v = eval(CONTAINER, &p, &d);
    assert_eq!(
        (v.outcome, results(&v, "bulk.document")),
        (Outcome::Release, vec![Pass])
    );
    d.documents[1].status = DocumentStatus::WrittenOff;
    let v = eval(CONTAINER, &p, &d);
    assert_eq!(
        (v.outcome, results(&v, "bulk.document")),
        (Outcome::Inspect, vec![Fail])
    );
    d.documents[1].status = DocumentStatus::Open;

    let v = eval(CONTAINER, &without(without(p, "plate"), "tag"), &d);
    assert_eq!(
        (v.outcome, results(&v, "bulk.document")),
        (Outcome::Manual, vec![Unknown])
    );
}

#[test]
fn any_lane_expects_a_container_when_the_documents_are_for_containers() {
    let mut d = world();
    d.documents[0].plate = Some(PLATE.into());
    let mut p = without(passage(), "container");
    p.lane.cargo = CargoKind::Any;
    let v = eval(CONTAINER, &p, &d);
    assert_eq!(results(&v, "container.number"), vec![Unknown]);
    assert_eq!(results(&v, "container.document"), vec![Pass]);
    assert_eq!(v.outcome, Outcome::Manual);
}

// ---- vehicle ----

#[test]
fn vehicle_pass() {
    let v = eval(VEHICLE, &passage(), &world());
    assert_eq!(v.outcome, Outcome::Release, "{v:?}");
    assert_eq!(results(&v, "vehicle.registered"), vec![Pass]);
    assert_eq!(results(&v, "vehicle.tag-binding"), vec![Pass]);

    // Plate only (a B lane without RFID): no binding to check.
    let v = eval(VEHICLE, &without(passage(), "tag"), &world());
    assert_eq!(results(&v, "vehicle.registered"), vec![Pass]);
    assert!(results(&v, "vehicle.tag-binding").is_empty());
}

#[test]
fn vehicle_found_by_tag_and_foreign_plate() {
    let mut p = without(without(passage(), "plate"), "tag");
    p.observations.push(tag(&TWO_PLATE_TAG.to_lowercase()));
    p.observations.push(plate("KT8848"));
    let v = eval(VEHICLE, &p, &world());
    assert_eq!(v.outcome, Outcome::Release, "{v:?}");
    assert_eq!(
        message(&v, "vehicle.registered"),
        "vehicle 粤Z1234港 / KT8848 found by e-plate tag, registered to enterprise E4403001"
    );
    assert_eq!(results(&v, "vehicle.tag-binding"), vec![Pass]);
}

#[test]
fn vehicle_fail() {
    let p = without(passage(), "tag");
    let v = eval(VEHICLE, &with_plate(p.clone(), "粤B99999"), &world());
    assert_eq!(
        (v.outcome, results(&v, "vehicle.registered")),
        (Outcome::Inspect, vec![Fail])
    );
    assert_eq!(
        message(&v, "vehicle.registered"),
        "no registered vehicle has plate 粤B99999"
    );

    let mut d = world();
    d.vehicles[0].active = false;
    let v = eval(VEHICLE, &p, &d);
    assert_eq!(
        (v.outcome, results(&v, "vehicle.registered")),
        (Outcome::Inspect, vec![Fail])
    );
}

#[test]
fn tag_bound_to_another_vehicle_fails() {
    let mut p = without(passage(), "tag");
    p.observations.push(tag(TWO_PLATE_TAG));
    let v = eval(VEHICLE, &p, &world());
    assert_eq!(v.outcome, Outcome::Inspect);
    assert_eq!(results(&v, "vehicle.tag-binding"), vec![Fail]);
    assert_eq!(
        message(&v, "vehicle.tag-binding"),
        "e-plate tag E2000017221101441890BEEF is bound to 粤Z1234港 / KT8848, but the plate read is 粤B12345"
    );

    let mut p = without(passage(), "tag");
    p.observations.push(tag("E200AAAA"));
    let v = eval(VEHICLE, &p, &world());
    assert_eq!(results(&v, "vehicle.tag-binding"), vec![Fail]);
    assert_eq!(results(&v, "vehicle.registered"), vec![Pass]);
}

#[test]
fn vehicle_unknown_when_nothing_read() {
    let p = without(without(passage(), "plate"), "tag");
    let v = eval(VEHICLE, &p, &world());
    assert_eq!(
        (v.outcome, results(&v, "vehicle.registered")),
        (Outcome::Manual, vec![Unknown])
    );

    let v = eval(VEHICLE, &congested(p), &world());
    assert_eq!(
        (v.outcome, results(&v, "vehicle.registered")),
        (Outcome::Release, vec![Unknown])
    );
    assert_eq!(v.alarms[0].code, "backfill.vehicle");
}

// ---- enterprise ----

#[test]
fn enterprise_pass_fail_and_skip() {
    let v = eval(ENTERPRISE, &passage(), &world());
    assert_eq!(
        (v.outcome, results(&v, "enterprise.status")),
        (Outcome::Release, vec![Pass])
    );

    for (code, says) in [
        ("E4403002", "is suspended"),
        ("E4403003", "revoked"),
        ("E9999999", "is not registered"),
    ] {
        let mut d = world();
        d.vehicles[0].enterprise = code.into();
        let v = eval(ENTERPRISE, &passage(), &d);
        assert_eq!(
            (v.outcome, results(&v, "enterprise.status")),
            (Outcome::Inspect, vec![Fail])
        );
        assert!(message(&v, "enterprise.status").contains(says), "{v:?}");
        assert_eq!(v.checks[0].subject.as_deref(), Some(code));
    }

    // No vehicle identified: the vehicle check reports it; nothing to say about its enterprise.
    let v = eval(
        ENTERPRISE,
        &without(with_plate(passage(), "粤B99999"), "tag"),
        &world(),
    );
    assert!(v.checks.is_empty());
}

// ---- driver ----

#[test]
fn driver_pass() {
    let v = eval(DRIVER, &passage(), &world());
    assert_eq!(v.outcome, Outcome::Release, "{v:?}");
    assert_eq!(results(&v, "driver.card"), vec![Pass]);
    assert_eq!(results(&v, "driver.enterprise"), vec![Pass]);
    // Binding is a site rule, off by default.
    assert!(results(&v, "driver.vehicle-binding").is_empty());
}

#[test]
fn driver_fail() {
    let mut p = without(passage(), "card");
    p.observations.push(card("04DEADBEEF"));
    let v = eval(DRIVER, &p, &world());
    assert_eq!(
        (v.outcome, results(&v, "driver.card")),
        (Outcome::Inspect, vec![Fail])
    );
    assert_eq!(
        message(&v, "driver.card"),
        "IC card 04DEADBEEF is not registered to any driver"
    );

    let mut d = world();
    d.drivers[0].active = false;
    let v = eval(DRIVER, &passage(), &d);
    assert_eq!(results(&v, "driver.card"), vec![Fail]);

    let mut d = world();
    d.drivers[0].enterprise = "E4403002".into();
    let v = eval(DRIVER, &passage(), &d);
    assert_eq!(
        (v.outcome, results(&v, "driver.enterprise")),
        (Outcome::Inspect, vec![Fail])
    );
}

#[test]
fn driver_vehicle_binding_by_parameter() {
    let mut d = world();
    param(&mut d, "driver.require-vehicle-binding", "true");
    // D001 is bound to no vehicle.
    let v = eval(DRIVER, &passage(), &d);
    assert_eq!(
        (v.outcome, results(&v, "driver.vehicle-binding")),
        (Outcome::Inspect, vec![Fail])
    );
    // D002 is bound to 粤B12345.
    let mut p = without(passage(), "card");
    p.observations.push(card("04ffeedd11"));
    let v = eval(DRIVER, &p, &d);
    assert_eq!(
        (v.outcome, results(&v, "driver.vehicle-binding")),
        (Outcome::Release, vec![Pass])
    );
}

#[test]
fn driver_unknown_without_card() {
    let v = eval(DRIVER, &without(passage(), "card"), &world());
    assert_eq!(
        (v.outcome, results(&v, "driver.card")),
        (Outcome::Manual, vec![Unknown])
    );
    assert_eq!(v.checks.len(), 1);
}

// ---- station ----

#[test]
fn station_pass() {
    let v = eval(STATION, &passage(), &world());
    assert_eq!(v.outcome, Outcome::Release, "{v:?}");
    assert_eq!(results(&v, "station.registered"), vec![Pass]);
    assert_eq!(results(&v, "station.match"), vec![Pass]);
}

#[test]
fn station_fail() {
    let mut d = world();
    d.documents[0].station = "HP02".into();
    let v = eval(STATION, &passage(), &d);
    assert_eq!(v.outcome, Outcome::Inspect);
    assert_eq!(results(&v, "station.registered"), vec![Pass]);
    assert_eq!(results(&v, "station.match"), vec![Fail]);
    assert_eq!(
        message(&v, "station.match"),
        "T1 is for station HP02, but this gate serves station HP01"
    );

    for code in ["HP09", "HP77"] {
        let mut d = world();
        d.documents[0].station = code.into();
        let v = eval(STATION, &passage(), &d);
        assert_eq!(results(&v, "station.registered"), vec![Fail], "{code}");
    }
}

#[test]
fn station_unknown() {
    let mut p = passage();
    p.lane.station = String::new();
    let v = eval(STATION, &p, &world());
    assert_eq!(
        (v.outcome, results(&v, "station.match")),
        (Outcome::Manual, vec![Unknown])
    );

    let mut d = world();
    d.documents[0].station = String::new();
    let v = eval(STATION, &passage(), &d);
    assert_eq!(results(&v, "station.registered"), vec![Unknown]);

    // No usable document: nothing to compare (the document check says why).
    let mut d = world();
    d.documents.clear();
    assert!(eval(STATION, &passage(), &d).checks.is_empty());
}

// ---- lane ----

#[test]
fn lane_pass() {
    let v = eval(LANE, &passage(), &world());
    assert_eq!(v.outcome, Outcome::Release, "{v:?}");
    assert_eq!(results(&v, "lane.direction"), vec![Pass]);
    assert_eq!(results(&v, "lane.cargo"), vec![Pass]);

    let mut d = world();
    d.documents[0].cargo = CargoKind::Any;
    assert_eq!(
        results(&eval(LANE, &passage(), &d), "lane.cargo"),
        vec![Pass]
    );
    let mut p = passage();
    p.lane.cargo = CargoKind::Any;
    assert_eq!(results(&eval(LANE, &p, &world()), "lane.cargo"), vec![Pass]);
}

#[test]
fn lane_fail() {
    let mut d = world();
    d.documents[0].direction = Direction::Export;
    d.documents[0].cargo = CargoKind::Bulk;
    let v = eval(LANE, &passage(), &d);
    assert_eq!(v.outcome, Outcome::Inspect);
    assert_eq!(results(&v, "lane.direction"), vec![Fail]);
    assert_eq!(results(&v, "lane.cargo"), vec![Fail]);
    assert_eq!(
        message(&v, "lane.direction"),
        "transit release T1 is for export, but lane L01 is an import lane"
    );
}

#[test]
fn lane_without_documents_records_nothing() {
    let mut d = world();
    d.documents[0].status = DocumentStatus::Cancelled;
    assert!(eval(LANE, &passage(), &d).checks.is_empty());
}

// ---- transit ----

#[test]
fn transit_pass() {
    let v = eval(TRANSIT, &passage(), &world());
    assert_eq!(
        (v.outcome, results(&v, "transit.time-limit")),
        (Outcome::Release, vec![Pass])
    );
    assert_eq!(
        message(&v, "transit.time-limit"),
        "transit T1 arrived within 48 h from release, 10.0 h after release (38.0 h to spare)"
    );
}

#[test]
fn transit_fail() {
    let mut d = world();
    param(&mut d, "transit.time-limit-hours", "8");
    let v = eval(TRANSIT, &passage(), &d);
    assert_eq!(
        (v.outcome, results(&v, "transit.time-limit")),
        (Outcome::Inspect, vec![Fail])
    );
    assert_eq!(v.alarms[0].code, "transit.time-limit");
    assert_eq!(
        v.alarms[0].message,
        "transit T1 arrived 2.0 h past 8 h from release, 10.0 h after release"
    );

    // The deadline set at release binds, whatever the parameter says.
    let mut d = world();
    d.documents[0].deadline_ms = Some(NOW - HOUR);
    let v = eval(TRANSIT, &passage(), &d);
    assert_eq!(results(&v, "transit.time-limit"), vec![Fail]);
    assert!(message(&v, "transit.time-limit").contains("past the deadline set at release"));
}

#[test]
fn transit_unknown_and_not_applicable() {
    let mut d = world();
    d.documents[0].released_ms = None;
    let v = eval(TRANSIT, &passage(), &d);
    assert_eq!(
        (v.outcome, results(&v, "transit.time-limit")),
        (Outcome::Manual, vec![Unknown])
    );

    // Departure office, or not a transit: no time limit to judge here.
    let mut d = world();
    d.documents[0].destination_office = Some("5300".into());
    assert!(eval(TRANSIT, &passage(), &d).checks.is_empty());
    let mut d = world();
    d.documents[0].kind = DocumentKind::LocalClearance;
    assert!(eval(TRANSIT, &passage(), &d).checks.is_empty());
}

// ---- control orders ----

fn order(id: &str, kind: SubjectKind, subject: &str, action: Outcome) -> ControlOrder {
    ControlOrder {
        id: id.into(),
        subject_kind: kind,
        subject: subject.into(),
        reason: "intelligence tip-off".into(),
        action,
        expires_ms: None,
    }
}

#[test]
fn control_pass() {
    let v = eval(CONTROL, &passage(), &world());
    assert_eq!(v.outcome, Outcome::Release, "{v:?}");
    assert_eq!(results(&v, "control.container"), vec![Pass]);
    assert_eq!(results(&v, "control.vehicle"), vec![Pass]);
    // Driver: by id and by card, one entity.
    assert_eq!(results(&v, "control.driver"), vec![Pass]);
    assert_eq!(
        message(&v, "control.driver"),
        "no control order in force on driver D001 / 04A1B2C3D4"
    );
    assert!(v.alarms.is_empty());
}

#[test]
fn control_orders_raise_to_their_action_with_a_critical_alarm() {
    let mut d = world();
    d.control_orders = vec![order("BK-1", SubjectKind::Container, BOX, Outcome::Inspect)];
    let v = eval(CONTROL, &passage(), &d);
    assert_eq!(
        (v.outcome, results(&v, "control.container")),
        (Outcome::Inspect, vec![Fail])
    );
    assert_eq!(v.alarms.len(), 1);
    assert_eq!(v.alarms[0].severity, Severity::Critical);
    assert_eq!(
        v.alarms[0].message,
        "control order BK-1 on container CSQU3054383: intelligence tip-off (demands inspect)"
    );

    // On the foreign plate of a two-plate vehicle read by its tag, demanding refusal.
    let mut d = world();
    d.control_orders = vec![order(
        "BK-2",
        SubjectKind::Vehicle,
        "KT8848",
        Outcome::Refuse,
    )];
    let mut p = without(without(passage(), "plate"), "tag");
    p.observations.push(tag(TWO_PLATE_TAG));
    let v = eval(CONTROL, &p, &d);
    assert_eq!(
        (v.outcome, results(&v, "control.vehicle")),
        (Outcome::Refuse, vec![Fail])
    );

    // On the driver, demanding manual processing only; a site floor raises it.
    let mut d = world();
    d.control_orders = vec![order("BK-3", SubjectKind::Driver, "D001", Outcome::Manual)];
    assert_eq!(eval(CONTROL, &passage(), &d).outcome, Outcome::Manual);
    param(&mut d, "check.control.driver", "inspect");
    let v = eval(CONTROL, &passage(), &d);
    assert_eq!(v.outcome, Outcome::Inspect);
    assert_eq!(results(&v, "control.driver"), vec![Fail]);
}

#[test]
fn expired_orders_do_not_stop_the_truck() {
    let mut d = world();
    let mut o = order("BK-4", SubjectKind::Container, BOX, Outcome::Inspect);
    o.expires_ms = Some(NOW);
    d.control_orders = vec![o];
    assert_eq!(eval(CONTROL, &passage(), &d).outcome, Outcome::Release);
}

#[test]
fn control_orders_still_apply_to_presented_documents_in_congestion() {
    let mut d = world();
    d.control_orders = vec![order("BK-5", SubjectKind::Container, BOX, Outcome::Inspect)];
    let mut p = congested(without(passage(), "container"));
    p.observations.push(presented("T1"));
    let all = [CONTAINER, CONTROL];
    let v = run(&all, &p, &d.at(NOW)).expect("evaluates");
    assert_eq!(v.outcome, Outcome::Inspect, "{v:?}");
    assert_eq!(results(&v, "control.container"), vec![Fail]);
}

#[test]
fn control_unknown_subjects_are_not_checked() {
    // No readings at all: the read checks report the gaps; the control check has no subject.
    let p = Passage {
        now_ms: NOW,
        ..Default::default()
    };
    assert!(eval(CONTROL, &p, &world()).checks.is_empty());
}

// ---- all together ----

#[test]
fn a_clean_passage_passes_every_check() {
    let all = [
        CONTAINER, VEHICLE, ENTERPRISE, DRIVER, STATION, LANE, TRANSIT, CONTROL,
    ];
    let v = run(&all, &passage(), &world().at(NOW)).expect("evaluates");
    assert_eq!(v.outcome, Outcome::Release, "{v:#?}");
    assert!(v.checks.iter().all(|c| c.result == Pass), "{v:#?}");
    assert!(v.checks.iter().all(|c| c.subject.is_some()), "{v:#?}");
    assert_eq!(v.checks.len(), 15);
}
