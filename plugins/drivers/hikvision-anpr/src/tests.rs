use super::*;
use kakou_plugin_sdk::harness::{feed_chunks, feed_split, open};
use kakou_plugin_sdk::wire::hikvision::{
    self as hik, AnprEvent, FormPart, XmlEncoding, anpr_request, anpr_xml, event_xml,
    multipart_request, xml_request,
};

const TIME: &str = "2026-11-27T10:00:00+08:00";

fn event(plate: &str, colour: &str, confidence: u8) -> AnprEvent {
    AnprEvent::new(plate, colour, confidence, TIME)
}

fn plates(out: &FeedOutput) -> Vec<Plate> {
    out.readings
        .iter()
        .filter_map(|r| match &r.value {
            ReadingValue::Plate(p) => Some(p.clone()),
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

fn plate(text: &str, colour: PlateColour, confidence: u8) -> Plate {
    Plate {
        text: text.into(),
        colour,
        confidence,
        char_confidence: Vec::new(),
    }
}

fn dropped(out: &FeedOutput) -> usize {
    out.rejected.iter().map(|r| r.bytes as usize).sum()
}

/// The capture in `fixtures/anpr.bin`: a UTF-8 read, a GBK read, the idle keep-alive, a
/// no-plate read, and a bare-XML read of a new-energy plate.
fn capture() -> Vec<u8> {
    let mut s = anpr_request(&event("粤B12345", "blue", 96), XmlEncoding::Utf8);
    let mut gbk = event("粤Z1234港", "black", 91);
    gbk.char_confidence = vec![99, 98, 97, 90, 88, 95, 93];
    gbk.direction = "reverse".into();
    s.extend(anpr_request(&gbk, XmlEncoding::Gbk));
    s.extend(xml_request(
        &event_xml("videoloss", "inactive", 1, TIME),
        "application/xml; charset=\"UTF-8\"",
    ));
    s.extend(anpr_request(
        &event("无车牌", "unknown", 0),
        XmlEncoding::Gbk,
    ));
    s.extend(xml_request(
        &anpr_xml(&event("沪AD12345", "green", 88), XmlEncoding::Utf8),
        "application/xml",
    ));
    s
}

#[test]
fn documented_example_multipart_xml_and_jpeg() {
    // DOMAIN.md §6: multipart/form-data, EventNotificationAlert with eventType ANPR,
    // licensePlate, confidenceLevel, plus JPEG pictures.
    let wire = anpr_request(&event("粤B12345", "blue", 96), XmlEncoding::Utf8);
    let out = feed_split::<HikvisionAnpr>(&[], &wire);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(plates(&out), vec![plate("粤B12345", PlateColour::Blue, 96)]);
    let r = &out.readings[0];
    assert_eq!(attr(r, "event-time"), Some(TIME));
    assert_eq!(attr(r, "channel"), Some("1"));
    assert_eq!(attr(r, "camera-lane"), Some("1"));
    assert_eq!(attr(r, "direction"), Some("forward"));
    assert_eq!(attr(r, "plate-kind"), Some("standard"));
    assert_eq!(
        attr(r, "pictures"),
        Some("licensePlatePicture.jpg=90,detectionPicture.jpg=538")
    );
    assert_eq!(attr(r, "picture-bytes"), Some("628"));
    assert_eq!(attr(r, "xml-encoding"), Some("UTF-8"));
    assert_eq!(attr(r, "http-target"), Some(hik::TARGET));
    assert_eq!(attr(r, "camera-ip"), Some("192.168.1.64"));
    assert_eq!(attr(r, "plate-raw"), None);
    assert_eq!(attr(r, "colour-raw"), None);
}

#[test]
fn gbk_and_utf8_give_the_same_plate() {
    let e = event("粤B12345", "yellow", 93);
    let utf8 = feed_split::<HikvisionAnpr>(&[], &anpr_request(&e, XmlEncoding::Utf8));
    let gbk = feed_split::<HikvisionAnpr>(&[], &anpr_request(&e, XmlEncoding::Gbk));
    assert_eq!(plates(&utf8), plates(&gbk));
    assert_eq!(
        plates(&gbk),
        vec![plate("粤B12345", PlateColour::Yellow, 93)]
    );
    assert_eq!(attr(&gbk.readings[0], "xml-encoding"), Some("GBK"));
}

#[test]
fn gbk_declared_only_in_the_prolog() {
    // Part Content-Type without a charset: the XML declaration decides.
    let xml = anpr_xml(&event("粤B12345", "blue", 90), XmlEncoding::Gbk);
    let wire = multipart_request(&[FormPart {
        name: "anpr.xml",
        filename: "anpr.xml",
        content_type: "text/xml",
        body: &xml,
    }]);
    let out = feed_split::<HikvisionAnpr>(&[], &wire);
    assert_eq!(plates(&out), vec![plate("粤B12345", PlateColour::Blue, 90)]);
    assert_eq!(attr(&out.readings[0], "xml-encoding"), Some("GBK"));
    assert_eq!(attr(&out.readings[0], "pictures"), None);
}

#[test]
fn gbk_bytes_under_a_utf8_declaration_fall_back() {
    let mut xml = anpr_xml(&event("粤B12345", "blue", 90), XmlEncoding::Gbk);
    let decl = b"encoding=\"GBK\"";
    let at = http::find(&xml, decl).unwrap();
    xml.splice(at..at + decl.len(), b"encoding=\"UTF-8\"".iter().copied());
    // The part even claims UTF-8 in its charset.
    let wire = multipart_request(&[FormPart {
        name: "anpr",
        filename: "",
        content_type: "application/xml; charset=UTF-8",
        body: &xml,
    }]);
    let out = feed_split::<HikvisionAnpr>(&[], &wire);
    assert_eq!(plates(&out), vec![plate("粤B12345", PlateColour::Blue, 90)]);
    assert_eq!(
        attr(&out.readings[0], "xml-encoding"),
        Some("GBK (declared UTF-8)")
    );
}

#[test]
fn bare_xml_body() {
    let xml = anpr_xml(&event("粤B12345", "blue", 97), XmlEncoding::Gbk);
    let out = feed_split::<HikvisionAnpr>(&[], &xml_request(&xml, "text/xml; charset=GB2312"));
    assert_eq!(plates(&out), vec![plate("粤B12345", PlateColour::Blue, 97)]);
}

#[test]
fn capture_stream_any_split() {
    let input = capture();
    let out = feed_split::<HikvisionAnpr>(&[], &input);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let mut two_plate = plate("粤Z1234港", PlateColour::Black, 91);
    two_plate.char_confidence = vec![99, 98, 97, 90, 88, 95, 93];
    assert_eq!(
        plates(&out),
        vec![
            plate("粤B12345", PlateColour::Blue, 96),
            two_plate,
            plate("", PlateColour::Unknown, 0),
            plate("沪AD12345", PlateColour::Green, 88),
        ]
    );
    assert_eq!(attr(&out.readings[1], "plate-kind"), Some("hong_kong"));
    assert_eq!(attr(&out.readings[1], "direction"), Some("reverse"));
    assert_eq!(attr(&out.readings[2], "no-plate"), Some("无车牌"));
    assert_eq!(attr(&out.readings[3], "plate-kind"), Some("new_energy"));
    // Fed in 1000-byte pieces, as a socket would.
    let chunked = feed_chunks(&mut open::<HikvisionAnpr>(&[]).unwrap(), &input, 1000);
    assert_eq!(chunked.readings, out.readings);
}

#[test]
fn fixture_is_the_capture() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/anpr.bin");
    if std::env::var_os("KAKOU_WRITE_FIXTURES").is_some() {
        std::fs::write(path, capture()).unwrap();
    }
    assert_eq!(std::fs::read(path).unwrap(), capture());
}

#[test]
fn colour_prefix_and_normalisation() {
    let mut e = event("蓝粤b·12345", "", 80);
    e.char_confidence = vec![90, 91, 92, 93, 94, 95, 96];
    let out = feed_split::<HikvisionAnpr>(&[], &anpr_request(&e, XmlEncoding::Utf8));
    let mut want = plate("粤B12345", PlateColour::Blue, 80);
    want.char_confidence = vec![90, 91, 92, 93, 94, 95, 96];
    assert_eq!(plates(&out), vec![want]);
    assert_eq!(attr(&out.readings[0], "plate-raw"), Some("蓝粤b·12345"));
    // 黑 is also Heilongjiang's province character: kept when no province follows.
    let out = feed_split::<HikvisionAnpr>(
        &[],
        &anpr_request(&event("黑A12345", "blue", 80), XmlEncoding::Gbk),
    );
    assert_eq!(plates(&out)[0].text, "黑A12345");
    // A prefix does not override an explicit colour.
    let out = feed_split::<HikvisionAnpr>(
        &[],
        &anpr_request(&event("黄粤B12345", "yellowGreen", 80), XmlEncoding::Utf8),
    );
    assert_eq!(plates(&out)[0].colour, PlateColour::YellowGreen);
}

#[test]
fn colour_names() {
    for (name, colour) in [
        ("blue", PlateColour::Blue),
        ("Yellow", PlateColour::Yellow),
        ("white", PlateColour::White),
        ("civilAviationBlack", PlateColour::Black),
        ("green", PlateColour::Green),
        ("newEnergyYellowGreen", PlateColour::YellowGreen),
        ("yellow-green", PlateColour::YellowGreen),
        ("蓝色", PlateColour::Blue),
        ("unknown", PlateColour::Unknown),
        ("", PlateColour::Unknown),
    ] {
        assert_eq!(colour_from_name(name), Some(colour), "{name}");
    }
    assert_eq!(colour_from_name("other"), None);
    let out = feed_split::<HikvisionAnpr>(
        &[],
        &anpr_request(&event("粤B12345", "other", 80), XmlEncoding::Utf8),
    );
    assert_eq!(plates(&out)[0].colour, PlateColour::Unknown);
    assert_eq!(attr(&out.readings[0], "colour-raw"), Some("other"));
}

#[test]
fn per_character_confidence_must_match_the_plate() {
    let mut e = event("粤B12345", "blue", 80);
    e.char_confidence = vec![99, 99, 99];
    let out = feed_split::<HikvisionAnpr>(&[], &anpr_request(&e, XmlEncoding::Utf8));
    assert!(plates(&out)[0].char_confidence.is_empty());
    assert_eq!(
        attr(&out.readings[0], "char-confidence-raw"),
        Some("99,99,99")
    );
}

#[test]
fn invalid_plates_are_reported_with_the_reason() {
    let out = feed_split::<HikvisionAnpr>(
        &[],
        &anpr_request(&event("WX1234A", "unknown", 92), XmlEncoding::Utf8),
    );
    assert_eq!(
        plates(&out),
        vec![plate("WX1234A", PlateColour::Unknown, 92)]
    );
    assert_eq!(
        attr(&out.readings[0], "plate-invalid"),
        Some("'W' is not a province character")
    );
}

#[test]
fn no_plate_reads() {
    for raw in ["无车牌", "unknown", "", "未识别"] {
        let out = feed_split::<HikvisionAnpr>(
            &[("min-confidence", "50")],
            &anpr_request(&event(raw, "", 0), XmlEncoding::Gbk),
        );
        assert!(out.rejected.is_empty(), "{raw}: {:?}", out.rejected);
        assert_eq!(
            plates(&out),
            vec![plate("", PlateColour::Unknown, 0)],
            "{raw}"
        );
        let want = if raw.is_empty() { "(empty)" } else { raw };
        assert_eq!(attr(&out.readings[0], "no-plate"), Some(want));
        assert!(attr(&out.readings[0], "pictures").is_some());
    }
}

#[test]
fn min_confidence_drops_weak_reads_with_a_reason() {
    let weak = anpr_request(&event("粤B12345", "blue", 40), XmlEncoding::Utf8);
    let strong = anpr_request(&event("粤B54321", "blue", 90), XmlEncoding::Utf8);
    let mut input = weak.clone();
    input.extend_from_slice(&strong);
    let out = feed_split::<HikvisionAnpr>(&[("min-confidence", "60")], &input);
    assert_eq!(plates(&out), vec![plate("粤B54321", PlateColour::Blue, 90)]);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].bytes as usize, weak.len());
    assert!(
        out.rejected[0]
            .reason
            .contains("plate 粤B12345 read with confidence 40, below min-confidence 60"),
        "{:?}",
        out.rejected
    );
    // The default reports everything.
    let out = feed_split::<HikvisionAnpr>(&[], &input);
    assert_eq!(plates(&out).len(), 2);
}

