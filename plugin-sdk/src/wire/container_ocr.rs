//! Container-number OCR at the gate: kakou's neutral result format (there is no industry
//! standard; this one is modelled on what gate OCR systems send, and is specified in full in
//! `plugins/drivers/container-ocr/FORMAT.md`).
//!
//! One message per recognition event, in either of two line formats, over a TCP stream or as
//! the body of an HTTP `POST`:
//!
//! - JSON, one object per line, LF-terminated:
//!   `{"event":"container","lane":"L01","time":"2026-11-27T10:00:00+08:00","containers":[{"number":"CSQU3054383","iso":"22G1","position":"front","confidence":93}]}`
//! - compact text, CR LF-terminated:
//!   `CNTR|<lane>|<time>|<number>,<iso>,<F|R|S|U>,<confidence>;<number>,…`
//!
//! plus keep-alives (`{"event":"heartbeat",…}` / `HBT|<lane>|<time>`) and device status
//! (`{"event":"status","level":"fault",…}` / `STAT|<lane>|<time>|<level>|<code>|<message>`).
//! The builders here write exactly those bytes; the HTTP form is built as the kakou host hands
//! it to a driver ([`crate::proto::http::Request::to_bytes`]).

use crate::model::{ContainerPosition, StatusLevel};
use crate::proto::http::Request;

/// The request target [`http_request`] uses (any path is accepted by the driver).
pub const TARGET: &str = "/kakou/container-ocr";

/// One container in an OCR result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcrContainer {
    /// The number as read, e.g. `CSQU3054383` (sent as is, even with a wrong check digit).
    pub number: String,
    /// ISO 6346 size-type code such as `22G1`; empty: not reported.
    pub iso_type: String,
    /// Where on the truck.
    pub position: ContainerPosition,
    /// Confidence, 0 to 100.
    pub confidence: u8,
}

impl OcrContainer {
    /// A container read.
    pub fn new(number: &str, iso_type: &str, position: ContainerPosition, confidence: u8) -> Self {
        OcrContainer {
            number: number.to_owned(),
            iso_type: iso_type.to_owned(),
            position,
            confidence,
        }
    }
}

/// One recognition event: a truck passed the OCR portal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OcrEvent {
    /// Lane identifier as the OCR system names it, e.g. `L01`.
    pub lane: String,
    /// Event time, RFC 3339 with offset.
    pub time: String,
    /// The vendor's event id (JSON `id`); empty: omitted. The text format has no id.
    pub id: String,
    /// Containers seen, front first; empty when the truck carried none.
    pub containers: Vec<OcrContainer>,
}

/// The JSON word for a position: `front`, `rear`, `single`, `unknown`.
pub fn position_word(position: ContainerPosition) -> &'static str {
    match position {
        ContainerPosition::Front => "front",
        ContainerPosition::Rear => "rear",
        ContainerPosition::Single => "single",
        ContainerPosition::Unknown => "unknown",
    }
}

/// The text-format letter for a position: `F`, `R`, `S`, `U`.
pub fn position_letter(position: ContainerPosition) -> char {
    match position {
        ContainerPosition::Front => 'F',
        ContainerPosition::Rear => 'R',
        ContainerPosition::Single => 'S',
        ContainerPosition::Unknown => 'U',
    }
}

/// The word for a status level: `ok`, `warning`, `fault`.
pub fn level_word(level: StatusLevel) -> &'static str {
    match level {
        StatusLevel::Ok => "ok",
        StatusLevel::Warning => "warning",
        StatusLevel::Fault => "fault",
    }
}

/// `text` as a JSON string literal.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The opening members every JSON message shares: `event`, `lane`, `time` (and `id`).
fn json_head(event: &str, lane: &str, time: &str, id: &str) -> String {
    let mut out = format!(
        "{{\"event\":{},\"lane\":{},\"time\":{}",
        json_string(event),
        json_string(lane),
        json_string(time)
    );
    if !id.is_empty() {
        out.push_str(&format!(",\"id\":{}", json_string(id)));
    }
    out
}

/// The JSON object of a container event, without a line end.
pub fn json_event(event: &OcrEvent) -> String {
    let mut out = json_head("container", &event.lane, &event.time, &event.id);
    out.push_str(",\"containers\":[");
    for (i, c) in event.containers.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{{\"number\":{}", json_string(&c.number)));
        if !c.iso_type.is_empty() {
            out.push_str(&format!(",\"iso\":{}", json_string(&c.iso_type)));
        }
        out.push_str(&format!(
            ",\"position\":\"{}\",\"confidence\":{}}}",
            position_word(c.position),
            c.confidence
        ));
    }
    out.push_str("]}");
    out
}

/// A container event as one JSON line (LF-terminated).
pub fn json_line(event: &OcrEvent) -> Vec<u8> {
    let mut out = json_event(event).into_bytes();
    out.push(b'\n');
    out
}

/// A container event as one text line:
/// `CNTR|<lane>|<time>|<number>,<iso>,<F|R|S|U>,<confidence>;…\r\n`. Fields must not contain
/// `|`, `;`, `,`, CR or LF (the format has no escapes).
pub fn text_line(event: &OcrEvent) -> Vec<u8> {
    let containers: Vec<String> = event
        .containers
        .iter()
        .map(|c| {
            format!(
                "{},{},{},{}",
                c.number,
                c.iso_type,
                position_letter(c.position),
                c.confidence
            )
        })
        .collect();
    format!(
        "CNTR|{}|{}|{}\r\n",
        event.lane,
        event.time,
        containers.join(";")
    )
    .into_bytes()
}

