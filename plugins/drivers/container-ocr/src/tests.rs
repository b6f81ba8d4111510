use super::*;
use kakou_plugin_sdk::harness::{feed_chunks, feed_split, open};
use kakou_plugin_sdk::wire::container_ocr::{
    OcrContainer, OcrEvent, heartbeat_json, heartbeat_text, http_request, json_event, json_line,
    status_json, status_text, text_line,
};

const TIME: &str = "2026-11-27T10:00:00+08:00";

fn event(lane: &str, containers: &[(&str, &str, ContainerPosition, u8)]) -> OcrEvent {
    OcrEvent {
        lane: lane.into(),
        time: TIME.into(),
        id: String::new(),
        containers: containers
            .iter()
            .map(|(n, iso, p, c)| OcrContainer::new(n, iso, *p, *c))
            .collect(),
    }
}

fn two_box() -> OcrEvent {
    event(
        "L01",
        &[
            ("CSQU3054383", "22G1", ContainerPosition::Front, 93),
            ("TCNU7200794", "22G1", ContainerPosition::Rear, 88),
        ],
    )
}

fn container(
    number: &str,
    iso: Option<&str>,
    position: ContainerPosition,
    confidence: u8,
) -> Container {
    Container {
        number: number.into(),
        iso_type: iso.map(str::to_owned),
        position,
        confidence,
    }
}

