//! Unit tests of the store: every table and index, counters, migration, refusal of newer
//! files, integrity check, backup, export and the look-ups rules see.

use std::path::{Path, PathBuf};

use kakou_plugin_sdk::Lookups;
use kakou_plugin_sdk::model::*;
use redb::ReadableTable;

use super::schema::*;
use super::*;

const DAY: i64 = 1_795_737_600_000;

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kakou.redb");
    (dir, path)
}

fn store() -> (tempfile::TempDir, Store) {
    let (dir, path) = temp();
    let s = Store::open(&path).expect("open store");
    (dir, s)
}

fn clean(s: &Store) {
    let report = s.snapshot().expect("snapshot").check().expect("check");
    assert!(report.is_clean(), "check found: {:#?}", report.problems);
}

fn put(s: &Store, rec: &PassageRecord) {
    s.write(|tx| tx.put_passage(rec)).expect("put passage");
}

fn ids(recs: &[PassageRecord]) -> Vec<&str> {
    recs.iter().map(|r| r.id()).collect()
}

/// A passage with one plate and the given containers and presented documents.
fn passage(
    id: &str,
    lane: &str,
    dir: Direction,
    at: i64,
    plate: &str,
    boxes: &[&str],
) -> PassageRecord {
    let mut observations = vec![Observation {
        device: "plate-cam".into(),
        at_ms: at,
        reading: Reading::from(Plate {
            text: plate.into(),
            confidence: 90,
            ..Default::default()
        }),
        ..Default::default()
    }];
    for b in boxes {
        observations.push(Observation {
            device: "box-cam".into(),
            at_ms: at,
            reading: Reading::from(Container {
                number: (*b).into(),
                confidence: 90,
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    PassageRecord::new(
        Passage {
            id: id.into(),
            lane: Lane {
                id: lane.into(),
                direction: dir,
                station: "HP01".into(),
                ..Default::default()
            },
            started_ms: at,
            now_ms: at,
            observations,
            ..Default::default()
        },
        at,
    )
}

fn decided(mut r: PassageRecord, outcome: Outcome) -> PassageRecord {
    r.outcome = Some(outcome);
    r.state = PassageState::Decided;
    r
}

#[test]
fn new_store_has_every_table_and_the_current_schema() {
    let (_d, s) = store();
    let snap = s.snapshot().expect("snapshot");
    assert_eq!(
        snap.schema_version().expect("version"),
        Some(SCHEMA_VERSION)
    );
    let counts = snap.counts().expect("counts");
    let names: Vec<&str> = counts.iter().map(|(n, _)| *n).collect();
    for t in TABLES {
        assert!(names.contains(t), "{t} missing from {names:?}");
    }
    assert_eq!(counts.len(), TABLES.len());
    clean(&s);
}

#[test]
fn passages_are_found_by_every_index_and_reindexed_on_change() {
    let (_d, s) = store();
    let a = passage(
        "P1",
        "L01",
        Direction::Import,
        DAY,
        "粤B12345",
        &["CSQU3054383"],
    );
    let mut b = passage(
        "P2",
        "L01",
        Direction::Import,
        DAY + 60_000,
        "粤B12345",
        &["TCNU7200794"],
    );
    b.documents.push(DocumentRef {
        kind: "transit-release".into(),
        number: "T1".into(),
    });
    let c = passage(
        "P3",
        "L02",
        Direction::Export,
        DAY + 120_000,
        "粤A3D5F7",
        &["CSQU3054383", "GYOU4047990"],
    );
    for r in [&a, &b, &c] {
        put(&s, r);
    }
    assert_eq!(
        ids(&s.passages_by_container("csqu 305438-3").expect("q")),
        ["P1", "P3"]
    );
    assert_eq!(
        ids(&s.passages_by_plate("粤B·12345").expect("q")),
        ["P1", "P2"]
    );
    assert_eq!(
        ids(&s.passages_by_station("HP01").expect("q")),
        ["P1", "P2", "P3"]
    );
    assert_eq!(
        ids(&s.passages_by_document("transit_release", "T1").expect("q")),
        ["P2"]
    );
    assert_eq!(
        ids(&s.passages_by_document("Transit-Release", "T1").expect("q")),
        ["P2"]
    );
    assert_eq!(
        ids(&s
            .passages_by_lane_between("L01", DAY, DAY + 60_000)
            .expect("q")),
        ["P1", "P2"]
    );
    assert_eq!(
        ids(&s
            .passages_by_lane_between("L01", DAY + 1, DAY + 60_000)
            .expect("q")),
        ["P2"]
    );
    assert!(
        s.passages_by_lane_between("L01", DAY + 1, DAY)
            .expect("q")
            .is_empty()
    );
    assert_eq!(
        ids(&s
            .passages_by_lane_between("L02", i64::MIN, i64::MAX)
            .expect("q")),
        ["P3"]
    );
    assert!(
        s.passages_by_container("MSKU1234565")
            .expect("q")
            .is_empty()
    );
    assert_eq!(s.passage("P2").expect("get").as_ref(), Some(&b));
    assert_eq!(
        s.snapshot().expect("snap").passage_count().expect("count"),
        3
    );

    // An operator corrects P3's second box and the plate; P3 moves in the indexes.
    let after = s
        .write(|tx| {
            tx.manual_update(
                "P3",
                ManualAction {
                    who: "op-7".into(),
                    at_ms: DAY + 130_000,
                    action: "backfill.container".into(),
                    note: Some("MSKU1234565".into()),
                },
                |r| {
                    for o in &mut r.passage.observations {
                        if let ReadingValue::Container(c) = &mut o.reading.value
                            && c.number == "GYOU4047990"
                        {
                            c.number = "MSKU1234565".into();
                        }
                    }
                    r.vehicle = Some("粤B77Q02".into());
                },
            )
        })
        .expect("manual update");
    assert_eq!(after.manual_actions.len(), 1);
    assert_eq!(after.updated_ms, DAY + 130_000);
    assert!(
        s.passages_by_container("GYOU4047990")
            .expect("q")
            .is_empty()
    );
    assert_eq!(
        ids(&s.passages_by_container("MSKU1234565").expect("q")),
        ["P3"]
    );
    assert_eq!(ids(&s.passages_by_plate("粤B77Q02").expect("q")), ["P3"]);
    assert_eq!(
        ids(&s.passages_by_plate("粤A3D5F7").expect("q")),
        ["P3"],
        "the plate read stays"
    );
    let audit = s.snapshot().expect("snap").audit(1, 10).expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].entry.action, "passage.backfill.container");
    assert!(audit[0].entry.before.is_some() && audit[0].entry.after.is_some());

    // A new start time and lane move every entry.
    let mut moved = s.passage("P1").expect("get").expect("P1");
    moved.passage.started_ms = DAY + 999;
    moved.passage.lane.id = "L03".into();
    moved.passage.lane.station = String::new();
    put(&s, &moved);
    assert!(
        s.passages_by_lane_between("L01", DAY, DAY)
            .expect("q")
            .is_empty()
    );
    assert_eq!(
        ids(&s
            .passages_by_lane_between("L03", DAY + 999, DAY + 999)
            .expect("q")),
        ["P1"]
    );
    assert_eq!(
        ids(&s.passages_by_station("HP01").expect("q")),
        ["P2", "P3"]
    );
    assert_eq!(
        ids(&s.passages_by_container("CSQU3054383").expect("q")),
        ["P1", "P3"]
    );
    clean(&s);
}

#[test]
fn passage_ids_must_be_clean() {
    let (_d, s) = store();
    let r = passage(" P1", "L01", Direction::Import, DAY, "粤B12345", &[]);
    let e = s.write(|tx| tx.put_passage(&r)).expect_err("refused");
    assert!(e.to_string().contains("table `passages`"), "{e}");
    assert!(e.to_string().contains("kakou.redb"), "{e}");
}

#[test]
fn a_failed_transaction_writes_nothing() {
    let (_d, s) = store();
    let r = passage(
        "P1",
        "L01",
        Direction::Import,
        DAY,
        "粤B12345",
        &["CSQU3054383"],
    );
    let out: Result<(), StoreError> = s.write(|tx| {
        tx.put_passage(&r)?;
        tx.outbox_push(&OutboxMessage::new("t", b"x".to_vec(), DAY))?;
        Err(StoreError::ReadOnly {
            path: PathBuf::from("caller gave up"),
        })
    });
    assert!(out.is_err());
    assert!(s.passage("P1").expect("get").is_none());
    assert!(
        s.passages_by_container("CSQU3054383")
            .expect("q")
            .is_empty()
    );
    assert!(s.outbox_pending(10).expect("outbox").is_empty());
}

#[test]
fn balances_count_released_entries_minus_exits() {
    let (_d, s) = store();
    let plate = "粤Z1234港";
    put(
        &s,
        &decided(
            passage("in1", "L01", Direction::Import, DAY, plate, &[]),
            Outcome::Release,
        ),
    );
    put(
        &s,
        &decided(
            passage("in2", "L01", Direction::Import, DAY + 1, plate, &[]),
            Outcome::Release,
        ),
    );
    put(
        &s,
        &decided(
            passage("out1", "L02", Direction::Export, DAY + 2, plate, &[]),
            Outcome::Release,
        ),
    );
    // Sent to inspection: not (yet) a movement.
    let inspect = decided(
        passage("in3", "L01", Direction::Import, DAY + 3, plate, &[]),
        Outcome::Inspect,
    );
    put(&s, &inspect);
    assert_eq!(
        s.snapshot().expect("snap").balance(plate).expect("balance"),
        1
    );
    // Released after inspection: counted.
    put(
        &s,
        &PassageRecord {
            outcome: Some(Outcome::Release),
            state: PassageState::Inspected,
            ..inspect.clone()
        },
    );
    assert_eq!(
        s.snapshot().expect("snap").balance(plate).expect("balance"),
        2
    );
    // Rewriting the same state changes nothing; cancelling takes it back.
    put(
        &s,
        &PassageRecord {
            outcome: Some(Outcome::Release),
            state: PassageState::Inspected,
            ..inspect.clone()
        },
    );
    assert_eq!(
        s.snapshot().expect("snap").balance(plate).expect("balance"),
        2
    );
    put(
        &s,
        &PassageRecord {
            outcome: Some(Outcome::Release),
            state: PassageState::Cancelled,
            ..inspect
        },
    );
    assert_eq!(
        s.snapshot().expect("snap").balance(plate).expect("balance"),
        1
    );
    // Resolved to the registered plate: the balance moves to it.
    let mut hk = decided(
        passage("out2", "L02", Direction::Export, DAY + 4, "KT8848", &[]),
        Outcome::Release,
    );
    hk.vehicle = Some(plate.into());
    put(&s, &hk);
    let snap = s.snapshot().expect("snap");
    assert_eq!(snap.balance(plate).expect("balance"), 0);
    assert_eq!(snap.balances().expect("balances"), vec![]);
    drop(snap);
    clean(&s);
}

#[test]
fn vehicles_drivers_enterprises_stations() {
    let (_d, s) = store();
    let v = Vehicle {
        plate: "粤Ｂ１２３４５".into(),
        tag_epc: Some("e200 0017 2211 0144 1890 abcd".into()),
        enterprise: "E1".into(),
        tare_kg: Some(15_000.0),
        active: true,
        ..Default::default()
    };
    let hk = Vehicle {
        plate: "粤Z1234港".into(),
        two_plate: true,
        foreign_plate: Some("kt-8848".into()),
        enterprise: "E1".into(),
        active: true,
        ..Default::default()
    };
    let d = TruckDriver {
        id: "D1".into(),
        name: "陈伟".into(),
        card_uid: "62e3086ced".into(),
        enterprise: "E1".into(),
        vehicles: vec!["粤B 12345".into()],
        active: true,
    };
    s.write(|tx| {
        tx.put_vehicle(&v)?;
        tx.put_vehicle(&hk)?;
        tx.put_driver(&d)?;
        tx.put_enterprise(&Enterprise {
            code: "E1".into(),
            name: "华运".into(),
            status: EnterpriseStatus::Suspended,
        })?;
        tx.put_station(&Station {
            code: "HP01".into(),
            name: "黄埔".into(),
            office: "5201".into(),
            active: true,
        })
    })
    .expect("write");
    let snap = s.snapshot().expect("snap");
    let got = snap.vehicle("粤B12345").expect("get").expect("vehicle");
    assert_eq!(got.tag_epc.as_deref(), Some("E2000017221101441890ABCD"));
    assert_eq!(
        snap.vehicle_by_tag("e2000017221101441890abcd")
            .expect("get")
            .map(|v| v.plate),
        Some("粤B12345".into())
    );
    assert_eq!(
        snap.vehicle_by_any_plate("KT8848")
            .expect("get")
            .map(|v| v.plate),
        Some("粤Z1234港".into())
    );
    assert_eq!(
        snap.driver_by_card("62E3086CED")
            .expect("get")
            .map(|d| d.id),
        Some("D1".into())
    );
    assert_eq!(
        snap.driver("D1").expect("get").map(|d| d.vehicles),
        Some(vec!["粤B12345".to_owned()])
    );
    assert_eq!(
        snap.enterprise("E1").expect("get").map(|e| e.status),
        Some(EnterpriseStatus::Suspended)
    );
    assert_eq!(
        snap.station("HP01").expect("get").map(|s| s.office),
        Some("5201".into())
    );
    assert_eq!(snap.vehicles().expect("all").len(), 2);
    drop(snap);

    // The tag moves to another vehicle; the old vehicle loses it; the card moves too.
    s.write(|tx| {
        tx.put_vehicle(&Vehicle {
            tag_epc: Some("E2000017221101441890ABCD".into()),
            ..hk.clone()
        })?;
        tx.put_vehicle(&Vehicle {
            tag_epc: None,
            ..v.clone()
        })?;
        tx.put_driver(&TruckDriver {
            card_uid: "0A0B0C0D0E".into(),
            ..d.clone()
        })
    })
    .expect("write");
    let snap = s.snapshot().expect("snap");
    assert_eq!(
        snap.vehicle_by_tag("E2000017221101441890ABCD")
            .expect("get")
            .map(|v| v.plate),
        Some("粤Z1234港".into())
    );
    assert!(snap.driver_by_card("62E3086CED").expect("get").is_none());
    assert_eq!(
        snap.driver_by_card("0a0b0c0d0e")
            .expect("get")
            .map(|d| d.id),
        Some("D1".into())
    );
    drop(snap);
    clean(&s);
}

#[test]
fn documents_are_indexed_by_container_and_plate() {
    let (_d, s) = store();
    let doc = Document {
        kind: DocumentKind::TransitRelease,
        number: "T1".into(),
        station: "HP01".into(),
        containers: vec!["csqu3054383".into(), "TCNU7200794".into()],
        plate: Some("粤B12345".into()),
        declared_kg: Some(20_000.0),
        ..Default::default()
    };
    s.write(|tx| tx.put_document(&doc)).expect("write");
    let snap = s.snapshot().expect("snap");
    assert_eq!(
        snap.documents_by_container("CSQU3054383").expect("q").len(),
        1
    );
    assert_eq!(
        snap.documents_by_container("TCNU7200794").expect("q")[0].number,
        "T1"
    );
    assert_eq!(snap.documents_by_plate("粤B12345").expect("q").len(), 1);
    assert_eq!(
        snap.document("T1")
            .expect("q")
            .map(|d| d.containers[0].clone()),
        Some("CSQU3054383".into())
    );
    drop(snap);
    let changed = Document {
        containers: vec!["GYOU4047990".into()],
        plate: None,
        ..doc
    };
    s.write(|tx| tx.put_document(&changed)).expect("write");
    let snap = s.snapshot().expect("snap");
    assert!(
        snap.documents_by_container("CSQU3054383")
            .expect("q")
            .is_empty()
    );
    assert!(snap.documents_by_plate("粤B12345").expect("q").is_empty());
    assert_eq!(
        snap.documents_by_container("GYOU4047990").expect("q").len(),
        1
    );
    drop(snap);
    clean(&s);
}

#[test]
fn parameters_keep_every_version() {
    let (_d, s) = store();
    let v = s
        .write(|tx| {
            let a = tx.set_parameter("weight.tolerance-percent", "3", "platform", DAY)?;
            let b = tx.set_parameter("weight.tolerance-percent", "3", "platform", DAY + 1)?;
            let c = tx.set_parameter("weight.tolerance-percent", "5", "op-1", DAY + 2)?;
            let d = tx.set_parameter("weight.deduction", "none", "op-1", DAY + 3)?;
            Ok::<_, StoreError>((a, b, c, d))
        })
        .expect("write");
    assert_eq!(v, (Some(1), None, Some(2), Some(1)));
    let snap = s.snapshot().expect("snap");
    let cur = snap
        .parameter("weight.tolerance-percent")
        .expect("get")
        .expect("set");
    assert_eq!(
        (cur.value.as_str(), cur.version, cur.set_by.as_str()),
        ("5", 2, "op-1")
    );
    let hist = snap
        .parameter_history("weight.tolerance-percent")
        .expect("history");
    assert_eq!(
        hist.iter().map(|p| p.value.as_str()).collect::<Vec<_>>(),
        ["3", "5"]
    );
    let all = snap.parameters().expect("all");
    assert_eq!(
        all.iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect::<Vec<_>>(),
        [
            ("weight.deduction", "none"),
            ("weight.tolerance-percent", "5")
        ]
    );
    assert!(
        snap.parameter("weight").expect("get").is_none(),
        "no prefix matches"
    );
    drop(snap);
    clean(&s);
}

#[test]
fn control_orders_are_in_force_until_expiry_or_revocation() {
    let (_d, s) = store();
    let order = |id: &str, expires: Option<i64>| ControlOrderRecord {
        order: ControlOrder {
            id: id.into(),
            subject_kind: SubjectKind::Container,
            subject: "oolu 881234-8".into(),
            reason: "risk".into(),
            action: Outcome::Inspect,
            expires_ms: expires,
        },
        issued_ms: DAY,
        issued_by: "op-1".into(),
        ..Default::default()
    };
    s.write(|tx| {
        tx.put_control_order(&order("A", None))?;
        tx.put_control_order(&order("B", Some(DAY + 10)))
    })
    .expect("write");
    let in_force = |now: i64| -> Vec<String> {
        let snap = s.snapshot().expect("snap");
        let mut v: Vec<String> = snap
            .control_orders_in_force(SubjectKind::Container, "OOLU8812348", now)
            .expect("q")
            .into_iter()
            .map(|o| o.order.id)
            .collect();
        v.sort();
        v
    };
    assert_eq!(in_force(DAY), ["A", "B"]);
    assert_eq!(in_force(DAY + 10), ["A"]);
    assert!(
        s.write(|tx| tx.revoke_control_order("A", "op-2", DAY + 20))
            .expect("revoke")
    );
    assert!(
        !s.write(|tx| tx.revoke_control_order("A", "op-2", DAY + 21))
            .expect("revoke")
    );
    assert!(
        !s.write(|tx| tx.revoke_control_order("nope", "op-2", DAY + 21))
            .expect("revoke")
    );
    assert_eq!(
        in_force(DAY + 19),
        ["A"],
        "revocation applies from its time"
    );
    assert!(in_force(DAY + 20).is_empty());
    let snap = s.snapshot().expect("snap");
    assert_eq!(
        snap.control_orders_on(SubjectKind::Container, "OOLU8812348")
            .expect("q")
            .len(),
        2
    );
    assert!(
        snap.control_orders_on(SubjectKind::Vehicle, "OOLU8812348")
            .expect("q")
            .is_empty()
    );
    let who = snap
        .audit_by_who("op-2", i64::MIN, i64::MAX)
        .expect("audit");
    assert_eq!(who.len(), 1);
    assert_eq!(who[0].entry.action, "control-order.revoke");
    drop(snap);
    // Moving an order to another subject re-indexes it.
    let mut moved = order("B", None);
    moved.order.subject_kind = SubjectKind::Vehicle;
    moved.order.subject = "粤B9F731".into();
    s.write(|tx| tx.put_control_order(&moved)).expect("write");
    assert_eq!(
        s.snapshot()
            .expect("snap")
            .control_orders_in_force(SubjectKind::Vehicle, "粤B9F731", DAY)
            .expect("q")
            .len(),
        1
    );
    clean(&s);
}

#[test]
fn equipment_files_come_from_the_site_manifest() {
    let (_d, s) = store();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let site = crate::config::SiteManifest::load(&root.join("manifests/sites/lane-a.toml"))
        .expect("manifest");
    s.write(|tx| tx.put_site_equipment(&site)).expect("write");
    let snap = s.snapshot().expect("snap");
    let scale = snap.equipment("L01", "scale").expect("get").expect("scale");
    assert_eq!(scale.serial_number.as_deref(), Some("YH-2024-0117"));
    assert_eq!(
        snap.equipment_files().expect("all").len(),
        site.lanes[0].devices.len()
    );
    assert!(snap.equipment("L09", "scale").expect("get").is_none());
    drop(snap);

    // A device the manifest no longer has loses its file; the others keep theirs.
    s.write(|tx| tx.put_equipment("L09", "scale", &Default::default()))
        .expect("write");
    let mut fewer = site.clone();
    let removed = fewer.lanes[0].devices.pop().expect("a device");
    let held = s.write(|tx| tx.put_site_equipment(&fewer)).expect("write");
    assert_eq!(held, site.lanes[0].devices.len() - 1);
    let snap = s.snapshot().expect("snap");
    assert!(snap.equipment("L09", "scale").expect("get").is_none());
    assert!(snap.equipment("L01", &removed.id).expect("get").is_none());
    assert_eq!(snap.equipment_files().expect("all").len(), held);
}

#[test]
fn outbox_ids_increase_and_are_never_reused() {
    let (_d, s) = store();
    let push = |n: usize| -> Vec<u64> {
        s.write(|tx| {
            (0..n)
                .map(|i| {
                    tx.outbox_push(&OutboxMessage::new(format!("t/{i}"), vec![0, 1, 0xff], DAY))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .expect("push")
    };
    assert_eq!(push(3), [1, 2, 3]);
    let pending = s.outbox_pending(2).expect("pending");
    assert_eq!(pending.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(pending[0].message.payload, [0, 1, 0xff]);
    assert_eq!(pending[0].message.qos, 1);
    s.write(|tx| tx.outbox_attempted(3, 2, DAY + 5, Some("broker away")))
        .expect("attempt");
    let snap = s.snapshot().expect("snap");
    let third = snap.outbox_message(3).expect("get").expect("there");
    assert_eq!(
        (third.attempts, third.last_error.as_deref()),
        (2, Some("broker away"))
    );
    assert_eq!(
        snap.outbox_after(1, 10)
            .expect("after")
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        [2, 3]
    );
    drop(snap);
    assert_eq!(
        s.outbox_deliver_many(&[1, 2, 3, 3], DAY + 9)
            .expect("deliver"),
        3
    );
    assert!(s.outbox_pending(10).expect("pending").is_empty());
    let snap = s.snapshot().expect("snap");
    let done = snap.outbox_delivered_after(0, 10).expect("history");
    assert_eq!(done.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(done[2].message.state(), OutboxState::Delivered);
    assert_eq!(done[2].message.delivered_ms, Some(DAY + 9));
    assert_eq!(
        snap.outbox_message(2).expect("get").map(|m| m.topic),
        Some("t/1".into())
    );
    drop(snap);
    assert_eq!(push(1), [4], "ids go on after the outbox emptied");
    assert_eq!(s.snapshot().expect("snap").outbox_len().expect("len"), 1);
    clean(&s);
}

#[test]
fn inbox_applies_a_message_once() {
    let (_d, s) = store();
    assert!(s.write(|tx| tx.inbox_mark("site-a/42", DAY)).expect("mark"));
    assert!(
        !s.write(|tx| tx.inbox_mark("site-a/42", DAY + 1))
            .expect("mark")
    );
    assert_eq!(
        s.snapshot()
            .expect("snap")
            .inbox_seen("site-a/42")
            .expect("seen"),
        Some(DAY)
    );
    assert_eq!(s.write(|tx| tx.inbox_prune(DAY + 1)).expect("prune"), 1);
    assert!(
        s.snapshot()
            .expect("snap")
            .inbox_seen("site-a/42")
            .expect("seen")
            .is_none()
    );
}

#[test]
fn audit_log_appends_and_is_searchable_by_person_and_time() {
    let (_d, s) = store();
    let entry = |who: &str, at: i64| AuditEntry {
        who: who.into(),
        when_ms: at,
        action: "passage.release".into(),
        subject: "P1".into(),
        before: Some(serde_json::json!({"outcome": "inspect"})),
        after: Some(serde_json::json!({"outcome": "release"})),
    };
    let seqs = s
        .write(|tx| {
            Ok::<_, StoreError>([
                tx.audit(entry("op-1", DAY))?,
                tx.audit(entry("op-2", DAY + 5))?,
                tx.audit(entry("op-1", DAY + 10))?,
            ])
        })
        .expect("write");
    assert_eq!(seqs, [1, 2, 3]);
    let snap = s.snapshot().expect("snap");
    assert_eq!(snap.audit(2, 10).expect("audit").len(), 2);
    let op1 = snap.audit_by_who("op-1", DAY + 1, DAY + 10).expect("who");
    assert_eq!(op1.iter().map(|r| r.seq).collect::<Vec<_>>(), [3]);
    assert_eq!(op1[0].entry, entry("op-1", DAY + 10));
    drop(snap);
    clean(&s);
}

#[test]
fn read_only_handles_follow_the_writer() {
    let (_d, path) = temp();
    let w = Store::open(&path).expect("writer");
    let r = Store::open_read_only(&path).expect("reader beside the writer");
    assert!(!r.is_writable());
    put(
        &w,
        &passage("P1", "L01", Direction::Import, DAY, "粤B12345", &[]),
    );
    assert!(r.passage("P1").expect("read").is_some());
    let e = r.write(|tx| tx.inbox_mark("x", 0)).expect_err("read-only");
    assert!(matches!(e, StoreError::ReadOnly { .. }), "{e}");
    // A second writer is refused while the first runs.
    match Store::open(&path) {
        Err(StoreError::Busy { path: p }) => assert_eq!(p, path),
        other => panic!("expected Busy, got {other:?}"),
    }
}

#[test]
fn newer_files_are_refused_with_file_and_versions() {
    let (_d, path) = temp();
    {
        let db = Database::create(&path).expect("db");
        let tx = db.begin_write().expect("tx");
        tx.open_table(META)
            .expect("meta")
            .insert(META_SCHEMA, 7u64)
            .expect("insert");
        tx.commit().expect("commit");
    }
    for e in [
        Store::open(&path).expect_err("refused"),
        Store::open_read_only(&path).expect_err("refused"),
    ] {
        let text = e.to_string();
        assert!(
            matches!(
                e,
                StoreError::NewerSchema {
                    found: 7,
                    supported: SCHEMA_VERSION,
                    ..
                }
            ),
            "{text}"
        );
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("schema version 7"), "{text}");
        assert!(
            text.contains(&format!("(schema {SCHEMA_VERSION})")),
            "{text}"
        );
    }
    // Nothing was written to it.
    let db = Database::open(&path).expect("db");
    let tx = ReadableDatabase::begin_read(&db).expect("tx");
    assert_eq!(tx.list_tables().expect("tables").count(), 1);
}

#[test]
fn other_redb_files_are_not_taken_for_stores() {
    let (_d, path) = temp();
    {
        let db = Database::create(&path).expect("db");
        let tx = db.begin_write().expect("tx");
        let def: redb::TableDefinition<'_, u64, u64> = redb::TableDefinition::new("something");
        tx.open_table(def).expect("t").insert(1, 2).expect("insert");
        tx.commit().expect("commit");
    }
    let e = Store::open(&path).expect_err("refused");
    assert!(matches!(e, StoreError::NotAStore { .. }), "{e}");
}

/// Writes a schema 1 file, as kakou wrote it before schema 2: passages with `rules` text and
/// `manual`, no `updated_ms`, and no vehicle balance table.
fn write_v1(path: &Path) {
    let db = Database::create(path).expect("db");
    let tx = db.begin_write().expect("tx");
    tx.open_table(META)
        .expect("meta")
        .insert(META_SCHEMA, 1u64)
        .expect("insert");
    let v1 = |value: serde_json::Value| {
        let mut b = vec![1u8];
        b.extend(serde_json::to_vec(&value).expect("json"));
        b
    };
    let passage = |id: &str, dir: &str, at: i64, plate: &str, outcome: &str| {
        serde_json::json!({
            "passage": {
                "id": id, "site": "gz-huangpu-01", "office": "5201",
                "lane": {"id": "L01", "category": "a", "direction": dir, "cargo": "container", "station": "HP01"},
                "started_ms": at, "now_ms": at + 2000,
                "observations": [
                    {"device": "plate-cam", "at_ms": at, "reading": {"type": "plate", "text": plate, "confidence": 96}},
                    {"device": "box-cam", "at_ms": at, "reading": {"type": "container", "number": "CSQU3054383", "confidence": 91}}
                ]
            },
            "verdict": {"outcome": outcome, "checks": [], "alarms": []},
            "outcome": outcome,
            "state": "decided",
            "rules": "weight-check@1.0.0, region-gd@0.3.1",
            "manual": [{"who": "op-3", "at_ms": at + 9000, "action": "release"}],
            "created_ms": at + 2000
        })
    };
    let rows = [
        ("P1", "import", DAY, "粤Z1234港", "release"),
        ("P2", "import", DAY + 10, "粤Z1234港", "release"),
        ("P3", "export", DAY + 20, "粤Z1234港", "release"),
        ("P4", "import", DAY + 30, "粤B12345", "inspect"),
    ];
    {
        let mut t = tx.open_table(PASSAGES).expect("passages");
        for (id, dir, at, plate, outcome) in rows {
            t.insert(id, v1(passage(id, dir, at, plate, outcome)).as_slice())
                .expect("insert");
        }
    }
    for (def, value) in [
        (P_BY_CONTAINER, "CSQU3054383"),
        (P_BY_STATION, "HP01"),
        (P_BY_LANE, "L01"),
    ] {
        let mut t = tx.open_table(def).expect("index");
        for (id, _, at, _, _) in rows {
            t.insert((value, at, id), ()).expect("insert");
        }
    }
    {
        let mut t = tx.open_table(P_BY_PLATE).expect("index");
        for (id, _, at, plate, _) in rows {
            t.insert((plate, at, id), ()).expect("insert");
        }
    }
    {
        let mut t = tx.open_table(VEHICLES).expect("vehicles");
        let v = serde_json::json!({"plate": "粤Z1234港", "enterprise": "E8520001", "two_plate": true, "foreign_plate": "KT8848", "active": true});
        t.insert("粤Z1234港", v1(v).as_slice()).expect("insert");
        let mut f = tx.open_table(V_BY_FOREIGN).expect("foreign");
        f.insert("KT8848", "粤Z1234港").expect("insert");
    }
    tx.commit().expect("commit");
}

#[test]
fn a_schema_1_file_is_migrated_when_opened_for_writing() {
    let (_d, path) = temp();
    write_v1(&path);

    // Read-only: not migrated, but read through the upgrade.
    let ro = Store::open_read_only(&path).expect("read-only open");
    let snap = ro.snapshot().expect("snap");
    assert_eq!(snap.schema_version().expect("version"), Some(1));
    let p1 = snap.passage("P1").expect("read").expect("P1");
    assert_eq!(p1.decided_by.len(), 2);
    let report = snap.check().expect("check");
    assert!(report.is_clean(), "{:#?}", report.problems);
    assert!(
        report.notes.iter().any(|n| n.contains("schema 1")),
        "{:?}",
        report.notes
    );
    drop((snap, ro));

    let s = Store::open(&path).expect("open migrates");
    let snap = s.snapshot().expect("snap");
    assert_eq!(
        snap.schema_version().expect("version"),
        Some(SCHEMA_VERSION)
    );
    let p1 = snap.passage("P1").expect("read").expect("P1");
    assert_eq!(
        p1.decided_by,
        [
            PluginVersion::new("weight-check", "1.0.0"),
            PluginVersion::new("region-gd", "0.3.1")
        ]
    );
    assert_eq!(p1.manual_actions.len(), 1);
    assert_eq!(p1.manual_actions[0].who, "op-3");
    assert_eq!(p1.created_ms, DAY + 2000);
    assert_eq!(p1.updated_ms, DAY + 9000, "the last manual action");
    // Every value was rewritten in the new format.
    let Txn::Read(txn) = &snap.txn else {
        panic!("a snapshot reads")
    };
    let raw = txn.open_table(PASSAGES).expect("passages");
    for item in raw.iter().expect("iter") {
        let (_, v) = item.expect("item");
        assert_eq!(u64::from(v.value()[0]), SCHEMA_VERSION);
    }
    drop(raw);
    // The balance counters were built from the passages: two in, one out; P4 was not released.
    assert_eq!(snap.balance("粤Z1234港").expect("balance"), 1);
    assert_eq!(
        snap.vehicle_by_any_plate("KT8848")
            .expect("get")
            .map(|v| v.plate),
        Some("粤Z1234港".into())
    );
    assert_eq!(
        s.lookups(DAY).expect("lookups").vehicle_balance("KT8848"),
        1
    );
    drop(snap);
    clean(&s);
    // Reopening is a no-op; the migrated store keeps working.
    drop(s);
    let s = Store::open(&path).expect("reopen");
    put(
        &s,
        &decided(
            passage("P5", "L02", Direction::Export, DAY + 40, "粤Z1234港", &[]),
            Outcome::Release,
        ),
    );
    assert_eq!(
        s.snapshot()
            .expect("snap")
            .balance("粤Z1234港")
            .expect("balance"),
        0
    );
    clean(&s);
}

#[test]
fn check_reports_missing_stale_and_miscounted_entries() {
    let (_d, path) = temp();
    let s = Store::open(&path).expect("open");
    put(
        &s,
        &decided(
            passage(
                "P1",
                "L01",
                Direction::Import,
                DAY,
                "粤B12345",
                &["CSQU3054383"],
            ),
            Outcome::Release,
        ),
    );
    put(
        &s,
        &decided(
            passage(
                "P2",
                "L01",
                Direction::Import,
                DAY + 1,
                "粤B12345",
                &["TCNU7200794"],
            ),
            Outcome::Release,
        ),
    );
    s.write(|tx| {
        tx.put_vehicle(&Vehicle {
            plate: "粤B12345".into(),
            tag_epc: Some("E2000017221101441890ABCD".into()),
            enterprise: "E1".into(),
            active: true,
            ..Default::default()
        })
    })
    .expect("write");
    clean(&s);
    // Damage it behind the store's back.
    s.write(|tx| {
        let mut c = tx.txn.open_table(P_BY_CONTAINER).expect("t");
        c.remove(("CSQU3054383", DAY, "P1")).expect("remove");
        c.insert(("GYOU4047990", DAY, "P2"), ()).expect("insert");
        c.insert(("GYOU4047990", DAY, "P9"), ()).expect("insert");
        drop(c);
        tx.txn
            .open_table(BALANCES)
            .expect("t")
            .insert("粤B12345", 5i64)
            .expect("insert");
        tx.txn
            .open_table(V_BY_TAG)
            .expect("t")
            .insert("FFFF0000", "粤B12345")
            .expect("insert");
        tx.txn
            .open_table(PASSAGES)
            .expect("t")
            .insert("P7", [2u8, b'{', b'x'].as_slice())
            .expect("insert");
        Ok::<_, StoreError>(())
    })
    .expect("damage");
    let report = s.snapshot().expect("snap").check().expect("check");
    assert!(!report.is_clean());
    let text: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    let has = |needle: &str| {
        assert!(
            text.iter().any(|t| t.contains(needle)),
            "no {needle:?} in {text:#?}"
        )
    };
    has("passages_by_container [CSQU3054383]: passage P1 is not indexed");
    has("passages_by_container [GYOU4047990]: stale: passage P2 no longer has it");
    has("passages_by_container [GYOU4047990]: names passage P9, which does not exist");
    has("vehicle_balances [粤B12345]: counter says 5, passages say 2");
    has("vehicles_by_tag [FFFF0000]: stale");
    has("passages [P7]: cannot decode");
    assert_eq!(report.problem_count, 6, "{text:#?}");
}

#[test]
fn backup_and_export_read_one_snapshot() {
    let (dir, path) = temp();
    let s = Store::open(&path).expect("open");
    for n in 0..20 {
        put(&s, &sample::synthetic_passage(n, DAY));
    }
    s.write(|tx| {
        tx.set_parameter("weight.tolerance-percent", "3", "op", DAY)?;
        tx.outbox_push(&OutboxMessage::new("t", b"{}".to_vec(), DAY))?;
        tx.audit(AuditEntry {
            who: "op".into(),
            action: "x".into(),
            ..Default::default()
        })
    })
    .expect("write");
    let dest = dir.path().join("backup.redb");
    let report = s
        .snapshot()
        .expect("snap")
        .backup_to(&dest)
        .expect("backup while open");
    assert_eq!(report.tables, TABLES.len());
    assert!(report.bytes > 0);
    let copy = Store::open_read_only(&dest).expect("open backup");
    let a = s.snapshot().expect("snap").counts().expect("counts");
    let b = copy.snapshot().expect("snap").counts().expect("counts");
    assert_eq!(a, b);
    assert!(
        copy.snapshot()
            .expect("snap")
            .check()
            .expect("check")
            .is_clean()
    );
    assert_eq!(
        copy.passages_by_container(&sample::synthetic_container(7))
            .expect("q")
            .len(),
        2
    );
    let e = s
        .snapshot()
        .expect("snap")
        .backup_to(&dest)
        .expect_err("never overwritten");
    assert!(matches!(e, StoreError::Exists { .. }), "{e}");
    assert!(!dir.path().join("backup.redb.partial").exists());

    let mut out = Vec::new();
    let n = export_tables(
        &s.snapshot().expect("snap"),
        &["passages", "parameters", "outbox", "audit"],
        &mut out,
    )
    .expect("export");
    assert_eq!(n, 23);
    let text = String::from_utf8(out).expect("utf-8");
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("line")).expect("json");
    assert_eq!(first["table"], "passages");
    assert!(
        text.lines()
            .next()
            .expect("line")
            .starts_with("{\"table\":\"passages\",\"key\":")
    );
    let back: PassageRecord =
        serde_json::from_value(first["value"].clone()).expect("a passage record");
    assert_eq!(first["key"], back.passage.id.as_str());
    assert!(text.contains(r#"{"table":"parameters","key":["weight.tolerance-percent",1],"#));
    let e = export_tables(&s.snapshot().expect("snap"), &["nope"], &mut Vec::new())
        .expect_err("unknown");
    assert!(e.to_string().contains("no table \"nope\""), "{e}");
}

#[test]
fn lookups_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<StoreLookups>();
    check::<Store>();
}

/// The store serves the real weight-check rule set (compiled natively) from the sample data.
#[test]
fn sample_data_reaches_the_weight_outcomes_through_store_lookups() {
    use kakou_plugin_sdk::Rules;
    use kakou_rules_weight_check::WeightCheck;
    use sample::scenario::*;
    let (_d, s) = store();
    let report = s
        .apply_platform_records(&sample::sample_records(), &ApplyOptions::new("test", DAY))
        .expect("apply");
    assert!(report.rejected.is_empty(), "{:#?}", report.rejected);
    let truck = |plate: &str, container: &str, gross: f64| Passage {
        id: "P".into(),
        lane: Lane {
            id: "L01".into(),
            direction: Direction::Import,
            cargo: CargoKind::Container,
            station: STATION.into(),
            ..Default::default()
        },
        now_ms: DAY + 3_600_000,
        observations: vec![
            Observation {
                reading: Reading::from(Plate {
                    text: plate.into(),
                    confidence: 95,
                    ..Default::default()
                }),
                ..Default::default()
            },
            Observation {
                reading: Reading::from(Container {
                    number: container.into(),
                    iso_type: Some("22G1".into()),
                    confidence: 95,
                    ..Default::default()
                }),
                ..Default::default()
            },
            Observation {
                reading: Reading::from(Weight {
                    kg: gross,
                    stable: true,
                    ..Default::default()
                }),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let lookups = s.lookups(DAY + 3_600_000).expect("lookups");
    let clean = WeightCheck::evaluate(
        &truck(CLEAN_PLATE, CLEAN_CONTAINER, 15_000.0 + 2_200.0 + 20_150.0),
        &lookups,
    )
    .expect("verdict");
    assert_eq!(clean.outcome, Outcome::Release, "{clean:#?}");
    let over = WeightCheck::evaluate(
        &truck(
            OVERWEIGHT_PLATE,
            OVERWEIGHT_CONTAINER,
            15_400.0 + 2_200.0 + OVERWEIGHT_LOADED_KG,
        ),
        &lookups,
    )
    .expect("verdict");
    assert_eq!(over.outcome, Outcome::Inspect, "{over:#?}");
    let none = WeightCheck::evaluate(
        &truck("粤A3D5F7", UNDOCUMENTED_CONTAINER, 35_000.0),
        &lookups,
    )
    .expect("verdict");
    assert_eq!(none.outcome, Outcome::Manual, "{none:#?}");
    assert!(lookups.take_error().is_none());

    // What the other rule sets will look at.
    assert_eq!(
        lookups
            .control_orders(SubjectKind::Container, CONTROLLED_CONTAINER)
            .len(),
        1
    );
    assert_eq!(
        lookups.control_orders(SubjectKind::Vehicle, CONTROLLED_PLATE)[0].action,
        Outcome::Refuse
    );
    assert_eq!(
        lookups
            .control_orders(SubjectKind::Driver, CONTROLLED_DRIVER)
            .len(),
        1
    );
    assert!(
        lookups
            .control_orders(SubjectKind::Container, EXPIRED_ORDER_CONTAINER)
            .is_empty()
    );
    assert!(
        lookups
            .control_orders(SubjectKind::Container, REVOKED_ORDER_CONTAINER)
            .is_empty()
    );
    assert!(lookups.driver_by_card(UNREGISTERED_CARD).is_none());
    assert_eq!(
        lookups.driver_by_card(CLEAN_CARD).map(|d| d.id),
        Some("D0001".into())
    );
    assert_eq!(
        lookups.vehicle_by_tag(CLEAN_TAG).map(|v| v.plate),
        Some(CLEAN_PLATE.into())
    );
    let hk = lookups
        .vehicle(TWO_PLATE_HK)
        .expect("found by its HK plate");
    assert!(hk.two_plate && hk.plate == TWO_PLATE);
    assert_eq!(lookups.documents_by_vehicle(TWO_PLATE).len(), 1);
    let expired = lookups
        .document(EXPIRED_TRANSIT_DOCUMENT)
        .expect("document");
    assert!(expired.deadline_ms.expect("deadline") < DAY);
    let v = lookups.vehicle(SUSPENDED_PLATE).expect("vehicle");
    assert_eq!(
        lookups.enterprise(&v.enterprise).map(|e| e.status),
        Some(EnterpriseStatus::Suspended)
    );
    assert_eq!(
        lookups.documents_by_container(WRONG_STATION_CONTAINER)[0].station,
        "SK01"
    );
    assert_eq!(
        lookups.documents_by_container(WRONG_DIRECTION_CONTAINER)[0].direction,
        Direction::Export
    );
    assert!(!lookups.vehicle(INACTIVE_PLATE).expect("vehicle").active);
    assert_eq!(
        lookups.documents_by_vehicle(BULK_PLATE)[0].cargo,
        CargoKind::Bulk
    );
    assert_eq!(
        lookups.parameter("weight.tolerance-percent").as_deref(),
        Some("3")
    );
    assert_eq!(lookups.vehicle_balance(CLEAN_PLATE), 0);
}

#[test]
fn the_committed_sample_file_is_the_generators_output() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/data/sample.jsonl");
    let committed = std::fs::read_to_string(&path).expect("manifests/data/sample.jsonl");
    assert!(
        committed == sample::sample_jsonl(),
        "manifests/data/sample.jsonl is stale: run `kakou data sample --out manifests/data/sample.jsonl`"
    );
    let records = sample::sample_records();
    assert!(records.len() > 300, "a few hundred records");
    // Every container number is valid ISO 6346; the unregistered card is in no record.
    for r in &records {
        if let Record::Document(d) = r {
            for c in &d.containers {
                assert!(kakou_plugin_sdk::proto::iso6346::validate(c).is_ok(), "{c}");
            }
        }
        if let Record::Driver(d) = r {
            assert_ne!(d.card_uid, sample::scenario::UNREGISTERED_CARD);
        }
    }
}