/// A JSON keep-alive line: `{"event":"heartbeat","lane":…,"time":…}`.
pub fn heartbeat_json(lane: &str, time: &str) -> Vec<u8> {
    let mut out = json_head("heartbeat", lane, time, "");
    out.push_str("}\n");
    out.into_bytes()
}

/// A text keep-alive line: `HBT|<lane>|<time>\r\n`.
pub fn heartbeat_text(lane: &str, time: &str) -> Vec<u8> {
    format!("HBT|{lane}|{time}\r\n").into_bytes()
}

/// A JSON status line: `{"event":"status",…,"level":"fault","code":…,"message":…}`.
pub fn status_json(
    lane: &str,
    time: &str,
    level: StatusLevel,
    code: &str,
    message: &str,
) -> Vec<u8> {
    let mut out = json_head("status", lane, time, "");
    out.push_str(&format!(
        ",\"level\":\"{}\",\"code\":{},\"message\":{}}}\n",
        level_word(level),
        json_string(code),
        json_string(message)
    ));
    out.into_bytes()
}

/// A text status line: `STAT|<lane>|<time>|<level>|<code>|<message>\r\n` (the message may not
/// contain CR or LF).
pub fn status_text(
    lane: &str,
    time: &str,
    level: StatusLevel,
    code: &str,
    message: &str,
) -> Vec<u8> {
    format!(
        "STAT|{lane}|{time}|{}|{code}|{message}\r\n",
        level_word(level)
    )
    .into_bytes()
}

/// A container event POSTed to [`TARGET`] as `application/json` (the JSON object, no line
/// end), framed with a `Content-Length` as the host hands it on.
pub fn http_request(event: &OcrEvent) -> Vec<u8> {
    Request::new("POST", TARGET)
        .with_header("Host", "192.168.1.10:8080")
        .with_header("Content-Type", "application/json; charset=utf-8")
        .with_body(json_event(event).into_bytes())
        .to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::iso6346;

    fn two_box() -> OcrEvent {
        OcrEvent {
            lane: "L01".into(),
            time: "2026-11-27T10:00:00+08:00".into(),
            id: String::new(),
            containers: vec![
                OcrContainer::new("CSQU3054383", "22G1", ContainerPosition::Front, 93),
                OcrContainer::new("TCNU7200794", "22G1", ContainerPosition::Rear, 88),
            ],
        }
    }

    #[test]
    fn json_line_shape() {
        let one = OcrEvent {
            containers: vec![two_box().containers[0].clone()],
            ..two_box()
        };
        assert_eq!(
            json_line(&one),
            b"{\"event\":\"container\",\"lane\":\"L01\",\"time\":\"2026-11-27T10:00:00+08:00\",\
              \"containers\":[{\"number\":\"CSQU3054383\",\"iso\":\"22G1\",\"position\":\"front\",\
              \"confidence\":93}]}\n"
                .to_vec()
        );
        let with_id = OcrEvent {
            id: "E-1".into(),
            containers: vec![],
            ..two_box()
        };
        assert!(json_event(&with_id).contains(",\"id\":\"E-1\",\"containers\":[]}"));
    }

    #[test]
    fn text_line_shape() {
        assert_eq!(
            text_line(&two_box()),
            b"CNTR|L01|2026-11-27T10:00:00+08:00|CSQU3054383,22G1,F,93;TCNU7200794,22G1,R,88\r\n"
                .to_vec()
        );
        let none = OcrEvent {
            containers: vec![],
            ..two_box()
        };
        assert_eq!(
            text_line(&none),
            b"CNTR|L01|2026-11-27T10:00:00+08:00|\r\n".to_vec()
        );
    }

    #[test]
    fn domain_check_digits_in_examples() {
        for c in &two_box().containers {
            assert!(iso6346::validate(&c.number).is_ok(), "{}", c.number);
        }
    }

    #[test]
    fn keepalive_status_and_http() {
        assert_eq!(heartbeat_text("L01", "t"), b"HBT|L01|t\r\n".to_vec());
        assert_eq!(
            heartbeat_json("L01", "t"),
            b"{\"event\":\"heartbeat\",\"lane\":\"L01\",\"time\":\"t\"}\n".to_vec()
        );
        assert_eq!(
            status_text(
                "L01",
                "t",
                StatusLevel::Fault,
                "camera-offline",
                "rear camera"
            ),
            b"STAT|L01|t|fault|camera-offline|rear camera\r\n".to_vec()
        );
        assert!(
            String::from_utf8(status_json(
                "L01",
                "t",
                StatusLevel::Warning,
                "dirty-lens",
                "x"
            ))
            .unwrap()
            .ends_with(",\"level\":\"warning\",\"code\":\"dirty-lens\",\"message\":\"x\"}\n")
        );
        let wire = http_request(&two_box());
        let body = json_event(&two_box());
        assert!(wire.starts_with(format!("POST {TARGET} HTTP/1.1\r\n").as_bytes()));
        assert!(wire.ends_with(body.as_bytes()));
        let head = format!("Content-Length: {}\r\n\r\n", body.len());
        assert!(wire.ends_with(format!("{head}{body}").as_bytes()));
    }

    #[test]
    fn json_escapes() {
        assert_eq!(
            json_string("a\"b\\c\n\u{1}粤"),
            "\"a\\\"b\\\\c\\n\\u0001粤\""
        );
    }
}