#[test]
fn health_events() {
    let status = |event_type: &str, state: &str| {
        let wire = xml_request(&event_xml(event_type, state, 2, TIME), "application/xml");
        feed_split::<HikvisionAnpr>(&[], &wire)
    };
    for (t, s) in [
        ("videoloss", "inactive"),
        ("heartBeat", "active"),
        ("VMD", "active"),
        ("shelteralarm", "inactive"),
    ] {
        let out = status(t, s);
        assert!(
            out.readings.is_empty() && out.rejected.is_empty(),
            "{t} {s}"
        );
    }
    let out = status("videoloss", "active");
    let ReadingValue::Status(st) = &out.readings[0].value else {
        panic!("{:?}", out.readings);
    };
    assert_eq!(st.level, StatusLevel::Fault);
    assert_eq!(st.code, "videoloss");
    assert!(st.message.contains("channel 2"), "{}", st.message);
    assert_eq!(attr(&out.readings[0], "event-time"), Some(TIME));
    let out = status("shelteralarm", "active");
    let ReadingValue::Status(st) = &out.readings[0].value else {
        panic!("{:?}", out.readings);
    };
    assert_eq!(
        (st.level, st.code.as_str()),
        (StatusLevel::Warning, "tamper")
    );
}

#[test]
fn garbage_and_bad_requests_are_rejected_and_counted() {
    let good1 = anpr_request(&event("粤B12345", "blue", 96), XmlEncoding::Utf8);
    let good2 = anpr_request(&event("京A12345", "blue", 95), XmlEncoding::Gbk);
    let noise = b"\x00\x17garbage\xFF".to_vec();
    let no_xml = multipart_request(&[FormPart {
        name: "pic",
        filename: "p.jpg",
        content_type: "image/jpeg",
        body: &hik::fake_jpeg(10),
    }]);
    let mut truncated_xml = anpr_xml(&event("粤B12345", "blue", 96), XmlEncoding::Utf8);
    truncated_xml.truncate(truncated_xml.len() - 40);
    let truncated = xml_request(&truncated_xml, "application/xml");
    let get = Request::new("GET", "/").to_bytes();
    let json = xml_request(b"{\"eventType\":\"ANPR\"}", "application/json");
    let not_http = b"HELLO camera\r\n".to_vec();

    let mut input = noise.clone();
    input.extend_from_slice(&good1);
    for bad in [&no_xml, &truncated, &get, &json, &not_http] {
        input.extend_from_slice(bad);
    }
    input.extend_from_slice(&good2);
    let out = feed_split::<HikvisionAnpr>(&[], &input);
    assert_eq!(
        plates(&out),
        vec![
            plate("粤B12345", PlateColour::Blue, 96),
            plate("京A12345", PlateColour::Blue, 95)
        ]
    );
    let reasons: Vec<&str> = out.rejected.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons.len(), 6, "{reasons:?}");
    assert!(reasons[0].contains("noise"), "{reasons:?}");
    assert!(
        reasons[1].contains("no XML part among 1 parts (p.jpg)"),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("malformed XML at byte"), "{reasons:?}");
    assert!(
        reasons[3].starts_with("GET /: not an event push"),
        "{reasons:?}"
    );
    assert!(
        reasons[4].contains("body is \"application/json\""),
        "{reasons:?}"
    );
    assert!(reasons[5].contains("noise"), "{reasons:?}");
    assert_eq!(
        dropped(&out),
        noise.len() + no_xml.len() + truncated.len() + get.len() + json.len() + not_http.len()
    );
}

