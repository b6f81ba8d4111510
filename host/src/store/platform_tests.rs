//! Platform data: parsing, validation, all-or-nothing application, idempotence.

use std::path::PathBuf;

use super::*;
use crate::store::sample;

const AT: i64 = 1_795_737_600_000;

fn setup() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path().join("kakou.redb")).expect("open");
    (dir, store)
}

fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn import(s: &Store, path: &Path, kind: Option<RecordKind>) -> ImportReport {
    s.import_file(path, kind, &ApplyOptions::new("op-1", AT), &mut |_| {})
        .expect("import")
}

const BASE: &str = r#"{"kind":"enterprise","code":"E1","name":"华运物流"}
{"kind":"station","code":"HP01","name":"黄埔","office":"5201"}
{"kind":"vehicle","plate":"粤B12345","enterprise":"E1","tare_kg":15000,"tag_epc":"e2000017221101441890abcd"}
{"kind":"driver","id":"D1","name":"陈伟","card_uid":"62E3086CED","enterprise":"E1","vehicles":["粤B12345"]}
{"kind":"document","document_kind":"transit-release","number":"T1","direction":"import","station":"HP01","containers":["CSQU 305438-3"],"declared_kg":20000}
{"kind":"control-order","id":"CO1","subject_kind":"container","subject":"TCNU7200794","reason":"risk","action":"inspect"}
{"kind":"parameter","name":"weight.tolerance-percent","value":3}
"#;

fn rejected(r: &ImportReport) -> Vec<String> {
    r.rejected.iter().map(ToString::to_string).collect()
}

#[test]
fn a_clean_file_is_applied_whole_and_normalised() {
    let (dir, s) = setup();
    let p = file(&dir, "base.jsonl", BASE);
    let r = import(&s, &p, None);
    assert!(r.rejected.is_empty(), "{:#?}", rejected(&r));
    assert!(r.applied);
    assert_eq!((r.records, r.changed()), (7, 7));
    let snap = s.snapshot().expect("snap");
    let v = snap.vehicle("粤B12345").expect("get").expect("vehicle");
    assert!(v.active, "active defaults to true");
    assert_eq!(v.tag_epc.as_deref(), Some("E2000017221101441890ABCD"));
    let d = snap.document("T1").expect("get").expect("doc");
    assert_eq!(
        d.kind,
        kakou_plugin_sdk::model::DocumentKind::TransitRelease
    );
    assert_eq!(d.containers, ["CSQU3054383"]);
    assert_eq!(
        snap.parameter("weight.tolerance-percent")
            .expect("get")
            .map(|p| p.value),
        Some("3".into())
    );
    let order = snap.control_order("CO1").expect("get").expect("order");
    assert_eq!((order.issued_by.as_str(), order.issued_ms), ("op-1", AT));
    let audit = snap.audit(1, 10).expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].entry.action, "data.import");
    assert_eq!(audit[0].entry.who, "op-1");
    assert!(audit[0].entry.subject.ends_with("base.jsonl"));
}

