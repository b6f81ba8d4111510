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
        stderr.contains("plugin xk3190@1.0.0: refused: unknown setting `baud`: expected one of format, stable-count, stable-band-kg, report"),
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

/// Every documented example frame (DOMAIN.md §6), and a wire-format frame for each device that
/// has none there, fed through `kakou plugin feed` on the built component.
#[test]
fn feed_reproduces_the_documented_examples() {
    use kakou_host::sdk::wire;
    let hex = |s: &str| hex::decode(s.replace(' ', "")).unwrap();
    let epc = hex("E2000017221101441890ABCD");
    // (driver, settings, input bytes, what the JSON lines must contain)
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<u8>, Vec<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        (
            "xk3190",
            vec![],
            hex("02 2B 30 30 33 32 36 30 30 31 43 03"),
            vec![r#""type":"weight","kg":3260.0"#],
        ),
        (
            "xk3190",
            vec!["format=eq"],
            b"=000.3000=".to_vec(),
            vec![r#""kg":3.0"#],
        ),
        (
            "yaohua-a12",
            vec![],
            b"WG004.139kg3D\r\n".to_vec(),
            vec![r#""kg":4.139"#],
        ),
        (
            "yaohua-a12",
            vec![],
            b"         OL23\r\n".to_vec(),
            vec![r#""out_of_range":true"#],
        ),
        (
            "toledo-continuous",
            vec![],
            hex("02 2C 70 60 30 30 30 35 36 37 30 30 30 30 30 30 0D 23"),
            vec![r#""kg":5.67,"stable":true"#],
        ),
        (
            "mt-sics",
            vec![],
            wire::mt_sics::weight(100.5, 1, "kg", true),
            vec![r#""kg":100.5,"stable":true"#],
        ),
        (
            "chafon-uhf18",
            vec![],
            wire::chafon::inventory_reply(0, 0x01, &[&epc]),
            vec![r#""epc":"E2000017221101441890ABCD""#],
        ),
        (
            "impinj-r2000",
            vec![],
            wire::impinj::tag_report(1, 1, 0x3000, &epc, -60),
            vec![r#""epc":"E2000017221101441890ABCD","antenna":1,"rssi_dbm":-60"#],
        ),
        (
            "sm130",
            vec![],
            wire::sm130::tag_response(0x82, 0x02, &hex("04A22B91")),
            vec![r#""uid":"04A22B91","kind":"iso14443a""#],
        ),
        (
            "rdm6300",
            vec![],
            wire::rdm6300::frame(wire::rdm6300::card_id(0x62, 0xE3086CED)).to_vec(),
            vec![r#""uid":"62E3086CED","kind":"em4100""#],
        ),
        (
            "modbus-barrier",
            vec![],
            hex("01 05 00 00 FF 00 8C 3A"),
            vec![r#""code":"ack","message":"coil 0 on""#],
        ),
        (
            "lcus-relay",
            vec![],
            wire::lcus::status_line(1, true),
            vec![r#""code":"relay-on""#],
        ),
        (
            "nmea0183",
            vec![],
            b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n".to_vec(),
            vec![
                r#""lat":48.1173,"lon":11.516666666666667"#,
                r#""utc":"1994-03-23T12:35:19Z""#,
            ],
        ),
        (
            "jt701",
            vec![],
            b"(8000632862,P45,290322,132412,25.28217,S,57.54683,W,A,0,0,5,0,0000000000,0,0,9,0)"
                .to_vec(),
            vec![
                r#""type":"seal","id":"8000632862""#,
                r#""lat":-25.28217,"lon":-57.54683"#,
            ],
        ),
        (
            "hikvision-anpr",
            vec![],
            wire::hikvision::anpr_request(
                &wire::hikvision::AnprEvent::new(
                    "粤B12345",
                    "yellow",
                    96,
                    "2026-11-27T10:00:00+08:00",
                ),
                wire::hikvision::XmlEncoding::Gbk,
            ),
            vec![r#""text":"粤B12345","colour":"yellow","confidence":96"#],
        ),
        (
            "container-ocr",
            vec![],
            wire::container_ocr::json_line(&wire::container_ocr::OcrEvent {
                lane: "L01".into(),
                time: "2026-11-27T10:00:00+08:00".into(),
                id: String::new(),
                containers: vec![wire::container_ocr::OcrContainer::new(
                    "CSQU3054383",
                    "22G1",
                    kakou_host::sdk::model::ContainerPosition::Single,
                    93,
                )],
            }),
            vec![r#""number":"CSQU3054383","iso_type":"22G1""#],
        ),
    ];
    let mut wrong = Vec::new();
    for (driver, settings, input, expected) in &cases {
        let dir = format!("plugins/drivers/{driver}");
        common::plugin(&dir);
        let mut args = vec!["plugin", "feed", dir.as_str()];
        let sets: Vec<String> = settings.iter().map(|s| s.to_string()).collect();
        for s in &sets {
            args.extend(["--set", s.as_str()]);
        }
        let out = kakou(&args, Some(input));
        let stdout = text(&out.stdout);
        for e in expected {
            if !out.status.success() || !stdout.contains(e) {
                wrong.push(format!(
                    "{driver}: expected {e} in\n{stdout}{}",
                    text(&out.stderr)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A site with one scale lane, deciding with the cn-baseline rule set; `devices` and `extra`
/// ([site] lines) vary.
fn check_site(dir: &Path, extra: &str, devices: &str) -> std::path::PathBuf {
    let root = common::root();
    let path = dir.join("site.toml");
    std::fs::write(
        &path,
        format!(
            "[site]\nid = \"chk\"\noffice = \"5201\"\nplugins = \"{}\"\nallow-dev-plugins = true\n{extra}\n\n[[lane]]\nid = \"L01\"\ncategory = \"A\"\ndirection = \"import\"\ndevices = [\n{devices}]\n",
            root.join("plugins").display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn check_site_runs_every_check_without_starting_anything() {
    common::plugin(XK3190);
    for rules in ["plugins/rules/cn-baseline", WEIGHT] {
        common::plugin(rules);
    }
    let tmp = tempfile::tempdir().unwrap();
    let ruleset = format!(
        "ruleset = \"{}\"",
        common::root()
            .join("manifests/regions/cn-baseline.toml")
            .display()
    );
    let scale =
        "  { id = \"scale\", driver = \"xk3190\", transport = { serial = \"tty-scale\" } },\n";

    // A good site: ok, and nothing was opened (the serial port does not even exist).
    let good = check_site(tmp.path(), &ruleset, scale);
    let out = kakou(&["check", "--site", good.to_str().unwrap()], None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout, format!("{}: ok\n", good.display()));
    assert!(!tmp.path().join("tty-scale").exists());

    // Every kind of problem at once, each on its line, and a failing exit.
    let bad = check_site(
        tmp.path(),
        "ruleset = \"no-such-region\"",
        "  { id = \"scale\", driver = \"xk3190\", transport = { serial = \"tty-scale\" }, config = { stable-count = \"many\" } },\n  \
         { id = \"scale2\", driver = \"xk319\", transport = { serial = \"tty-scale\" } },\n  \
         { id = \"rfid\", driver = \"chafon-uhf18\", transport = { tcp = \"192.168.10.21\" } },\n",
    );
    let out = kakou(&["check", "--site", bad.to_str().unwrap()], None);
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    let site = bad.display().to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    // In file order: the driver name comes before the transport on line 14.
    assert!(
        lines[0].starts_with(&format!(
            "{site}:14:29: device L01/scale2: driver `xk319` is not installed"
        )) && lines[0].contains("did you mean `xk3190`?"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(&format!("{site}:14:50: device L01/scale2: serial port"))
            && lines[1].contains("is also device L01/scale's"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with(&format!("{site}:15:"))
            && lines[2]
                .contains("device L01/rfid: transport: `tcp` = \"192.168.10.21\" has no port"),
        "{stdout}"
    );
    assert!(
        lines[3].starts_with(&format!(
            "{site}: device L01/scale: driver `xk3190` refuses the device's settings:"
        )) && lines[3].contains("stable-count"),
        "{stdout}"
    );
    assert!(
        lines[4].starts_with(&format!("{site}: rule set \"no-such-region\":")),
        "{stdout}"
    );
    assert_eq!(lines[5], format!("{site}: 5 problems"));

    // `kakou run` refuses the same manifest before it starts anything.
    let out = kakou(&["run", "--site", bad.to_str().unwrap()], None);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("did you mean `xk3190`?"), "{stderr}");
    assert!(stderr.contains("has no port"), "{stderr}");
}
