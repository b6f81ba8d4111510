//! The integrator's commands, run as the real `kakou` binary on real plugin folders.

#![allow(clippy::unwrap_used)] // test helpers fail loudly, like the tests

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const XK3190: &str = "plugins/drivers/xk3190";
const WEIGHT: &str = "plugins/rules/weight-check";

fn kakou(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let cache = common::root().join("target").join("test-artifact-cache");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kakou"))
        .args(args)
        .current_dir(common::root())
        .env("KAKOU_CACHE_DIR", cache)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kakou");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("kakou finished")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_accepts_both_plugins_and_says_what_they_are() {
    common::plugin(XK3190);
    common::plugin(WEIGHT);
    let out = kakou(&["plugin", "check", XK3190], None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("plugin       xk3190 1.0.0"), "{stdout}");
    assert!(stdout.contains("kind         driver"), "{stdout}");
    assert!(
        stdout.contains("api          ^1.0 (linked against kakou:plugin@1.0.0)"),
        "{stdout}"
    );
    assert!(stdout.contains("devices      weighbridge"), "{stdout}");
    assert!(stdout.contains("limits       memory 8 MiB"), "{stdout}");
    assert!(stdout.ends_with("ok\n"), "{stdout}");

    let out = kakou(&["plugin", "check", WEIGHT], None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("kind         rules"), "{stdout}");
    assert!(
        stdout.contains("capabilities registrations, documents, parameters"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "checks       weight.measured, weight.declared, weight.tare, weight.tolerance"
        ),
        "{stdout}"
    );
}

#[test]
fn check_says_exactly_why_a_plugin_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::variant(WEIGHT, tmp.path(), |m| {
        m.replace("api = \"^1.0\"", "api = \"^2.0\"")
    });
    let out = kakou(&["plugin", "check", dir.to_str().unwrap()], None);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("refused at step `api version`: the plugin needs kakou:plugin ^2.0, but this host provides 1.0.0"), "{stderr}");

    std::fs::write(dir.join("plugin.toml"), "[plugin]\nname = \"x\"\n").unwrap();
    let out = kakou(&["plugin", "check", dir.to_str().unwrap()], None);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("plugin.toml:1:1: missing field `version`"),
        "{stderr}"
    );
}

#[test]
fn feed_turns_the_example_frame_into_3260_kg() {
    common::plugin(XK3190);
    let frames = Path::new(XK3190).join("fixtures/frames.bin");
    let out = kakou(&["plugin", "feed", XK3190, frames.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["type"], "weight");
    assert_eq!(lines[0]["kg"], 3260.0);
    assert_eq!(lines[0]["kind"], "gross");
    assert!(text(&out.stderr).contains("1 readings, 0 rejections"));
}

#[test]
fn feed_gives_the_same_readings_for_split_and_garbage_prefixed_input() {
    common::plugin(XK3190);
    let frame = std::fs::read(common::root().join(XK3190).join("fixtures/frames.bin")).unwrap();
    let whole = kakou(&["plugin", "feed", XK3190], Some(&frame));
    let mut dirty = b"\xfe\xff\x02garbage".to_vec();
    dirty.extend(&frame);
    for chunk in ["1", "5", "11"] {
        let out = kakou(
            &["plugin", "feed", XK3190, "-", "--chunk", chunk],
            Some(&dirty),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), text(&whole.stdout), "chunk {chunk}");
        assert!(
            text(&out.stderr).contains("rejected"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn feed_refuses_unknown_settings_with_the_list_of_known_ones() {
    common::plugin(XK3190);
    let out = kakou(&["plugin", "feed", XK3190, "--set", "baud=9600"], Some(b""));
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("plugin xk3190@1.0.0: refused: unknown setting `baud`: expected one of stable-count, stable-band-kg, report"),
        "{stderr}"
    );
}

#[test]
fn eval_prints_the_verdict() {
    common::plugin(WEIGHT);
    let passage = Path::new(WEIGHT).join("fixtures/passage.json");
    let out = kakou(&["plugin", "eval", WEIGHT, passage.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // 37900 − 15000 − 2200 = 20700 against 20000 ± 600: inspect.
    assert_eq!(verdict["outcome"], "inspect");
    assert_eq!(verdict["alarms"][0]["code"], "weight.mismatch");
    let tolerance = verdict["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "weight.tolerance")
        .unwrap();
    assert_eq!(tolerance["result"], "fail");
}

#[test]
fn eval_and_feed_refuse_the_wrong_kind() {
    common::plugin(XK3190);
    common::plugin(WEIGHT);
    let passage = Path::new(WEIGHT).join("fixtures/passage.json");
    let out = kakou(&["plugin", "eval", XK3190, passage.to_str().unwrap()], None);
    assert!(
        text(&out.stderr).contains("is a driver; `plugin eval` runs rule sets"),
        "{}",
        text(&out.stderr)
    );
    let out = kakou(&["plugin", "feed", WEIGHT], Some(b""));
    assert!(
        text(&out.stderr).contains("is a rules plugin; `plugin feed` runs drivers"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn eval_reports_a_malformed_passage_with_its_position() {
    common::plugin(WEIGHT);
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"id\": \"x\",\n  \"now_ms\": \"soon\"\n}\n").unwrap();
    let out = kakou(&["plugin", "eval", WEIGHT, bad.to_str().unwrap()], None);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not a passage file"), "{stderr}");
    assert!(
        stderr.contains("bad.json:3:18: invalid type: string \"soon\", expected i64"),
        "{stderr}"
    );
}
