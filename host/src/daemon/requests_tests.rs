//! Platform messages applied through a real store writer on a real redb file: once per
//! message id, all or nothing, and a refused message checked afresh on its next delivery.

use serde_json::{Value, json};

use super::*;

const NOW: i64 = 1_795_737_600_000;

fn store() -> (tempfile::TempDir, Store, Writer) {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = Store::open(dir.path().join("kakou.redb")).expect("open store");
    let w = Writer::spawn(s.clone()).expect("writer");
    (dir, s, w)
}

fn parameter(name: &str, value: &str) -> Value {
    json!({"kind": "parameter", "name": name, "value": value})
}

fn value_of(s: &Store, name: &str) -> Option<String> {
    s.snapshot()
        .expect("snapshot")
        .parameter(name)
        .expect("read")
        .map(|p| p.value)
}

fn imports(s: &Store) -> usize {
    s.snapshot()
        .expect("snapshot")
        .audit(1, 100)
        .expect("audit")
        .into_iter()
        .filter(|a| a.entry.action == "data.import")
        .count()
}

#[tokio::test]
async fn a_redelivered_platform_message_is_not_applied_again() {
    let (_d, s, w) = store();
    let one = vec![parameter("site.note", "one")];
    let (first, repeat) = settle_platform(&s, &w, None, "p-1", one.clone(), NOW).await;
    assert!(!repeat);
    assert_eq!(
        first,
        PlatformReport {
            message: "p-1".into(),
            applied: true,
            records: 1,
            rejected: Vec::new(),
        }
    );
    let (_, _) = settle_platform(
        &s,
        &w,
        None,
        "p-2",
        vec![parameter("site.note", "two")],
        NOW,
    )
    .await;
    assert_eq!(value_of(&s, "site.note").as_deref(), Some("two"));

    // p-1 again, after p-2: its first report, and the later value stands.
    let (again, repeat) = settle_platform(&s, &w, None, "p-1", one, NOW + 1).await;
    assert!(repeat);
    assert_eq!(again, first);
    assert_eq!(value_of(&s, "site.note").as_deref(), Some("two"));
    assert_eq!(imports(&s), 2);
}

#[tokio::test]
async fn copies_of_a_platform_message_handled_at_once_apply_once() {
    let (_d, s, w) = store();
    let records = vec![parameter("site.note", "one")];
    let (a, b) = tokio::join!(
        settle_platform(&s, &w, None, "p-1", records.clone(), NOW),
        settle_platform(&s, &w, None, "p-1", records, NOW),
    );
    assert!(a.0.applied, "{a:?}");
    assert_eq!(a.0, b.0);
    assert_eq!([a.1, b.1].iter().filter(|r| !**r).count(), 1, "{a:?} {b:?}");
    assert_eq!(imports(&s), 1);
}

#[tokio::test]
async fn a_refused_platform_message_is_checked_afresh_when_it_comes_again() {
    let (_d, s, w) = store();
    let vehicle = vec![json!({
        "kind": "vehicle", "plate": "粤B12345", "enterprise": "E1", "tare_kg": 15000
    })];
    let (refused, repeat) = settle_platform(&s, &w, None, "p-1", vehicle.clone(), NOW).await;
    assert!(!repeat && !refused.applied);
    assert_eq!(
        refused.rejected,
        [
            "bus message p-1:1: vehicle 粤B12345: field `enterprise`: enterprise E1 is not \
          registered (not in this batch, not in the store)"
        ]
    );
    assert!(
        s.snapshot()
            .expect("snapshot")
            .vehicle("粤B12345")
            .expect("read")
            .is_none(),
        "nothing of a refused message is written"
    );

    let enterprise = vec![json!({"kind": "enterprise", "code": "E1", "name": "华运物流"})];
    let (report, _) = settle_platform(&s, &w, None, "p-2", enterprise, NOW).await;
    assert!(report.applied, "{report:?}");
    let (applied, repeat) = settle_platform(&s, &w, None, "p-1", vehicle.clone(), NOW).await;
    assert!(!repeat && applied.applied, "{applied:?}");
    let (again, repeat) = settle_platform(&s, &w, None, "p-1", vehicle, NOW).await;
    assert!(repeat);
    assert_eq!(again, applied);
    assert_eq!(imports(&s), 2);
}

#[tokio::test]
async fn a_malformed_record_refuses_the_whole_message() {
    let (_d, s, w) = store();
    let records = vec![
        parameter("site.note", "one"),
        json!({"kind": "vehicle", "plate": "粤B12345"}),
    ];
    let (report, repeat) = settle_platform(&s, &w, None, "p-1", records, NOW).await;
    assert!(!repeat && !report.applied);
    assert_eq!(report.records, 2);
    assert!(
        report.rejected.iter().all(|r| r.starts_with("record 2: ")),
        "{:?}",
        report.rejected
    );
    assert_eq!(value_of(&s, "site.note"), None);
}
