//! `kakou demo` end to end: three lanes (categories A, B, C) on simulated devices over ptys,
//! TCP and HTTP, the embedded broker, the cn-baseline and weight-check rule sets built from
//! source, and the demo's operator on the bus. Every business flow lands in the store as it
//! should; then `kakou replay` shows what the guangdong-pilot rule set would have decided on the
//! same recorded passages.

#![allow(clippy::unwrap_used)] // test helpers fail loudly, like the tests

mod common;

use std::process::Command;

use kakou_host::sdk::model::{CheckResult, Outcome};
use kakou_host::store::{PassageRecord, PassageState, Store};

fn check(r: &PassageRecord, code: &str) -> Option<CheckResult> {
    r.verdict
        .as_ref()?
        .checks
        .iter()
        .find(|c| c.code == code)
        .map(|c| c.result)
}

#[test]
fn the_demo_decides_every_flow_and_replay_shows_the_pilot_rules() {
    for p in [
        "plugins/drivers/xk3190",
        "plugins/drivers/yaohua-a12",
        "plugins/drivers/toledo-continuous",
        "plugins/drivers/chafon-uhf18",
        "plugins/drivers/impinj-r2000",
        "plugins/drivers/hikvision-anpr",
        "plugins/drivers/container-ocr",
        "plugins/drivers/rdm6300",
        "plugins/drivers/modbus-barrier",
        "plugins/drivers/lcus-relay",
        "plugins/rules/cn-baseline",
        "plugins/rules/weight-check",
        "plugins/rules/guangdong-pilot",
    ] {
        common::plugin(p);
    }
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_kakou"))
        .args(["demo", "--trucks", "10", "--dir"])
        .arg(&demo_dir)
        .env(
            "KAKOU_CACHE_DIR",
            common::root().join("target/test-artifact-cache"),
        )
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{log}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(log.contains("summary"), "{log}");

    let store_path = demo_dir.join("kakou.redb");
    let store = Store::open_for_reading(&store_path).unwrap();
    let snap = store.snapshot().unwrap();
    let by_plate = |plate: &str| -> Vec<PassageRecord> {
        let mut v = snap.passages_by_plate(plate).unwrap();
        v.sort_by_key(|r| r.passage.started_ms);
        v
    };
    let verdict = |r: &PassageRecord| r.verdict.as_ref().unwrap().outcome;

    // Category A, normal flow: every reading from a device, every check passes, released.
    let clean = &by_plate("粤B12345")[0];
    assert_eq!(
        (verdict(clean), clean.state, clean.manual_actions.len()),
        (Outcome::Release, PassageState::Decided, 0),
        "{:?}",
        clean.verdict
    );
    assert!(
        clean
            .verdict
            .as_ref()
            .unwrap()
            .checks
            .iter()
            .all(|c| c.result == CheckResult::Pass),
        "{:?}",
        clean.verdict
    );
    // The unregistered driver card on the same truck goes to inspection, then refused.
    let stranger = &by_plate("粤B12345")[1];
    assert_eq!(check(stranger, "driver.card"), Some(CheckResult::Fail));
    assert_eq!(
        (stranger.state, stranger.outcome),
        (PassageState::Inspected, Some(Outcome::Refuse))
    );

    // Read failure → manual: the misread container is kept, superseded; the operator's entry
    // decides, and the truck is released.
    let misread = &by_plate("粤B77Q02")[0];
    assert_eq!(misread.manual_actions[0].action, "complete");
    assert_eq!(misread.outcome, Some(Outcome::Release));
    let containers: Vec<_> = misread
        .passage
        .containers()
        .iter()
        .map(|c| c.number.clone())
        .collect();
    assert_eq!(containers, ["MSKU1234565"]);
    assert!(misread.passage.observations.iter().any(|o| o.superseded));

    // Mismatch → inspection: overweight, then refused after the inspection.
    let heavy = &by_plate("粤BH3306")[0];
    assert_eq!(check(heavy, "weight.tolerance"), Some(CheckResult::Fail));
    assert_eq!(verdict(heavy), Outcome::Inspect);
    assert_eq!(heavy.state, PassageState::Inspected);

    // Control orders on the container and the driver.
    let controlled = &by_plate("粤B31D86")[0];
    assert_eq!(
        check(controlled, "control.container"),
        Some(CheckResult::Fail)
    );
    assert_eq!(check(controlled, "control.driver"), Some(CheckResult::Fail));

    // A transit past its time limit.
    let late = &by_plate("粤B2K590")[0];
    assert_eq!(check(late, "transit.time-limit"), Some(CheckResult::Fail));

    // The two-plate vehicle entered: its balance counts one entry.
    let two_plate = &by_plate("粤Z1234港")[0];
    assert_eq!(two_plate.outcome, Some(Outcome::Release));
    assert_eq!(snap.balance("粤Z1234港").unwrap(), 1);

    // Category B (export) and C (bulk): the operator keys in what the lane has no device for.
    for (plate, lane) in [("粤B6N315", "L02"), ("粤E7Q218", "L03")] {
        let r = &by_plate(plate)[0];
        assert_eq!(r.passage.lane.id, lane);
        assert_eq!(verdict(r), Outcome::Release, "{plate}: {:?}", r.verdict);
        assert_eq!(r.manual_actions[0].action, "complete");
        assert!(r.decided_by.iter().any(|p| p.name == "cn-baseline"));
        assert_eq!(r.passage.attribute("ruleset"), Some("cn-baseline@2026.1"));
    }

    // Category B, mismatch: the export truck 4 t over its declaration goes to inspection.
    let heavy_export = &by_plate("粤B6N315")[1];
    assert_eq!(
        check(heavy_export, "weight.tolerance"),
        Some(CheckResult::Fail)
    );
    assert_eq!(
        (heavy_export.state, heavy_export.outcome),
        (PassageState::Inspected, Some(Outcome::Refuse))
    );

    // The same recorded passages under the Guangdong pilot: the two-plate vehicle now has an
    // open entry (the one it just made) and its drivers must be bound to their vehicles.
    let out = Command::new(env!("CARGO_BIN_EXE_kakou"))
        .args([
            "replay",
            "--ruleset",
            "guangdong-pilot",
            "--json",
            "--store",
        ])
        .arg(&store_path)
        .args(["--plugins"])
        .arg(common::root().join("plugins"))
        .args(["--regions"])
        .arg(common::root().join("manifests/regions"))
        .env(
            "KAKOU_CACHE_DIR",
            common::root().join("target/test-artifact-cache"),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ruleset"], "guangdong-pilot@2026.1");
    assert_eq!(report["passages"], 10);
    let changes = report["changes"].as_array().unwrap();
    let change = |id: &str| changes.iter().find(|c| c["passage"] == id);
    let z = change(&two_plate.passage.id).expect("the two-plate entry changes under the pilot");
    assert_eq!(
        (z["before"].as_str(), z["after"].as_str()),
        (Some("release"), Some("inspect"))
    );
    assert!(
        z["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["code"] == "pilot.two-plate.balance" && c["after"] == "fail"),
        "{z}"
    );
    // The clean truck's driver is bound to his vehicle: nothing changes for him.
    assert!(change(&clean.passage.id).is_none(), "{report}");
}

/// Every check of the rule sets passes and fails as its fixtures say, run as the built
/// components in the sandbox (`kakou plugin test`).
#[test]
fn the_rule_sets_pass_their_fixtures_in_the_sandbox() {
    for rel in [
        "plugins/rules/cn-baseline",
        "plugins/rules/guangdong-pilot",
        "plugins/rules/weight-check",
    ] {
        let dir = common::plugin(rel);
        let out = Command::new(env!("CARGO_BIN_EXE_kakou"))
            .args(["plugin", "test"])
            .arg(&dir)
            .env(
                "KAKOU_CACHE_DIR",
                common::root().join("target/test-artifact-cache"),
            )
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{rel}: {text}");
        assert!(text.contains("0 mismatched, 0 errors"), "{rel}: {text}");
    }
}