#[test]
fn corrupted_framing_resynchronises() {
    let good = anpr_request(&event("粤B12345", "blue", 96), XmlEncoding::Utf8);
    // A request whose Content-Length lies short: its tail becomes noise before the next one.
    let mut short = good.clone();
    let cl = format!("Content-Length: {}", good.len() - good_head_len(&good));
    let at = http::find(&short, cl.as_bytes()).unwrap();
    let lie = format!("Content-Length: {}", 100);
    short.splice(at..at + cl.len(), lie.bytes());
    let mut input = short.clone();
    input.extend_from_slice(&good);
    let out = feed_split::<HikvisionAnpr>(&[], &input);
    assert_eq!(plates(&out), vec![plate("粤B12345", PlateColour::Blue, 96)]);
    assert_eq!(dropped(&out), short.len());
    assert!(out.rejected.len() >= 2, "{:?}", out.rejected);
}

fn good_head_len(wire: &[u8]) -> usize {
    http::find(wire, b"\r\n\r\n").unwrap() + 4
}

#[test]
fn oversized_requests_are_skipped() {
    let big_pic = hik::fake_jpeg(3000);
    let xml = anpr_xml(&event("粤B12345", "blue", 96), XmlEncoding::Utf8);
    let big = multipart_request(&[
        FormPart {
            name: "anpr.xml",
            filename: "anpr.xml",
            content_type: "application/xml",
            body: &xml,
        },
        FormPart {
            name: "detectionPicture.jpg",
            filename: "detectionPicture.jpg",
            content_type: "image/jpeg",
            body: &big_pic,
        },
    ]);
    let small = xml_request(
        &anpr_xml(&event("粤B54321", "blue", 96), XmlEncoding::Utf8),
        "application/xml",
    );
    let mut input = big.clone();
    input.extend_from_slice(&small);
    let out = feed_split::<HikvisionAnpr>(&[("max-request-kb", "4")], &input);
    assert_eq!(plates(&out), vec![plate("粤B54321", PlateColour::Blue, 96)]);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].bytes as usize, big.len());
    assert!(
        out.rejected[0]
            .reason
            .contains("exceeds the limit of 4096 bytes"),
        "{:?}",
        out.rejected
    );
    // Within the default limit it decodes.
    let out = feed_split::<HikvisionAnpr>(&[], &big);
    assert_eq!(plates(&out).len(), 1);
}

