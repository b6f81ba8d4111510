//! Unit tests of the alarm tables: raising, repeats, acknowledgement, clearing, the read side,
//! and the migration of a schema 3 file (which had no alarm tables).

use kakou_plugin_sdk::model::Severity;
use redb::{Database, ReadableDatabase, TableHandle};

use super::schema::*;
use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path().join("kakou.redb")).expect("open");
    (dir, s)
}

fn device_fault() -> NewAlarm {
    NewAlarm {
        code: "device.fault".into(),
        severity: Severity::Warning,
        lane: Some("L01".into()),
        device: Some("scale".into()),
        passage: None,
        message: "frame checksum".into(),
    }
}

fn clean(s: &Store) {
    let report = s.snapshot().expect("snapshot").check().expect("check");
    assert!(report.is_clean(), "check found: {:#?}", report.problems);
}

#[test]
fn a_repeat_counts_on_the_standing_alarm_until_it_is_cleared() {
    let (_d, s) = store();
    let first = s
        .write(|tx| tx.raise_alarm("a-1", &device_fault(), 1_000, 1))
        .expect("raise");
    assert_eq!(
        (first.id.as_str(), first.count, first.first_ms),
        ("a-1", 1, 1_000)
    );

    // Raised again with 4 repeats held back by the daemon: one alarm, counted 6 times.
    let mut again = device_fault();
    again.message = "frame checksum (4 more like it held back)".into();
    let r = s
        .write(|tx| tx.raise_alarm("a-2", &again, 12_000, 5))
        .expect("raise");
    assert_eq!(
        (r.id.as_str(), r.count, r.first_ms, r.last_ms),
        ("a-1", 6, 1_000, 12_000)
    );
    assert_eq!(r.alarm.message, again.message);
    let snap = s.snapshot().expect("snap");
    assert_eq!(snap.open_alarms().expect("open"), std::slice::from_ref(&r));
    assert!(snap.alarm("a-2").expect("get").is_none());
    drop(snap);

    // Another device's alarm of the same code is another alarm.
    let mut other = device_fault();
    other.device = Some("card".into());
    s.write(|tx| tx.raise_alarm("a-3", &other, 13_000, 1))
        .expect("raise");

    // Cleared by the daemon: no longer open; the next one like it is new.
    let cleared = s
        .write(|tx| tx.clear_alarm("a-1", None, 20_000))
        .expect("clear");
    let AlarmUpdate::Updated(cleared) = cleared else {
        panic!("{cleared:?}")
    };
    assert_eq!(
        cleared.cleared,
        Some(AlarmClear {
            at_ms: 20_000,
            by: None
        })
    );
    assert!(matches!(
        s.write(|tx| tx.clear_alarm("a-1", Some("O-17"), 21_000))
            .expect("clear"),
        AlarmUpdate::AlreadyCleared(_)
    ));
    let fresh = s
        .write(|tx| tx.raise_alarm("a-4", &device_fault(), 30_000, 1))
        .expect("raise");
    assert_eq!((fresh.id.as_str(), fresh.count), ("a-4", 1));
    let snap = s.snapshot().expect("snap");
    let open: Vec<String> = snap
        .open_alarms()
        .expect("open")
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(open, ["a-3", "a-4"]);
    // By time of first raising, in every state.
    let between: Vec<String> = snap
        .alarms_between(1_000, 13_000)
        .expect("range")
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(between, ["a-1", "a-3"]);
    assert!(
        snap.alarms_between(14_000, 29_999)
            .expect("range")
            .is_empty()
    );
    drop(snap);
    clean(&s);

    // An open alarm missing from the open index is found by the check.
    let key = fresh.alarm.standing_key();
    s.write(|tx| {
        let mut t = tx.txn.open_table(ALARMS_OPEN).expect("table");
        t.remove(key.as_str()).expect("remove");
        Ok::<_, StoreError>(())
    })
    .expect("write");
    let report = s.snapshot().expect("snap").check().expect("check");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.table == "alarms_open" && p.message.contains("1 entries for 2 open alarms")),
        "{:?}",
        report.problems
    );
}