fn containers(out: &FeedOutput) -> Vec<Container> {
    out.readings
        .iter()
        .filter_map(|r| match &r.value {
            ReadingValue::Container(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn attr<'a>(r: &'a Reading, key: &str) -> Option<&'a str> {
    r.attributes
        .iter()
        .find(|a| a.key == key)
        .map(|a| a.value.as_str())
}

fn dropped(out: &FeedOutput) -> usize {
    out.rejected.iter().map(|r| r.bytes as usize).sum()
}

fn reasons(out: &FeedOutput) -> Vec<&str> {
    out.rejected.iter().map(|r| r.reason.as_str()).collect()
}

/// `fixtures/lines.txt`: what an OCR server writes on a TCP socket.
fn tcp_capture() -> Vec<u8> {
    let mut s = json_line(&two_box());
    s.extend(text_line(&event(
        "L02",
        &[("GYOU4047990", "45G1", ContainerPosition::Single, 97)],
    )));
    s.extend(heartbeat_text("L01", TIME));
    s.extend(json_line(&event(
        "L03",
        &[("CSQU3054384", "22G1", ContainerPosition::Single, 71)],
    )));
    s.extend(text_line(&event("L03", &[])));
    s.extend(heartbeat_json("L02", TIME));
    s.extend(status_text(
        "L02",
        TIME,
        StatusLevel::Warning,
        "dirty-lens",
        "front camera contrast low",
    ));
    s.extend(text_line(&two_box()));
    s
}

/// `fixtures/capture.bin`: the TCP capture with HTTP pushes interleaved.
fn mixed_capture() -> Vec<u8> {
    let mut s = tcp_capture();
    let mut http_event = event(
        "L04",
        &[("TCNU7200794", "45G1", ContainerPosition::Single, 90)],
    );
    http_event.id = "20261127100000-L04-0007".into();
    s.extend(http_request(&http_event));
    s.extend(json_line(&event(
        "L01",
        &[("GYOU4047990", "", ContainerPosition::Unknown, 64)],
    )));
    s
}

#[test]
fn documented_json_example() {
    let line = b"{\"event\":\"container\",\"lane\":\"L01\",\"time\":\"2026-11-27T10:00:00+08:00\",\"containers\":[{\"number\":\"CSQU3054383\",\"iso\":\"22G1\",\"position\":\"front\",\"confidence\":93}]}\n";
    assert_eq!(
        json_line(&event(
            "L01",
            &[("CSQU3054383", "22G1", ContainerPosition::Front, 93)]
        )),
        line.to_vec()
    );
    let out = feed_split::<ContainerOcr>(&[], line);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(
        containers(&out),
        vec![container(
            "CSQU3054383",
            Some("22G1"),
            ContainerPosition::Front,
            93
        )]
    );
    let r = &out.readings[0];
    assert_eq!(attr(r, "iso6346"), Some("valid"));
    assert_eq!(attr(r, "lane"), Some("L01"));
    assert_eq!(attr(r, "event-time"), Some(TIME));
    assert_eq!(attr(r, "index"), Some("1"));
    assert_eq!(attr(r, "count"), Some("1"));
    assert_eq!(attr(r, "format"), Some("json"));
    assert_eq!(attr(r, "http-target"), None);
}

#[test]
fn documented_text_example() {
    let line =
        b"CNTR|L01|2026-11-27T10:00:00+08:00|CSQU3054383,22G1,F,93;TCNU7200794,22G1,R,88\r\n";
    assert_eq!(text_line(&two_box()), line.to_vec());
    let out = feed_split::<ContainerOcr>(&[], line);
    assert_eq!(
        containers(&out),
        vec![
            container("CSQU3054383", Some("22G1"), ContainerPosition::Front, 93),
            container("TCNU7200794", Some("22G1"), ContainerPosition::Rear, 88),
        ]
    );
    assert_eq!(attr(&out.readings[1], "index"), Some("2"));
    assert_eq!(attr(&out.readings[1], "count"), Some("2"));
    assert_eq!(attr(&out.readings[1], "format"), Some("text"));
    assert!(
        out.readings
            .iter()
            .all(|r| attr(r, "iso6346") == Some("valid"))
    );
}

#[test]
fn domain_check_digit_examples() {
    // DOMAIN.md §5: CSQU305438 → 3, TCNU720079 → 4, GYOU404799 → 0.
    for (number, good, bad) in [
        ("CSQU305438", '3', '4'),
        ("TCNU720079", '4', '0'),
        ("GYOU404799", '0', '9'),
    ] {
        let ok = text_line(&event(
            "L",
            &[(
                &format!("{number}{good}"),
                "",
                ContainerPosition::Single,
                90,
            )],
        ));
        let out = feed_split::<ContainerOcr>(&[], &ok);
        assert_eq!(attr(&out.readings[0], "iso6346"), Some("valid"), "{number}");
        let wrong = text_line(&event(
            "L",
            &[(&format!("{number}{bad}"), "", ContainerPosition::Single, 90)],
        ));
        let out = feed_split::<ContainerOcr>(&[], &wrong);
        assert_eq!(
            attr(&out.readings[0], "iso6346"),
            Some(format!("check-digit-mismatch (expected {good})").as_str()),
            "{number}"
        );
    }
}

#[test]
fn check_digit_mismatch_is_reported_with_confidence_as_sent() {
    let out = feed_split::<ContainerOcr>(
        &[],
        &json_line(&event(
            "L03",
            &[("CSQU3054384", "22G1", ContainerPosition::Single, 71)],
        )),
    );
    assert!(out.rejected.is_empty());
    assert_eq!(
        containers(&out),
        vec![container(
            "CSQU3054384",
            Some("22G1"),
            ContainerPosition::Single,
            71
        )]
    );
    assert_eq!(
        attr(&out.readings[0], "iso6346"),
        Some("check-digit-mismatch (expected 3)")
    );
}

#[test]
fn malformed_numbers_are_reported_as_invalid() {
    let out = feed_split::<ContainerOcr>(
        &[],
        b"CNTR|L1||csqu 305438-3,22g1,S,80;CSQU30543,,U,40;C5QU3054383\r\n",
    );
    assert_eq!(
        containers(&out),
        vec![
            container("CSQU3054383", Some("22G1"), ContainerPosition::Single, 80),
            container("CSQU30543", None, ContainerPosition::Unknown, 40),
            container("C5QU3054383", None, ContainerPosition::Unknown, 0),
        ]
    );
    assert_eq!(attr(&out.readings[0], "iso6346"), Some("valid"));
    assert_eq!(
        attr(&out.readings[1], "iso6346"),
        Some("invalid: container number has 9 characters, expected 11")
    );
    assert_eq!(
        attr(&out.readings[2], "iso6346"),
        Some("invalid: owner code must be three letters A-Z")
    );
    assert_eq!(attr(&out.readings[0], "event-time"), None);
}

#[test]
fn no_container_seen() {
    for wire in [json_line(&event("L03", &[])), text_line(&event("L03", &[]))] {
        let out = feed_split::<ContainerOcr>(&[], &wire);
        assert_eq!(containers(&out), vec![Container::default()]);
        assert_eq!(attr(&out.readings[0], "no-container"), Some("true"));
        assert_eq!(attr(&out.readings[0], "lane"), Some("L03"));
    }
}

#[test]
fn heartbeats_and_status() {
    let mut input = heartbeat_json("L01", TIME);
    input.extend(heartbeat_text("L01", TIME));
    input.extend(status_json(
        "L01",
        TIME,
        StatusLevel::Fault,
        "camera-offline",
        "rear camera not responding",
    ));
    input.extend(status_text(
        "L02",
        TIME,
        StatusLevel::Warning,
        "dirty-lens",
        "contrast | low",
    ));
    let out = feed_split::<ContainerOcr>(&[], &input);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let statuses: Vec<&DeviceStatus> = out
        .readings
        .iter()
        .filter_map(|r| match &r.value {
            ReadingValue::Status(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses[0].level, StatusLevel::Fault);
    assert_eq!(statuses[0].code, "camera-offline");
    assert_eq!(statuses[0].message, "rear camera not responding");
    assert_eq!(statuses[1].level, StatusLevel::Warning);
    assert_eq!(statuses[1].message, "contrast | low");
    assert_eq!(attr(&out.readings[1], "lane"), Some("L02"));
}

#[test]
fn http_push_of_one_json_event() {
    let mut e = two_box();
    e.id = "E-42".into();
    let out = feed_split::<ContainerOcr>(&[], &http_request(&e));
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(containers(&out).len(), 2);
    let r = &out.readings[0];
    assert_eq!(attr(r, "http-target"), Some("/kakou/container-ocr"));
    assert_eq!(attr(r, "event-id"), Some("E-42"));
    assert_eq!(attr(r, "format"), Some("json"));

    // Pretty-printed JSON, numeric lane, fractional confidence, word positions in any case.
    let body = "{\n  \"event\": \"container\",\n  \"lane\": 7,\n  \"containers\": [\n    \
                {\"number\": \"GYOU4047990\", \"iso\": null, \"position\": \"SINGLE\", \"confidence\": 96.6}\n  ]\n}\n";
    let wire = Request::new("POST", "/ocr")
        .with_header("content-type", "application/json")
        .with_body(body.as_bytes().to_vec())
        .to_bytes();
    let out = feed_split::<ContainerOcr>(&[], &wire);
    assert_eq!(
        containers(&out),
        vec![container(
            "GYOU4047990",
            None,
            ContainerPosition::Single,
            97
        )]
    );
    assert_eq!(attr(&out.readings[0], "lane"), Some("7"));
}

#[test]
fn http_push_of_text_lines() {
    let mut body = text_line(&two_box());
    body.extend(b"CNTR|L9|x\r\n"); // bad field count
    body.extend(heartbeat_text("L01", TIME));
    let wire = Request::new("PUT", "/ocr").with_body(body).to_bytes();
    let out = feed_split::<ContainerOcr>(&[], &wire);
    assert_eq!(containers(&out).len(), 2);
    assert_eq!(reasons(&out).len(), 1);
    assert!(reasons(&out)[0].starts_with("PUT /ocr: CNTR line has 2 fields"));
    assert_eq!(dropped(&out), 11);
}

#[test]
fn captures_decode_the_same_however_split() {
    for input in [tcp_capture(), mixed_capture()] {
        let out = feed_split::<ContainerOcr>(&[], &input);
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        let chunked = feed_chunks(&mut open::<ContainerOcr>(&[]).unwrap(), &input, 13);
        assert_eq!(chunked.readings, out.readings);
    }
    let out = feed_split::<ContainerOcr>(&[], &mixed_capture());
    let numbers: Vec<String> = containers(&out).into_iter().map(|c| c.number).collect();
    assert_eq!(
        numbers,
        [
            "CSQU3054383",
            "TCNU7200794",
            "GYOU4047990",
            "CSQU3054384",
            "",
            "CSQU3054383",
            "TCNU7200794",
            "TCNU7200794",
            "GYOU4047990"
        ]
    );
    // Ten readings: nine containers and a status; heartbeats give none.
    assert_eq!(out.readings.len(), 10);
}

#[test]
fn fixtures_are_the_captures() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
    let files = [
        (format!("{dir}/lines.txt"), tcp_capture()),
        (format!("{dir}/capture.bin"), mixed_capture()),
    ];
    for (path, bytes) in files {
        if std::env::var_os("KAKOU_WRITE_FIXTURES").is_some() {
            std::fs::write(&path, &bytes).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{path}");
    }
}

#[test]
fn positions() {
    let out = feed_split::<ContainerOcr>(
        &[],
        b"CNTR|L|t|CSQU3054383,,f,1;CSQU3054383,,R,2;CSQU3054383,,s,3;CSQU3054383,,U,4;CSQU3054383,,,5;CSQU3054383,,X,6\r\n",
    );
    let got: Vec<ContainerPosition> = containers(&out).iter().map(|c| c.position).collect();
    use ContainerPosition::*;
    assert_eq!(got, [Front, Rear, Single, Unknown, Unknown, Unknown]);
    assert_eq!(attr(&out.readings[5], "position-raw"), Some("X"));
    assert_eq!(attr(&out.readings[4], "position-raw"), None);
    let out = feed_split::<ContainerOcr>(
        &[],
        b"{\"event\":\"container\",\"containers\":[{\"number\":\"CSQU3054383\",\"position\":\"middle\"}]}\n",
    );
    assert_eq!(containers(&out)[0].position, Unknown);
    assert_eq!(containers(&out)[0].confidence, 0);
    assert_eq!(attr(&out.readings[0], "position-raw"), Some("middle"));
}

#[test]
fn garbage_and_malformed_messages_are_rejected_and_counted() {
    let good = json_line(&two_box());
    let noise = b"\x00\xFFnoise ".to_vec();
    let bad: Vec<Vec<u8>> = vec![
        b"{\"event\":\"container\",\"containers\":[{\"number\":\"CSQU3054383\",}]}\n".to_vec(),
        b"{\"event\":\"container\",\"containers\":[{\"iso\":\"22G1\"}]}\n".to_vec(),
        b"{\"event\":\"container\",\"containers\":[{\"number\":\"CSQU3054383\",\"confidence\":130}]}\n".to_vec(),
        b"{\"event\":\"door-open\"}\n".to_vec(),
        b"{\"lane\":\"L1\"}\n".to_vec(),
        b"{\"event\":\"container\"}\n".to_vec(),
        b"CNTR|L1|t|CSQU3054383,22G1,F,abc\r\n".to_vec(),
        b"CNTR|L1\r\n".to_vec(),
        b"STAT|L1|t|panic|x|y\r\n".to_vec(),
        b"CNTR|L1|t|\xD4\xC1\r\n".to_vec(),
        Request::new("GET", "/").to_bytes(),
        Request::new("POST", "/ocr").to_bytes(),
        Request::new("POST", "/ocr")
            .with_body(b"{\"event\":".to_vec())
            .to_bytes(),
    ];
    let mut input = noise.clone();
    input.extend_from_slice(&good);
    for b in &bad {
        input.extend_from_slice(b);
    }
    input.extend_from_slice(b"garbage\r\n");
    input.extend_from_slice(&good);
    let out = feed_split::<ContainerOcr>(&[], &input);
    assert_eq!(containers(&out).len(), 4);
    let r = reasons(&out);
    assert_eq!(r.len(), 2 + bad.len(), "{r:?}");
    let expect = [
        "noise",
        "JSON: expected a member name at byte",
        "containers[0]: missing \"number\"",
        "containers[0]: confidence 130 is outside 0..100",
        "unknown event \"door-open\"",
        "missing \"event\"",
        "container event without \"containers\"",
        "container 1: confidence \"abc\" is not 0..100",
        "CNTR line has 1 fields after the tag, expected 3",
        "status level \"panic\" is not ok, warning or fault",
        "message is not UTF-8",
        "GET /: not a result push",
        "POST /ocr: empty body",
        "POST /ocr: JSON: unexpected end at byte 9",
        "noise",
    ];
    for (got, want) in r.iter().zip(expect) {
        assert!(got.contains(want), "{got:?} should contain {want:?}");
    }
    let bad_bytes: usize = bad.iter().map(Vec::len).sum();
    assert_eq!(dropped(&out), noise.len() + bad_bytes + 9);
}

#[test]
fn oversized_lines_and_bodies_are_skipped() {
    let mut huge = event("L01", &[]);
    huge.containers = (0..40)
        .map(|_| OcrContainer::new("CSQU3054383", "22G1", ContainerPosition::Front, 90))
        .collect();
    let long_line = json_line(&huge);
    let long_http = http_request(&huge);
    assert!(long_line.len() > 1024);
    let small = text_line(&two_box());
    let mut input = long_line.clone();
    input.extend_from_slice(&small);
    input.extend_from_slice(&long_http);
    input.extend_from_slice(&small);
    let out = feed_split::<ContainerOcr>(&[("max-message-kb", "1")], &input);
    assert_eq!(containers(&out).len(), 4);
    let r = reasons(&out);
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(r[0].contains("line longer than 1024 bytes"), "{r:?}");
    assert!(r[1].contains("exceeds the limit of 1024 bytes"), "{r:?}");
    assert_eq!(dropped(&out), long_line.len() + long_http.len());
    // Within the default limit both decode.
    let out = feed_split::<ContainerOcr>(&[], &long_line);
    assert_eq!(containers(&out).len(), 40);
}

#[test]
fn drain_returns_the_partial_message() {
    let line = json_line(&two_box());
    let mut d = open::<ContainerOcr>(&[]).unwrap();
    assert!(d.feed(&line[..50]).readings.is_empty());
    assert_eq!(d.drain(), line[..50].to_vec());
    let mut fresh = open::<ContainerOcr>(&[]).unwrap();
    fresh.feed(&line[..50]);
    assert_eq!(containers(&fresh.feed(&line[50..])).len(), 2);
}

#[test]
fn settings_are_checked() {
    let err = |s: &[(&str, &str)]| open::<ContainerOcr>(s).err().unwrap();
    assert!(err(&[("max-message-kb", "0")]).contains("`max-message-kb`"));
    assert!(err(&[("max-message-kb", "lots")]).contains("`max-message-kb`"));
    assert!(err(&[("max-message-kb", "16385")]).contains("`max-message-kb`"));
    assert!(err(&[("min-confidence", "50")]).contains("unknown setting `min-confidence`"));
    assert!(open::<ContainerOcr>(&[("max-message-kb", "16384")]).is_ok());
}

#[test]
fn takes_no_commands_and_is_not_polled() {
    let mut d = open::<ContainerOcr>(&[]).unwrap();
    assert!(d.poll().is_none());
    assert!(
        d.encode(&Command::Close)
            .unwrap_err()
            .contains("container-ocr takes no commands")
    );
    let desc = ContainerOcr::describe();
    assert_eq!(
        (desc.name.as_str(), desc.version.as_str()),
        ("container-ocr", "1.0.0")
    );
    // The JSON builder and the spec's example agree.
    assert!(json_event(&two_box()).starts_with("{\"event\":\"container\",\"lane\":\"L01\""));
}
