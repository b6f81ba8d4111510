//! Site actions checked before they are written (a refused one writes nothing, in a real redb
//! file), carried out once per request id through a real store writer, control-order
//! subjects, keyed readings, and the shipped parameters against the catalogue.

use std::path::Path;

use kakou_plugin_sdk::model::{
    Card, CardKind, Container, ControlOrder, DocumentRef, Outcome, Plate, Reading, SubjectKind,
    Tag, Weight,
};

use super::*;
use crate::config::region::RuleSetManifest;
use crate::lane::site_catalog;

const NOW: i64 = 1_795_737_600_000;
const HOUR: i64 = 3_600_000;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn region(name: &str) -> RuleSetManifest {
    RuleSetManifest::load(&root().join(format!("manifests/regions/{name}.toml")))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn catalog() -> ParameterCatalog {
    site_catalog(&region("cn-baseline"), &["L01"])
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = Store::open(dir.path().join("kakou.redb")).expect("open store");
    (dir, s)
}

/// Everything the actions could have written: parameters, control orders, audit entries.
fn written(s: &Store) -> (usize, usize, usize) {
    let snap = s.snapshot().expect("snapshot");
    (
        snap.parameters().expect("parameters").len(),
        snap.control_orders().expect("orders").len(),
        snap.audit(1, 100).expect("audit").len(),
    )
}

fn set(name: &str, value: &str) -> SiteAction {
    SiteAction::SetParameter {
        name: name.into(),
        value: value.into(),
        reason: Some("test".into()),
    }
}

fn order(kind: SubjectKind, subject: &str) -> ControlOrder {
    ControlOrder {
        id: "CO-1".into(),
        subject_kind: kind,
        subject: subject.into(),
        reason: "risk alert".into(),
        action: Outcome::Inspect,
        expires_ms: None,
    }
}

#[test]
fn a_refused_site_action_writes_nothing() {
    let (_d, s) = store();
    let c = catalog();
    let expired = ControlOrder {
        expires_ms: Some(NOW - HOUR),
        ..order(SubjectKind::Container, "CSQU3054383")
    };
    let now = ControlOrder {
        expires_ms: Some(NOW),
        ..order(SubjectKind::Container, "CSQU3054383")
    };
    let release = ControlOrder {
        action: Outcome::Release,
        ..order(SubjectKind::Vehicle, "粤B12345")
    };
    let no_reason = ControlOrder {
        reason: " ".into(),
        ..order(SubjectKind::Vehicle, "粤B12345")
    };
    let no_id = ControlOrder {
        id: "".into(),
        ..order(SubjectKind::Vehicle, "粤B12345")
    };
    let cases: Vec<(SiteAction, &str)> = vec![
        (
            set("weight.tolerance-percent", "two"),
            "parameter `weight.tolerance-percent` = \"two\": not a decimal number; expected a decimal number from 0 to 100 %",
        ),
        (
            set("weight.tolerance-percent", "250"),
            "parameter `weight.tolerance-percent` = \"250\": out of range",
        ),
        (
            set("weight.tolerance-percnt", "2"),
            "unknown parameter `weight.tolerance-percnt` (did you mean `weight.tolerance-percent`?)",
        ),
        (
            set("check.control.vehicle", "off"),
            "expected one of release, manual, inspect, refuse (default \"release\"",
        ),
        (
            set("lane.L01.direction", "sideways"),
            "expected one of import, export (declared by lane L01 of the site manifest)",
        ),
        (
            set("lane.L02.cargo", "bulk"),
            "unknown parameter `lane.L02.cargo` (did you mean `lane.L01.cargo`?)",
        ),
        (
            SiteAction::ControlOrder {
                order: order(SubjectKind::Container, "CSQU3054384"),
            },
            "control order CO-1: container \"CSQU3054384\" is not an ISO 6346 container number: check digit mismatch: expected 3, found '4'",
        ),
        (
            SiteAction::ControlOrder {
                order: order(SubjectKind::Vehicle, "粤S12"),
            },
            "control order CO-1: vehicle \"粤S12\" is not a mainland plate: plate has 4 characters, expected 7 (8 for new energy)",
        ),
        (
            SiteAction::ControlOrder {
                order: order(SubjectKind::Driver, "  "),
            },
            "control order CO-1: driver \"  \" is not a driver id or card UID: the driver id or card UID is empty",
        ),
        (
            SiteAction::ControlOrder { order: expired },
            "control order CO-1: its expiry 2026-11-26 23:00:00 UTC is not in the future (now 2026-11-27 00:00:00 UTC)",
        ),
        (
            SiteAction::ControlOrder { order: now },
            "is not in the future",
        ),
        (
            SiteAction::ControlOrder { order: release },
            "control order CO-1: an order demands manual, inspect or refuse; to let a subject pass, revoke its order",
        ),
        (
            SiteAction::ControlOrder { order: no_reason },
            "control order CO-1: the reason is empty",
        ),
        (
            SiteAction::ControlOrder { order: no_id },
            "a control order needs an id",
        ),
    ];
    let mut wrong = Vec::new();
    for (action, want) in &cases {
        match apply_site_action(&s, &c, "O-17", action, NOW) {
            Err(e) if e.to_string().contains(want) => {}
            other => wrong.push(format!("{action:?}\n  expected {want}\n  got {other:?}")),
        }
        assert_eq!(written(&s), (0, 0, 0), "{action:?} wrote something");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn an_accepted_site_action_is_stored_normalised_and_audited() {
    let (_d, s) = store();
    let c = catalog();
    let said =
        apply_site_action(&s, &c, "O-17", &set("lane.L01.congestion", "on"), NOW).expect("set");
    assert_eq!(
        said,
        "parameter lane.L01.congestion = \"true\" (version 1, given as \"on\")"
    );
    let said = apply_site_action(&s, &c, "O-17", &set("lane.L01.congestion", "yes"), NOW)
        .expect("set again");
    assert_eq!(
        said,
        "parameter lane.L01.congestion is already \"true\", given as \"yes\""
    );
    apply_site_action(
        &s,
        &c,
        "O-17",
        &set("weight.tolerance-percent", "2.50"),
        NOW,
    )
    .expect("set");
    let said = apply_site_action(
        &s,
        &c,
        "O-17",
        &SiteAction::ControlOrder {
            order: ControlOrder {
                expires_ms: Some(NOW + HOUR),
                ..order(SubjectKind::Container, " csqu 305438-3 ")
            },
        },
        NOW,
    )
    .expect("order");
    assert_eq!(
        said,
        "control order CO-1 on container CSQU3054383 in force: risk alert"
    );
    let snap = s.snapshot().expect("snapshot");
    let stored: Vec<(String, String)> = snap
        .parameters()
        .expect("parameters")
        .into_iter()
        .map(|p| (p.name, p.value))
        .collect();
    assert_eq!(
        stored,
        [
            ("lane.L01.congestion".to_owned(), "true".to_owned()),
            ("weight.tolerance-percent".to_owned(), "2.5".to_owned())
        ]
    );
    let orders = snap.control_orders().expect("orders");
    assert_eq!(orders[0].order.subject, "CSQU3054383");
    assert_eq!(orders[0].issued_by, "O-17");
    let audit: Vec<String> = snap
        .audit(1, 100)
        .expect("audit")
        .into_iter()
        .map(|a| a.entry.action)
        .collect();
    assert_eq!(
        audit,
        ["parameter.set", "parameter.set", "control-order.create"]
    );
}

fn request(action: SiteAction) -> SiteRequest {
    SiteRequest {
        operator: "O-17".into(),
        action,
        reply_to: None,
    }
}

#[tokio::test]
async fn a_site_request_sent_again_acts_once_and_gets_its_first_answer() {
    let (_d, s) = store();
    let w = Writer::spawn(s.clone()).expect("writer");
    let c = catalog();
    let on = request(set("lane.L01.congestion", "on"));
    let first = answer_site_request(&s, &w, &c, "cli-1", &on, NOW).await;
    assert!(!first.repeat);
    assert!(first.reply.ok, "{}", first.reply.message);
    assert_eq!(first.reply.request, "cli-1");
    assert_eq!(
        first.reply.message,
        "parameter lane.L01.congestion = \"true\" (version 1, given as \"on\")"
    );
    // The resend, later: the first answer, nothing done.
    let again = answer_site_request(&s, &w, &c, "cli-1", &on, NOW + HOUR).await;
    assert!(again.repeat);
    assert_eq!(again.reply, first.reply);
    assert_eq!(written(&s), (1, 0, 1));
    // The same action under another id is another request.
    let other = answer_site_request(&s, &w, &c, "cli-2", &on, NOW + HOUR).await;
    assert!(!other.repeat);
    assert_eq!(
        other.reply.message,
        "parameter lane.L01.congestion is already \"true\", given as \"on\""
    );
    let stored = s
        .snapshot()
        .expect("snapshot")
        .request_answer_as::<OperatorReply>("cli-1")
        .expect("read")
        .expect("kept");
    assert_eq!(stored, first.reply);
}

#[tokio::test]
async fn copies_of_a_site_request_handled_at_once_act_once() {
    let (_d, s) = store();
    let w = Writer::spawn(s.clone()).expect("writer");
    let c = catalog();
    let put = request(SiteAction::ControlOrder {
        order: order(SubjectKind::Vehicle, "粤B12345"),
    });
    let (a, b) = tokio::join!(
        answer_site_request(&s, &w, &c, "cli-1", &put, NOW),
        answer_site_request(&s, &w, &c, "cli-1", &put, NOW),
    );
    assert!(a.reply.ok, "{}", a.reply.message);
    assert_eq!(a.reply, b.reply);
    assert_eq!(
        [a.repeat, b.repeat].iter().filter(|r| !**r).count(),
        1,
        "one copy acted: {a:?} {b:?}"
    );
    assert_eq!(written(&s), (0, 1, 1), "one order, one audit entry");
}

#[tokio::test]
async fn a_refused_site_request_is_refused_again_with_its_first_reason() {
    let (_d, s) = store();
    let w = Writer::spawn(s.clone()).expect("writer");
    let l02 = request(set("lane.L02.cargo", "bulk"));
    let first = answer_site_request(&s, &w, &catalog(), "cli-1", &l02, NOW).await;
    assert!(!first.reply.ok && !first.repeat);
    assert!(
        first
            .reply
            .message
            .starts_with("unknown parameter `lane.L02.cargo`"),
        "{}",
        first.reply.message
    );
    // Lane L02 has been added to the site since; the copy is still the request refused.
    let now_known = site_catalog(&region("cn-baseline"), &["L01", "L02"]);
    let again = answer_site_request(&s, &w, &now_known, "cli-1", &l02, NOW).await;
    assert!(again.repeat);
    assert_eq!(again.reply, first.reply);
    assert_eq!(written(&s), (0, 0, 0));
    // Sent anew (another id), it is carried out.
    let anew = answer_site_request(&s, &w, &now_known, "cli-2", &l02, NOW).await;
    assert!(anew.reply.ok, "{}", anew.reply.message);
    assert_eq!(written(&s), (1, 0, 1));
}

#[test]
fn control_order_subjects_are_normalised_as_the_lanes_match_them() {
    let cases = [
        (SubjectKind::Container, "tcnu 720079-4", "TCNU7200794"),
        (SubjectKind::Vehicle, " 粤b 12345 ", "粤B12345"),
        (SubjectKind::Vehicle, "粤Z1234港", "粤Z1234港"),
        (SubjectKind::Driver, " d9001 ", "D9001"),
        (SubjectKind::Driver, "62:e3:08:6c:ed", "62E3086CED"),
    ];
    for (kind, given, want) in cases {
        let o = check_control_order(&order(kind, given), NOW)
            .unwrap_or_else(|e| panic!("{given:?}: {e}"));
        assert_eq!(o.subject, want, "{given:?}");
    }
}

fn keyed(value: impl Into<Reading>) -> Vec<Reading> {
    vec![value.into()]
}

fn container(number: &str) -> Reading {
    Container {
        number: number.into(),
        confidence: 100,
        ..Default::default()
    }
    .into()
}

fn plate(text: &str) -> Reading {
    Plate {
        text: text.into(),
        confidence: 100,
        ..Default::default()
    }
    .into()
}

fn weight(kg: f64) -> Reading {
    Weight {
        kg,
        stable: true,
        ..Default::default()
    }
    .into()
}

fn card(uid: &str) -> Reading {
    Card {
        uid: uid.into(),
        kind: CardKind::Other,
    }
    .into()
}

#[test]
fn keyed_readings_are_refused_with_the_reason() {
    let cases: Vec<(Vec<Reading>, &str)> = vec![
        (
            keyed(container("CSQU3054384")),
            "container number \"CSQU3054384\": check digit mismatch: expected 3, found '4'; read the number off the box again (a wrong check digit usually means another character was misread)",
        ),
        (
            keyed(container("CSQ305438")),
            "container number \"CSQ305438\": container number has 9 characters, expected 11; read the number off the box again (a wrong check digit usually means another character was misread)",
        ),
        (
            keyed(plate("粤S12")),
            "plate \"粤S12\": plate has 4 characters, expected 7 (8 for new energy)",
        ),
        (keyed(plate("")), "plate \"\": plate is empty"),
        (
            keyed(card(" ")),
            "the card UID is empty: key in the UID the reader shows or that is printed on the card",
        ),
        (
            keyed(card("XYZ")),
            "card \"XYZ\": \"XYZ\" is not a card UID: 8 to 32 hexadecimal digits, an even number",
        ),
        (
            keyed(Tag {
                epc: "E2".into(),
                ..Default::default()
            }),
            "tag \"E2\": \"E2\" is not an EPC: 8 to 64 hexadecimal digits, an even number",
        ),
        (
            keyed(weight(-37_200.0)),
            "weight -37200 kg: expected a gross weight above 0 and at most 150000 kg, in kg (not tonnes)",
        ),
        (
            keyed(weight(0.0)),
            "weight 0 kg: expected a gross weight above 0",
        ),
        (
            keyed(weight(3_720_000.0)),
            "weight 3720000 kg: expected a gross weight above 0 and at most 150000 kg",
        ),
        (keyed(weight(f64::NAN)), "weight NaN kg"),
        (
            keyed(DocumentRef {
                kind: "transit-release".into(),
                number: " ".into(),
            }),
            "document \"transit-release\":\" \": both the kind and the number are needed",
        ),
        (
            vec![
                plate("粤B12345"),
                container("CSQU3054383"),
                container("TCNU7200795"),
            ],
            "container number \"TCNU7200795\": check digit mismatch: expected 4, found '5'",
        ),
    ];
    let mut wrong = Vec::new();
    for (readings, want) in &cases {
        match validate_keyed(readings) {
            Err(e) if e.to_string().starts_with(want) => {}
            other => wrong.push(format!("{readings:?}\n  expected {want}\n  got {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn good_keyed_readings_pass() {
    let readings = vec![
        container(" csqu 305438-3"),
        plate("粤B12345"),
        plate("粤Z1234港"),
        weight(37_350.0),
        card("62e3086ced"),
        DocumentRef {
            kind: "local-clearance".into(),
            number: "L520120261127000112".into(),
        }
        .into(),
    ];
    assert_eq!(validate_keyed(&readings), Ok(()));
    assert_eq!(validate_keyed(&[]), Ok(()));
}

#[test]
fn every_shipped_parameter_fits_the_catalogue() {
    // The region files' own defaults: each one validates, and is already canonical.
    for name in ["cn-baseline", "guangdong-pilot"] {
        let r = region(name);
        let c = site_catalog(&r, &["L01"]);
        assert!(!r.parameters.is_empty());
        for (k, v) in &r.parameters {
            let n = c
                .validate(k, v)
                .unwrap_or_else(|e| panic!("{name}: {k} = {v:?}: {e}"));
            assert_eq!(&n.value, v, "{name}: {k} is not written canonically");
        }
    }
    // The sample platform data: every parameter record, against both rule sets.
    let text = std::fs::read_to_string(root().join("manifests/data/sample.jsonl"))
        .expect("manifests/data/sample.jsonl");
    let mut seen = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        if v["kind"] != "parameter" {
            continue;
        }
        seen += 1;
        let (k, value) = (
            v["name"].as_str().expect("name"),
            v["value"].as_str().expect("value"),
        );
        for name in ["cn-baseline", "guangdong-pilot"] {
            let n = site_catalog(&region(name), &["L01"])
                .validate(k, value)
                .unwrap_or_else(|e| panic!("sample.jsonl on {name}: {e}"));
            assert_eq!(
                n.value, value,
                "sample.jsonl: {k} is not written canonically"
            );
        }
    }
    assert_eq!(seen, 8);
}