#[test]
fn an_alarm_is_acknowledged_once_and_stays_open_until_cleared() {
    let (_d, s) = store();
    s.write(|tx| tx.raise_alarm("a-1", &device_fault(), 1_000, 1))
        .expect("raise");
    let acked = s
        .write(|tx| tx.acknowledge_alarm("a-1", "O-17", 2_000, Some("scale cable re-seated")))
        .expect("ack");
    let AlarmUpdate::Updated(acked) = acked else {
        panic!("{acked:?}")
    };
    let ack = AlarmAck {
        by: "O-17".into(),
        at_ms: 2_000,
        note: Some("scale cable re-seated".into()),
    };
    assert_eq!(acked.acknowledged.as_ref(), Some(&ack));
    assert!(acked.is_open());
    let second = s
        .write(|tx| tx.acknowledge_alarm("a-1", "O-18", 3_000, None))
        .expect("ack");
    let AlarmUpdate::AlreadyAcknowledged(kept) = second else {
        panic!("{second:?}")
    };
    assert_eq!(kept.acknowledged, Some(ack));
    assert_eq!(
        s.write(|tx| tx.acknowledge_alarm("nope", "O-17", 3_000, None))
            .expect("ack"),
        AlarmUpdate::Unknown
    );
    // A repeat while acknowledged counts on it and keeps the acknowledgement.
    let r = s
        .write(|tx| tx.raise_alarm("a-2", &device_fault(), 4_000, 1))
        .expect("raise");
    assert_eq!((r.id.as_str(), r.count), ("a-1", 2));
    assert!(r.acknowledged.is_some());
    s.write(|tx| tx.clear_alarm("a-1", Some("O-17"), 5_000))
        .expect("clear");
    let snap = s.snapshot().expect("snap");
    assert!(snap.open_alarms().expect("open").is_empty());
    let stored = snap.alarm("a-1").expect("get").expect("kept");
    assert_eq!(stored.cleared.and_then(|c| c.by).as_deref(), Some("O-17"));
    // Exported, copied and counted like every record table.
    let mut out = Vec::new();
    let n = export_tables(&snap, &["alarms"], &mut out).expect("export");
    assert_eq!(n, 1);
    assert!(String::from_utf8(out).expect("utf-8").contains("\"O-17\""));
    let counts = snap.counts().expect("counts");
    assert!(counts.contains(&("alarms", 1)) && counts.contains(&("alarms_open", 0)));
}

#[test]
fn a_schema_3_file_gets_the_alarm_tables_when_opened_for_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kakou.redb");
    // A schema 3 file: its tables, without the alarm ones, and an answered request.
    {
        let s = Store::open(&path).expect("open");
        let reply = StoredReply {
            at_ms: 5,
            reply: serde_json::json!({"ok": true}),
        };
        s.write(|tx| tx.request_answered("r-1", &reply))
            .expect("write");
    }
    {
        let db = Database::open(&path).expect("db");
        let tx = db.begin_write().expect("tx");
        for t in [ALARMS.name(), ALARMS_BY_TIME.name(), ALARMS_OPEN.name()] {
            let def: redb::TableDefinition<'_, &str, &[u8]> = redb::TableDefinition::new(t);
            assert!(tx.delete_table(def).expect("delete"), "{t} was there");
        }
        tx.open_table(META)
            .expect("meta")
            .insert(META_SCHEMA, 3u64)
            .expect("insert");
        tx.commit().expect("commit");
    }
    {
        let db = Database::open(&path).expect("db");
        let names: Vec<String> = db
            .begin_read()
            .expect("tx")
            .list_tables()
            .expect("list")
            .map(|t| t.name().to_owned())
            .collect();
        assert!(!names.iter().any(|n| n.starts_with("alarms")), "{names:?}");
    }
    // Read-only: not migrated; the alarm tables read as empty, and check says why.
    {
        let ro = Store::open_for_reading(&path).expect("read-only");
        let snap = ro.snapshot().expect("snap");
        assert_eq!(snap.schema_version().expect("v"), Some(3));
        assert!(snap.open_alarms().expect("open").is_empty());
        let report = snap.check().expect("check");
        assert!(
            report.notes.iter().any(|n| n.contains("schema 3")),
            "{:?}",
            report.notes
        );
    }
    let s = Store::open(&path).expect("open migrates");
    let snap = s.snapshot().expect("snap");
    assert_eq!(snap.schema_version().expect("v"), Some(SCHEMA_VERSION));
    assert_eq!(SCHEMA_VERSION, 4);
    assert_eq!(
        snap.request_answer("r-1").expect("get").map(|r| r.at_ms),
        Some(5)
    );
    drop(snap);
    let r = s
        .write(|tx| tx.raise_alarm("a-1", &device_fault(), 1_000, 1))
        .expect("raise after the migration");
    assert_eq!(r.count, 1);
    clean(&s);
}
