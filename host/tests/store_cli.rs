//! `kakou store …` and `kakou data …` as an operator runs them: exit codes, messages, and the
//! read-only commands beside a process that is writing the store.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use kakou_host::store::{SCHEMA_VERSION, Store};

fn kakou(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kakou"))
        .args(args)
        .env_remove("KAKOU_STORE")
        .output()
        .expect("run kakou")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn sample() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/data/sample.jsonl")
}

#[test]
fn import_the_sample_then_again_then_check_backup_export() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("var/kakou.redb");
    let sample = sample();

    let out = kakou(&[
        "data",
        "import",
        "--store",
        s(&store),
        s(&sample),
        "--who",
        "op-9",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("changed 573 records (573 new, 0 updated), 0 unchanged"),
        "{stdout}"
    );
    // Not a terminal: no progress bar drawn.
    assert!(
        !text(&out.stderr).contains('\u{1b}'),
        "{}",
        text(&out.stderr)
    );

    let out = kakou(&["data", "import", "--store", s(&store), s(&sample)]);
    let stdout = text(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("nothing to change: all 573 records are already in the store"),
        "{stdout}"
    );

    let out = kakou(&["store", "check", s(&store)]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("schema    {SCHEMA_VERSION}")),
        "{stdout}"
    );
    assert!(stdout.contains("vehicles_by_tag"), "{stdout}");
    assert!(stdout.contains("problems  none"), "{stdout}");

    let backup = dir.path().join("backup.redb");
    let out = kakou(&["store", "backup", s(&store), s(&backup)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("backup checked: ok"));
    let out = kakou(&["store", "backup", s(&store), s(&backup)]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );

    let out = kakou(&[
        "store",
        "export",
        s(&backup),
        "--table",
        "control_orders",
        "--table",
        "audit",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5 + 1);
    assert!(lines[..5].iter().all(|l| l["table"] == "control_orders"));
    assert_eq!(lines[5]["table"], "audit");
    assert_eq!(lines[5]["value"]["who"], "op-9");
    assert_eq!(lines[5]["value"]["action"], "data.import");
    let out = kakou(&["store", "export", s(&backup), "--table", "vehicles_by_tag"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no table \"vehicles_by_tag\" to export"));
}

#[test]
fn a_bad_row_fails_the_import_naming_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("kakou.redb");
    let file = dir.path().join("feed.jsonl");
    std::fs::write(
        &file,
        concat!(
            "{\"kind\":\"enterprise\",\"code\":\"E1\",\"name\":\"x\"}\n",
            "{\"kind\":\"vehicle\",\"plate\":\"粤B12345\",\"enterprise\":\"E1\",\"tare_kg\":-3}\n",
        ),
    )
    .unwrap();
    let out = kakou(&["data", "import", "--store", s(&store), s(&file)]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "feed.jsonl:2: vehicle 粤B12345: field `tare_kg`: -3 kg is not a vehicle tare"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    let st = Store::open_read_only(&store).unwrap();
    assert!(st.snapshot().unwrap().enterprises().unwrap().is_empty());

    // A CSV whose kind cannot be told needs --kind.
    let csv = dir.path().join("p.csv");
    std::fs::write(&csv, "id,value\n1,2\n").unwrap();
    let out = kakou(&["data", "import", "--store", s(&store), s(&csv)]);
    assert!(
        text(&out.stderr).contains("give it with --kind"),
        "{}",
        text(&out.stderr)
    );
    let out = kakou(&[
        "data",
        "import",
        "--store",
        s(&store),
        s(&csv),
        "--kind",
        "lorry",
    ]);
    assert!(
        text(&out.stderr).contains("unknown kind \"lorry\""),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn read_only_commands_work_beside_a_running_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("kakou.redb");
    let mut writer = Command::new(env!("CARGO_BIN_EXE_kakou"))
        .args(["store", "soak", s(&store), "--count", "100000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(writer.stdout.take().unwrap());
    let mut line = String::new();
    for _ in 0..20 {
        line.clear();
        assert!(lines.read_line(&mut line).unwrap() > 0);
    }
    // The writer keeps writing while each of these runs (it is not blocked, nor are they).
    let check = kakou(&["store", "check", s(&store)]);
    let backup = dir.path().join("live-backup.redb");
    let copy = kakou(&["store", "backup", s(&store), s(&backup)]);
    let export = kakou(&["store", "export", s(&store), "--table", "passages"]);
    let import = kakou(&["data", "import", "--store", s(&store), s(&sample())]);
    let dry = kakou(&[
        "data",
        "import",
        "--store",
        s(&store),
        s(&sample()),
        "--dry-run",
    ]);
    for _ in 0..5 {
        line.clear();
        assert!(
            lines.read_line(&mut line).unwrap() > 0,
            "the writer went on"
        );
    }
    writer.kill().unwrap();
    writer.wait().unwrap();

    let stdout = text(&check.stdout);
    assert!(check.status.success(), "{stdout}");
    assert!(
        stdout.contains("not verified: another process holds the file"),
        "{stdout}"
    );
    assert!(copy.status.success(), "{}", text(&copy.stderr));
    assert!(text(&copy.stdout).contains("backup checked: ok"));
    assert!(export.status.success(), "{}", text(&export.stderr));
    assert!(text(&export.stdout).lines().count() >= 20);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(
        text(&dry.stdout).contains("would change 573 records"),
        "{}",
        text(&dry.stdout)
    );
    // Writing needs the file to itself: the daemon takes platform data over the bus.
    assert_eq!(import.status.code(), Some(1));
    assert!(
        text(&import.stderr).contains("open for writing in another process"),
        "{}",
        text(&import.stderr)
    );
}

#[test]
fn a_store_from_a_newer_kakou_is_refused_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("kakou.redb");
    {
        let db = redb::Database::create(&store).unwrap();
        let tx = db.begin_write().unwrap();
        let meta: redb::TableDefinition<'_, &str, u64> = redb::TableDefinition::new("meta");
        tx.open_table(meta)
            .unwrap()
            .insert("schema_version", 9)
            .unwrap();
        tx.commit().unwrap();
    }
    let want = format!(
        "{}: store schema version 9 is newer than this build of kakou reads (schema {SCHEMA_VERSION})",
        store.display()
    );
    for args in [
        vec!["store", "check", s(&store)],
        vec!["store", "export", s(&store)],
        vec!["data", "import", "--store", s(&store), s(&sample())],
    ] {
        let out = kakou(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            text(&out.stderr).contains(&want),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn check_fails_on_a_damaged_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kakou.redb");
    {
        let store = Store::open(&path).unwrap();
        let rec = kakou_host::store::sample::synthetic_passage(3, 1_795_737_600_000);
        store.write(|tx| tx.put_passage(&rec)).unwrap();
    }
    {
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        let idx: redb::TableDefinition<'_, (&str, i64, &str), ()> =
            redb::TableDefinition::new("passages_by_plate");
        let mut t = tx.open_table(idx).unwrap();
        t.insert(("粤B99999", 1, "L04-0000000003"), ()).unwrap();
        drop(t);
        tx.commit().unwrap();
    }
    let out = kakou(&["store", "check", s(&path)]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("problems  1"), "{stdout}");
    assert!(
        stdout.contains(
            "passages_by_plate [粤B99999]: stale: passage L04-0000000003 no longer has it"
        ),
        "{stdout}"
    );
    assert!(stdout.ends_with("FAILED\n"), "{stdout}");
}