#[test]
fn one_bad_row_rejects_the_whole_file_and_names_line_and_field() {
    let (dir, s) = setup();
    let mut text = BASE.to_owned();
    text.push_str(r#"{"kind":"vehicle","plate":"粤B6K218","enterprise":"E1","tare_kg":"heavy"}"#);
    text.push('\n');
    text.push_str(r#"{"kind":"document","document_kind":"local-clearance","number":"L1","direction":"import","station":"HP01","containers":["CSQU3054384"]}"#);
    text.push('\n');
    let p = file(&dir, "bad.jsonl", &text);
    let r = import(&s, &p, None);
    assert!(!r.applied);
    let msgs = rejected(&r);
    assert_eq!(r.rejected.len(), 2, "{msgs:#?}");
    assert_eq!(r.rejected[0].origin.line, 8);
    assert_eq!(r.rejected[0].field, "tare_kg");
    assert!(r.rejected[0].reason.contains("invalid type"), "{msgs:#?}");
    assert!(
        msgs[0].contains("bad.jsonl:8: vehicle 粤B6K218: field `tare_kg`"),
        "{msgs:#?}"
    );
    assert_eq!(r.rejected[1].origin.line, 9);
    assert_eq!(r.rejected[1].field, "containers[0]");
    assert!(r.rejected[1].reason.contains("check digit"), "{msgs:#?}");
    // Nothing at all was applied, not even the good lines.
    let snap = s.snapshot().expect("snap");
    assert!(snap.vehicles().expect("all").is_empty());
    assert!(snap.enterprises().expect("all").is_empty());
    assert!(snap.parameters().expect("all").is_empty());
    assert!(snap.audit(1, 10).expect("audit").is_empty());
}

#[test]
fn importing_the_same_file_twice_changes_nothing_the_second_time() {
    let (dir, s) = setup();
    let p = file(&dir, "base.jsonl", BASE);
    assert_eq!(import(&s, &p, None).changed(), 7);
    let counts = s.snapshot().expect("snap").counts().expect("counts");
    let again = import(&s, &p, None);
    assert!(again.applied && again.rejected.is_empty());
    assert_eq!(again.changed(), 0);
    assert_eq!(again.totals().unchanged, 7);
    assert_eq!(
        s.snapshot().expect("snap").counts().expect("counts"),
        counts,
        "not even an audit entry"
    );
    assert_eq!(
        s.snapshot()
            .expect("snap")
            .parameter_history("weight.tolerance-percent")
            .expect("h")
            .len(),
        1
    );
    // One changed record is one update.
    let p2 = file(
        &dir,
        "more.jsonl",
        &BASE.replace("\"tare_kg\":15000", "\"tare_kg\":15100"),
    );
    let r = import(&s, &p2, None);
    assert_eq!((r.totals().updated, r.totals().unchanged), (1, 6));
}

#[test]
fn field_errors_name_the_field() {
    let (dir, s) = setup();
    let text = [
        r#"{"kind":"enterprise","code":"E9","name":"x","colour":"red"}"#,
        r#"{"kind":"station","code":"HP01","name":"x"}"#,
        r#"{"kind":"document","document_kind":"manifest","number":"T2","direction":"import","station":"HP01","containers":["CSQU3054383"]}"#,
        r#"{"kind":"lorry","plate":"粤B12345"}"#,
        r#"{"plate":"粤B12345"}"#,
        r#"{"kind":"vehicle","plate":"粤B1234","enterprise":"E1"}"#,
        r#"{"kind":"vehicle", "plate": }"#,
        r#"{"kind":"control-order","id":"C","subject_kind":"vehicle","subject":"粤B12345","reason":"r","action":"release"}"#,
        r#"{"kind":"parameter","name":"Weight Tolerance","value":"3"}"#,
        r#"{"kind":"vehicle","plate":"粤Z1234港","enterprise":"E1"}"#,
        r#"{"kind":"driver","id":"D","name":"n","card_uid":"XYZ","enterprise":"E1"}"#,
        r#"{"kind":"enterprise","code":"E1","name":"华运物流"}"#,
    ]
    .join("\n");
    let p = file(&dir, "f.jsonl", &text);
    let r = import(&s, &p, None);
    let got: Vec<(u64, &str)> = r
        .rejected
        .iter()
        .map(|x| (x.origin.line, x.field.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (1, "colour"),
            (2, "office"),
            (3, "document_kind"),
            (4, "kind"),
            (5, "kind"),
            (6, "plate"),
            (7, "-"),
            (8, "action"),
            (9, "name"),
            (10, "two_plate"),
            (11, "card_uid"),
        ],
        "{:#?}",
        rejected(&r)
    );
    let msgs = rejected(&r);
    assert!(
        msgs[0].contains("unknown field; a enterprise has code, name, status"),
        "{}",
        msgs[0]
    );
    assert!(msgs[1].contains("required"), "{}", msgs[1]);
    assert!(
        msgs[2].contains("unknown variant `manifest`"),
        "{}",
        msgs[2]
    );
    assert!(msgs[6].contains("not JSON"), "{}", msgs[6]);
    assert!(
        s.snapshot()
            .expect("snap")
            .enterprises()
            .expect("all")
            .is_empty()
    );
}

#[test]
fn references_must_resolve_in_the_batch_or_the_store() {
    let (dir, s) = setup();
    let orphan = r#"{"kind":"vehicle","plate":"粤B12345","enterprise":"E1"}
{"kind":"driver","id":"D1","name":"n","card_uid":"62E3086CED","enterprise":"E1","vehicles":["粤B6K218"]}
{"kind":"document","document_kind":"bonded","number":"B1","direction":"import","station":"HP09","plate":"粤B12345"}"#;
    let r = import(&s, &file(&dir, "o.jsonl", orphan), None);
    let got: Vec<(u64, &str)> = r
        .rejected
        .iter()
        .map(|x| (x.origin.line, x.field.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (1, "enterprise"),
            (2, "enterprise"),
            (2, "vehicles[0]"),
            (3, "station")
        ],
        "{:#?}",
        rejected(&r)
    );
    assert!(rejected(&r)[0].contains("enterprise E1 is not registered"));
    // With the enterprise and station already stored, the vehicle alone goes in.
    let base = r#"{"kind":"enterprise","code":"E1","name":"x"}
{"kind":"station","code":"HP09","name":"y","office":"5201"}"#;
    assert_eq!(import(&s, &file(&dir, "b.jsonl", base), None).changed(), 2);
    let r = import(
        &s,
        &file(
            &dir,
            "v.jsonl",
            r#"{"kind":"vehicle","plate":"粤B12345","enterprise":"E1"}"#,
        ),
        None,
    );
    assert!(r.rejected.is_empty(), "{:#?}", rejected(&r));
}

#[test]
fn tags_and_cards_stay_unique() {
    let (dir, s) = setup();
    import(&s, &file(&dir, "base.jsonl", BASE), None);
    // The tag belongs to 粤B12345 in the store.
    let steal = r#"{"kind":"vehicle","plate":"粤B6K218","enterprise":"E1","tag_epc":"E2000017221101441890ABCD"}"#;
    let r = import(&s, &file(&dir, "s.jsonl", steal), None);
    assert_eq!(r.rejected.len(), 1, "{:#?}", rejected(&r));
    assert!(rejected(&r)[0].contains("tag E2000017221101441890ABCD is bound to vehicle 粤B12345"));
    // Moving it in one batch (the old holder drops it) is fine.
    let moved = format!(
        "{steal}\n{}",
        r#"{"kind":"vehicle","plate":"粤B12345","enterprise":"E1","tare_kg":15000}"#
    );
    let r = import(&s, &file(&dir, "m.jsonl", &moved), None);
    assert!(r.rejected.is_empty(), "{:#?}", rejected(&r));
    assert_eq!(
        s.snapshot()
            .expect("snap")
            .vehicle_by_tag("E2000017221101441890ABCD")
            .expect("get")
            .map(|v| v.plate),
        Some("粤B6K218".into())
    );
    // A card bound to another driver; the same key twice with different content.
    let dup = r#"{"kind":"driver","id":"D2","name":"m","card_uid":"62e3086ced","enterprise":"E1"}
{"kind":"enterprise","code":"E1","name":"华运物流"}
{"kind":"enterprise","code":"E1","name":"other"}"#;
    let r = import(&s, &file(&dir, "d.jsonl", dup), None);
    let msgs = rejected(&r);
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    assert!(msgs.iter().any(|m| m.contains("d.jsonl:1") && m.contains("card 62E3086CED is bound to driver D1")), "{msgs:#?}");
    assert!(
        msgs.iter().any(|m| m.contains("d.jsonl:3")
            && m.contains("conflicts with")
            && m.contains("d.jsonl:2")),
        "{msgs:#?}"
    );
    s.snapshot()
        .expect("snap")
        .check()
        .map(|c| assert!(c.is_clean(), "{:?}", c.problems))
        .expect("check");
}

#[test]
fn csv_files_are_one_kind_each() {
    let (dir, s) = setup();
    import(&s, &file(&dir, "base.jsonl", BASE), None);
    let vehicles = "plate,enterprise,tare_kg,tag_epc,two_plate,foreign_plate,customs_code,active\n\
                    粤B6K218,E1,16200,,no,,00123,yes\n\
                    粤Z1234港,E1,14500.5,E2000017221101441890FFFF,true,KT8848,,1\n\
                    \n";
    let r = import(&s, &file(&dir, "vehicles.csv", vehicles), None);
    assert!(r.rejected.is_empty(), "{:#?}", rejected(&r));
    assert_eq!(
        r.by_kind.get(&RecordKind::Vehicle).map(|c| c.inserted),
        Some(2)
    );
    let snap = s.snapshot().expect("snap");
    let v = snap.vehicle("粤B6K218").expect("get").expect("v");
    assert_eq!(
        (v.tare_kg, v.customs_code.as_deref(), v.tag_epc.as_deref()),
        (Some(16_200.0), Some("00123"), None)
    );
    let hk = snap
        .vehicle_by_any_plate("KT8848")
        .expect("get")
        .expect("hk");
    assert_eq!((hk.two_plate, hk.tare_kg), (true, Some(14_500.5)));
    drop(snap);

    // Lists are `;`-separated; an ambiguous header needs --kind; bad cells name line and field.
    let docs = "number,document_kind,direction,station,containers,declared_kg\n\
                T9,transit-release,import,HP01,CSQU3054383; TCNU7200794,21000\n\
                T10,transit-release,sideways,HP01,GYOU4047990,x\n";
    let r = import(&s, &file(&dir, "docs.csv", docs), None);
    let got: Vec<(u64, &str)> = r
        .rejected
        .iter()
        .map(|x| (x.origin.line, x.field.as_str()))
        .collect();
    assert_eq!(
        got,
        [(3, "declared_kg"), (3, "direction")],
        "{:#?}",
        rejected(&r)
    );
    let fixed = docs
        .replace("sideways", "import")
        .replace(",x\n", ",9000\n");
    let r = import(&s, &file(&dir, "docs2.csv", &fixed), None);
    assert!(r.rejected.is_empty(), "{:#?}", rejected(&r));
    assert_eq!(
        s.snapshot()
            .expect("snap")
            .documents_by_container("TCNU7200794")
            .expect("q")
            .len(),
        1
    );

    let ambiguous = "code,name\nE7,x\n";
    let r = import(&s, &file(&dir, "e.csv", ambiguous), None);
    assert!(
        r.rejected.is_empty(),
        "enterprise is the only kind with just code and name"
    );
    let stations = "code,name,office\nNS01,南沙,5202\n";
    let r = import(&s, &file(&dir, "st.csv", stations), None);
    assert!(
        r.rejected.is_empty() && r.changed() == 1,
        "{:#?}",
        rejected(&r)
    );
    let unknown = "name,value\nweight.deduction,none\n";
    let r = import(&s, &file(&dir, "p.csv", unknown), None);
    assert!(
        r.rejected.is_empty(),
        "parameter fits name,value: {:#?}",
        rejected(&r)
    );
    let nothing_fits = "id,value\n1,2\n";
    let r = import(&s, &file(&dir, "x.csv", nothing_fits), None);
    assert_eq!(r.rejected.len(), 1);
    assert!(
        rejected(&r)[0].contains("give it with --kind"),
        "{:#?}",
        rejected(&r)
    );
    let r = import(
        &s,
        &file(&dir, "x2.csv", nothing_fits),
        Some(RecordKind::Parameter),
    );
    assert_eq!(r.rejected[0].field, "id");
}

#[test]
fn control_orders_are_revoked_by_the_platform() {
    let (dir, s) = setup();
    import(&s, &file(&dir, "base.jsonl", BASE), None);
    let revoke = r#"{"kind":"control-order","id":"CO1","subject_kind":"container","subject":"TCNU7200794","reason":"risk","action":"inspect","revoked_ms":1795737600500}"#;
    let r = import(&s, &file(&dir, "r.jsonl", revoke), None);
    assert_eq!(r.totals().updated, 1, "{:#?}", rejected(&r));
    let o = s
        .snapshot()
        .expect("snap")
        .control_order("CO1")
        .expect("get")
        .expect("order");
    assert_eq!(
        (o.revoked_ms, o.revoked_by.as_deref(), o.issued_ms),
        (Some(AT + 500), Some("op-1"), AT)
    );
    assert!(o.in_force(AT + 499) && !o.in_force(AT + 500));
}

#[test]
fn a_dry_run_validates_and_writes_nothing() {
    let (dir, s) = setup();
    let p = file(&dir, "base.jsonl", BASE);
    let mut options = ApplyOptions::new("op", AT);
    options.dry_run = true;
    let r = s
        .import_file(&p, None, &options, &mut |_| {})
        .expect("import");
    assert!(!r.applied && r.rejected.is_empty());
    assert_eq!(r.changed(), 7);
    assert!(
        s.snapshot()
            .expect("snap")
            .enterprises()
            .expect("all")
            .is_empty()
    );
}

#[test]
fn the_bus_applies_records_the_same_way() {
    let (_d, s) = setup();
    let records = sample::sample_records();
    let options = ApplyOptions::new("platform", AT);
    let r = s.apply_platform_records(&records, &options).expect("apply");
    assert!(r.rejected.is_empty(), "{:#?}", rejected(&r));
    assert_eq!(r.changed(), records.len() as u64);
    let again = s.apply_platform_records(&records, &options).expect("apply");
    assert_eq!(again.changed(), 0);
    let bad = vec![Record::Vehicle(Vehicle {
        plate: "XX".into(),
        enterprise: "E4403001".into(),
        ..Default::default()
    })];
    let r = s.apply_platform_records(&bad, &options).expect("apply");
    assert_eq!(
        rejected(&r),
        [
            "platform:1: vehicle XX: field `plate`: plate has 2 characters, expected 7 (8 for new energy)"
        ]
    );
    assert!(
        s.snapshot()
            .expect("snap")
            .check()
            .expect("check")
            .is_clean()
    );
}

#[test]
fn records_round_trip_through_their_json_lines() {
    for r in sample::sample_records() {
        let line = r.to_line();
        assert!(
            line.starts_with(&format!("{{\"kind\":\"{}\"", r.kind().name())),
            "{line}"
        );
        let back: Record = serde_json::from_str(&line).expect("parses");
        assert_eq!(back, r, "{line}");
    }
    let e = serde_json::from_str::<Record>(r#"{"kind":"station","code":""}"#).expect_err("refused");
    assert!(e.to_string().contains("field `code`: required"), "{e}");
}

#[test]
fn progress_is_reported_for_each_stage() {
    let (dir, s) = setup();
    let p = file(&dir, "base.jsonl", BASE);
    let mut seen = Vec::new();
    s.import_file(&p, None, &ApplyOptions::new("op", AT), &mut |p| {
        seen.push(p)
    })
    .expect("import");
    let total = BASE.len() as u64;
    assert!(seen.contains(&Progress::Reading(total, total)), "{seen:?}");
    assert!(seen.contains(&Progress::Validating(7, 7)), "{seen:?}");
    assert!(seen.contains(&Progress::Applying(7, 7)), "{seen:?}");
}

#[test]
fn spreadsheet_exports_in_gbk_or_with_a_bom_are_read() {
    let (dir, s) = setup();
    let csv = "code,name,status\nE1,华运物流,active\n";
    let (gbk, _, _) = encoding_rs::GBK.encode(csv);
    let p = dir.path().join("gbk.csv");
    std::fs::write(&p, &gbk).expect("write");
    let r = import(&s, &p, None);
    assert!(r.rejected.is_empty(), "{:#?}", rejected(&r));
    let e = s.snapshot().expect("snap").enterprise("E1").expect("get");
    assert_eq!(e.map(|e| e.name), Some("华运物流".into()));

    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(
        r#"{"kind":"station","code":"HP01","name":"黄埔","office":"5201"}"#.as_bytes(),
    );
    let p = dir.path().join("bom.jsonl");
    std::fs::write(&p, &bom).expect("write");
    let r = import(&s, &p, None);
    assert!(
        r.rejected.is_empty() && r.changed() == 1,
        "{:#?}",
        rejected(&r)
    );

    let p = dir.path().join("binary.csv");
    std::fs::write(&p, [0x81u8, 0x20, 0xff, 0xfe]).expect("write");
    let r = import(&s, &p, None);
    assert_eq!(rejected(&r).len(), 1);
    assert!(
        rejected(&r)[0].contains("neither UTF-8 nor GBK"),
        "{:#?}",
        rejected(&r)
    );
}

#[test]
fn a_feed_given_the_site_catalogue_refuses_parameters_nothing_reads() {
    use crate::config::params::{DeclaredBy, ParamType, ParameterCatalog, ParameterSpec, Range};
    let (_d, s) = setup();
    let mut catalog = ParameterCatalog::new();
    let by = DeclaredBy::RuleSet {
        id: "t@1".into(),
        path: "r.toml".into(),
    };
    catalog.declare(ParameterSpec::new(
        "weight.tolerance-percent",
        ParamType::Decimal(Range {
            min: Some(0.0),
            max: Some(100.0),
        }),
        by.clone(),
    ));
    catalog.declare(ParameterSpec::new(
        "driver.require-vehicle-binding",
        ParamType::Boolean,
        by,
    ));
    let param = |name: &str, value: &str| {
        Record::Parameter(PlatformParameter {
            name: name.into(),
            value: value.into(),
        })
    };
    let options = ApplyOptions::new("platform", AT).with_catalog(Arc::new(catalog));
    let bad = [
        param("weight.tolerance-percent", "2"),
        param("check.driver-card-required", "true"),
        param("driver.require-vehicle-binding", "sometimes"),
        param("Weight Tolerance", "3"),
    ];
    let r = s.apply_platform_records(&bad, &options).expect("apply");
    assert!(!r.applied);
    let fields: Vec<(u64, &str)> = r
        .rejected
        .iter()
        .map(|x| (x.origin.line, x.field.as_str()))
        .collect();
    // The malformed name is refused once, by the record's own checks.
    assert_eq!(
        fields,
        [(2, "name"), (3, "value"), (4, "name")],
        "{:#?}",
        rejected(&r)
    );
    assert!(
        rejected(&r)[0].contains("unknown parameter `check.driver-card-required`"),
        "{:#?}",
        rejected(&r)
    );
    assert!(
        s.snapshot()
            .expect("snap")
            .parameters()
            .expect("all")
            .is_empty()
    );

    // Accepted values are stored canonically.
    let good = [
        param("weight.tolerance-percent", " 2.50"),
        param("driver.require-vehicle-binding", "yes"),
    ];
    let r = s.apply_platform_records(&good, &options).expect("apply");
    assert!(r.applied, "{:#?}", rejected(&r));
    let stored: Vec<(String, String)> = s
        .snapshot()
        .expect("snap")
        .parameters()
        .expect("all")
        .into_iter()
        .map(|p| (p.name, p.value))
        .collect();
    assert_eq!(
        stored,
        [
            (
                "driver.require-vehicle-binding".to_owned(),
                "true".to_owned()
            ),
            ("weight.tolerance-percent".to_owned(), "2.5".to_owned())
        ]
    );
    // Without a catalogue (`kakou data import`), any well-formed name is taken.
    let r = s
        .apply_platform_records(&[param("site.note", "x")], &ApplyOptions::new("op", AT))
        .expect("apply");
    assert!(r.applied);
}

#[test]
fn a_batch_is_applied_inside_the_callers_transaction_with_its_other_writes() {
    let (_d, s) = setup();
    let records = sample::sample_records();
    let options = ApplyOptions::new("platform", AT);
    let batch = PlatformBatch::new(&records, &options);
    let (report, seq) = s
        .write(|tx| {
            let report = batch.apply(tx)?;
            // The caller's own write in the same transaction, as the daemon keeps the report.
            let seq = tx.audit(AuditEntry {
                who: "test".into(),
                when_ms: AT,
                action: "test.after-import".into(),
                subject: "batch".into(),
                before: None,
                after: None,
            })?;
            Ok::<_, StoreError>((report, seq))
        })
        .expect("write");
    assert!(report.applied, "{:#?}", rejected(&report));
    assert_eq!(report.changed(), records.len() as u64);
    let audit = s.snapshot().expect("snap").audit(1, 10).expect("audit");
    let actions: Vec<&str> = audit.iter().map(|a| a.entry.action.as_str()).collect();
    assert_eq!(actions, ["data.import", "test.after-import"]);
    assert_eq!(seq, 2);

    // A dry run in a transaction checks against it and writes nothing.
    let mut dry = ApplyOptions::new("platform", AT);
    dry.dry_run = true;
    let changed = [Record::Parameter(PlatformParameter {
        name: "site.note".into(),
        value: "x".into(),
    })];
    let report = s
        .write(|tx| PlatformBatch::new(&changed, &dry).apply(tx))
        .expect("write");
    assert!(!report.applied && report.rejected.is_empty());
    assert_eq!(report.changed(), 1);
    assert!(
        s.snapshot()
            .expect("snap")
            .parameter("site.note")
            .expect("read")
            .is_none()
    );
}