#[test]
fn drain_returns_the_partial_request() {
    let wire = anpr_request(&event("粤B12345", "blue", 96), XmlEncoding::Utf8);
    let mut d = open::<HikvisionAnpr>(&[]).unwrap();
    assert!(d.feed(&wire[..700]).readings.is_empty());
    assert_eq!(d.drain(), wire[..700].to_vec());
    let mut fresh = open::<HikvisionAnpr>(&[]).unwrap();
    assert!(fresh.feed(&wire[..700]).readings.is_empty());
    assert_eq!(plates(&fresh.feed(&wire[700..])).len(), 1);
}

#[test]
fn settings_are_checked() {
    let err = |s: &[(&str, &str)]| open::<HikvisionAnpr>(s).err().unwrap();
    assert!(err(&[("min-confidence", "101")]).contains("`min-confidence`"));
    assert!(err(&[("min-confidence", "high")]).contains("`min-confidence`"));
    assert!(err(&[("max-request-kb", "0")]).contains("`max-request-kb`"));
    assert!(err(&[("max-request-kb", "20000")]).contains("`max-request-kb`"));
    assert!(err(&[("baud", "9600")]).contains("unknown setting `baud`"));
    assert!(
        open::<HikvisionAnpr>(&[("min-confidence", "100"), ("max-request-kb", "16384")]).is_ok()
    );
}

#[test]
fn takes_no_commands_and_is_not_polled() {
    let mut d = open::<HikvisionAnpr>(&[]).unwrap();
    assert!(d.poll().is_none());
    let e = d.encode(&Command::Open).unwrap_err();
    assert!(e.contains("hikvision-anpr takes no commands"), "{e}");
    let desc = HikvisionAnpr::describe();
    assert_eq!(desc.name, "hikvision-anpr");
    assert_eq!(desc.version, "1.0.0");
    let keys: Vec<&str> = desc.settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["min-confidence", "max-request-kb"]);
}
