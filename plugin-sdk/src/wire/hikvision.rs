//! Hikvision ISAPI event push ("HTTP listening"): what an ANPR camera POSTs.
//!
//! On each plate read the camera sends `POST <configured path>` with
//! `Content-Type: multipart/form-data; boundary=…`. The parts are an XML
//! `EventNotificationAlert` (form field and file name `anpr.xml`, `Content-Type: text/xml` or
//! `application/xml`) and the JPEG pictures (`licensePlatePicture.jpg`,
//! `detectionPicture.jpg`, …). Some cameras send the XML alone as the request body. The XML
//! carries `eventType` `ANPR` and an `ANPR` element with `licensePlate`, `confidenceLevel`
//! (0–100), `plateColor`, `plateCharBelieve` (per-character confidence, comma separated),
//! `direction`, `line` (lane) and vehicle details; `dateTime` and `channelID` sit at the top
//! level. The same push carries other events (`videoloss`, `shelteralarm`, heartbeats), with
//! the same envelope and no `ANPR` element.
//!
//! Chinese firmware often encodes the XML in GBK (declared in the XML prolog). [`encode_gbk`]
//! covers ASCII and the characters plates use; when building GBK XML, any other character is
//! written as a numeric character reference, which is still the same text to an XML parser.
//!
//! The request is built as the kakou host hands it to a driver: one HTTP/1.1 request with a
//! `Content-Length` ([`crate::proto::http::Request::to_bytes`]).

use crate::proto::http::Request;

/// The multipart boundary these builders use.
pub const BOUNDARY: &str = "MIME_boundary";

/// The request target these builders use (the path is configured on the camera).
pub const TARGET: &str = "/ISAPI/Event/notification/alertStream";

/// Encoding of the event XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmlEncoding {
    /// UTF-8, declared `encoding="UTF-8"`.
    Utf8,
    /// GBK, declared `encoding="GBK"`.
    Gbk,
}

impl XmlEncoding {
    /// The label used in the XML prolog and in `charset` parameters.
    pub fn label(self) -> &'static str {
        match self {
            XmlEncoding::Utf8 => "UTF-8",
            XmlEncoding::Gbk => "GBK",
        }
    }
}

/// GBK codes of the non-ASCII characters plate events use: province characters, plate
/// suffixes, colour prefixes and the "no plate" texts (无车牌, 未识别, 未知). Sorted by
/// character.
const GBK_TABLE: [(char, u16); 51] = [
    ('云', 0xD4C6),
    ('京', 0xBEA9),
    ('使', 0xCAB9),
    ('冀', 0xBCBD),
    ('别', 0xB1F0),
    ('变', 0xB1E4),
    ('吉', 0xBCAA),
    ('学', 0xD1A7),
    ('宁', 0xC4FE),
    ('川', 0xB4A8),
    ('挂', 0xB9D2),
    ('新', 0xD0C2),
    ('无', 0xCEDE),
    ('晋', 0xBDFA),
    ('未', 0xCEB4),
    ('桂', 0xB9F0),
    ('沪', 0xBBA6),
    ('津', 0xBDF2),
    ('浙', 0xD5E3),
    ('渐', 0xBDA5),
    ('渝', 0xD3E5),
    ('港', 0xB8DB),
    ('湘', 0xCFE6),
    ('澳', 0xB0C4),
    ('牌', 0xC5C6),
    ('琼', 0xC7ED),
    ('甘', 0xB8CA),
    ('白', 0xB0D7),
    ('皖', 0xCDEE),
    ('知', 0xD6AA),
    ('粤', 0xD4C1),
    ('绿', 0xC2CC),
    ('苏', 0xCBD5),
    ('蒙', 0xC3C9),
    ('蓝', 0xC0B6),
    ('藏', 0xB2D8),
    ('警', 0xBEAF),
    ('识', 0xCAB6),
    ('豫', 0xD4A5),
    ('贵', 0xB9F3),
    ('赣', 0xB8D3),
    ('车', 0xB3B5),
    ('辽', 0xC1C9),
    ('鄂', 0xB6F5),
    ('闽', 0xC3F6),
    ('陕', 0xC9C2),
    ('青', 0xC7E0),
    ('领', 0xC1EC),
    ('鲁', 0xC2B3),
    ('黄', 0xBBC6),
    ('黑', 0xBADA),
];

fn gbk_code(c: char) -> Option<[u8; 2]> {
    GBK_TABLE
        .binary_search_by_key(&c, |&(k, _)| k)
        .ok()
        .map(|i| GBK_TABLE[i].1.to_be_bytes())
}

/// GBK bytes for `text`, if it holds only ASCII and plate characters (31 province characters,
/// the suffixes 挂 学 警 港 澳 领 使, the colour words 蓝 黄 白 黑 绿 渐变, and 无车牌 / 未识别 /
/// 未知); `None` otherwise.
pub fn encode_gbk(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c as u8);
        } else {
            out.extend_from_slice(&gbk_code(c)?);
        }
    }
    Some(out)
}

/// XML character data for `text` in `encoding`: `&`, `<` and `>` escaped; in GBK, characters
/// outside [`encode_gbk`]'s table written as `&#xNNNN;`.
fn xml_text(text: &str, encoding: XmlEncoding) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            c if c.is_ascii() => out.push(c as u8),
            c => match encoding {
                XmlEncoding::Utf8 => {
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                XmlEncoding::Gbk => match gbk_code(c) {
                    Some(code) => out.extend_from_slice(&code),
                    None => out.extend_from_slice(format!("&#x{:X};", u32::from(c)).as_bytes()),
                },
            },
        }
    }
    out
}

/// One ANPR read, as the camera reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnprEvent {
    /// `licensePlate` as the camera writes it (e.g. `粤B12345`, `无车牌`).
    pub plate: String,
    /// `plateColor`: `blue`, `yellow`, `white`, `black`, `green`, … (empty: omitted).
    pub colour: String,
    /// `confidenceLevel`, 0–100.
    pub confidence: u8,
    /// `plateCharBelieve`, one value per character (empty: omitted).
    pub char_confidence: Vec<u8>,
    /// `dateTime`, ISO 8601 with offset, e.g. `2026-11-27T10:00:00+08:00`.
    pub time: String,
    /// `channelID`.
    pub channel: u32,
    /// `direction`: `forward`, `reverse` or `unknown` (empty: omitted).
    pub direction: String,
    /// `line`: the lane number the camera assigns.
    pub lane: u32,
}

impl AnprEvent {
    /// A read of `plate` on channel 1, lane 1, direction `forward`, without per-character
    /// confidence.
    pub fn new(plate: &str, colour: &str, confidence: u8, time: &str) -> Self {
        AnprEvent {
            plate: plate.to_owned(),
            colour: colour.to_owned(),
            confidence,
            char_confidence: Vec::new(),
            time: time.to_owned(),
            channel: 1,
            direction: "forward".to_owned(),
            lane: 1,
        }
    }
}

/// The envelope of every event: prolog, `EventNotificationAlert` start, device facts, channel,
/// time, type and state, up to and including `eventDescription` / `channelName`.
fn envelope_start(
    out: &mut Vec<u8>,
    encoding: XmlEncoding,
    channel: u32,
    time: &str,
    event_type: &str,
    state: &str,
) {
    let label = encoding.label();
    out.extend_from_slice(
        format!(
            "<?xml version=\"1.0\" encoding=\"{label}\"?>\r\n\
             <EventNotificationAlert version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\r\n\
             <ipAddress>192.168.1.64</ipAddress>\r\n\
             <portNo>80</portNo>\r\n\
             <protocol>HTTP</protocol>\r\n\
             <macAddress>44:19:b6:00:00:01</macAddress>\r\n\
             <channelID>{channel}</channelID>\r\n<dateTime>"
        )
        .as_bytes(),
    );
    out.extend(xml_text(time, encoding));
    out.extend_from_slice(
        format!(
            "</dateTime>\r\n\
             <activePostCount>1</activePostCount>\r\n\
             <eventType>{event_type}</eventType>\r\n\
             <eventState>{state}</eventState>\r\n\
             <eventDescription>{event_type}</eventDescription>\r\n\
             <channelName>Camera {channel:02}</channelName>\r\n"
        )
        .as_bytes(),
    );
}

fn element(out: &mut Vec<u8>, name: &str, text: &str, encoding: XmlEncoding) {
    out.extend_from_slice(format!("<{name}>").as_bytes());
    out.extend(xml_text(text, encoding));
    out.extend_from_slice(format!("</{name}>\r\n").as_bytes());
}

/// The `EventNotificationAlert` XML of an ANPR read, in `encoding`, with a picture list naming
/// `licensePlatePicture.jpg` and `detectionPicture.jpg`.
pub fn anpr_xml(event: &AnprEvent, encoding: XmlEncoding) -> Vec<u8> {
    let mut out = Vec::with_capacity(2048);
    envelope_start(
        &mut out,
        encoding,
        event.channel,
        &event.time,
        "ANPR",
        "active",
    );
    out.extend_from_slice(b"<ANPR>\r\n<country>3</country>\r\n");
    element(&mut out, "licensePlate", &event.plate, encoding);
    out.extend_from_slice(format!("<line>{}</line>\r\n", event.lane).as_bytes());
    if !event.direction.is_empty() {
        element(&mut out, "direction", &event.direction, encoding);
    }
    out.extend_from_slice(
        format!(
            "<confidenceLevel>{}</confidenceLevel>\r\n<plateType>92TypeCivil</plateType>\r\n",
            event.confidence
        )
        .as_bytes(),
    );
    if !event.colour.is_empty() {
        element(&mut out, "plateColor", &event.colour, encoding);
    }
    out.extend_from_slice(b"<licenseBright>0</licenseBright>\r\n");
    if !event.char_confidence.is_empty() {
        let list: Vec<String> = event
            .char_confidence
            .iter()
            .map(ToString::to_string)
            .collect();
        element(&mut out, "plateCharBelieve", &list.join(","), encoding);
    }
    out.extend_from_slice(
        b"<vehicleType>vehicle</vehicleType>\r\n\
          <detectDir>8</detectDir>\r\n\
          <detectType>0</detectType>\r\n\
          <alarmDataType>0</alarmDataType>\r\n\
          <vehicleInfo>\r\n<index>1</index>\r\n<colorDepth>2</colorDepth>\r\n\
          <color>white</color>\r\n<length>0</length>\r\n</vehicleInfo>\r\n\
          <pictureInfoList>\r\n\
          <pictureInfo>\r\n<fileName>licensePlatePicture.jpg</fileName>\r\n\
          <type>licensePlatePicture</type>\r\n<dataType>0</dataType>\r\n</pictureInfo>\r\n\
          <pictureInfo>\r\n<fileName>detectionPicture.jpg</fileName>\r\n\
          <type>detectionPicture</type>\r\n<dataType>0</dataType>\r\n</pictureInfo>\r\n\
          </pictureInfoList>\r\n\
          </ANPR>\r\n\
          <UUID>00000000-0000-0000-0000-000000000001</UUID>\r\n\
          <picNum>2</picNum>\r\n\
          </EventNotificationAlert>\r\n",
    );
    out
}

/// An `EventNotificationAlert` without an `ANPR` element: `videoloss` (`state` `inactive` is
/// the cameras' idle keep-alive, `active` a real loss), `shelteralarm`, `heartBeat`, ….
pub fn event_xml(event_type: &str, state: &str, channel: u32, time: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    envelope_start(
        &mut out,
        XmlEncoding::Utf8,
        channel,
        time,
        event_type,
        state,
    );
    out.extend_from_slice(b"</EventNotificationAlert>\r\n");
    out
}

/// A minimal JPEG stand-in: SOI, an APP0 `JFIF` segment, `payload_len` filler bytes in a
/// comment segment, EOI. Not a viewable picture; just the right shape and size.
pub fn fake_jpeg(payload_len: usize) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    out.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    let mut left = payload_len;
    while left > 0 {
        let n = left.min(65_533);
        out.extend_from_slice(&[0xFF, 0xFE]);
        out.extend_from_slice(&((n + 2) as u16).to_be_bytes());
        out.extend((0..n).map(|i| (i % 251) as u8));
        left -= n;
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormPart<'a> {
    /// Form field name (`Content-Disposition` `name`).
    pub name: &'a str,
    /// File name (`Content-Disposition` `filename`); empty: omitted.
    pub filename: &'a str,
    /// The part's `Content-Type`.
    pub content_type: &'a str,
    /// The content.
    pub body: &'a [u8],
}

/// A `multipart/form-data` body: each part with `Content-Disposition`, `Content-Type` and
/// `Content-Length` headers, then the closing delimiter.
pub fn multipart_body(boundary: &str, parts: &[FormPart<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", p.name);
        if !p.filename.is_empty() {
            disposition.push_str(&format!("; filename=\"{}\"", p.filename));
        }
        out.extend_from_slice(
            format!(
                "{disposition}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
                p.content_type,
                p.body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(p.body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// A `POST` of `parts` as `multipart/form-data` to [`TARGET`], with [`BOUNDARY`].
pub fn multipart_request(parts: &[FormPart<'_>]) -> Vec<u8> {
    Request::new("POST", TARGET)
        .with_header("Host", "192.168.1.10:8080")
        .with_header("Accept", "*/*")
        .with_header(
            "Content-Type",
            &format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .with_header("Connection", "keep-alive")
        .with_body(multipart_body(BOUNDARY, parts))
        .to_bytes()
}

/// A `POST` to [`TARGET`] whose body is `xml` alone, with `content_type` (e.g.
/// `application/xml; charset="UTF-8"`).
pub fn xml_request(xml: &[u8], content_type: &str) -> Vec<u8> {
    Request::new("POST", TARGET)
        .with_header("Host", "192.168.1.10:8080")
        .with_header("Content-Type", content_type)
        .with_body(xml.to_vec())
        .to_bytes()
}

/// The full request of an ANPR read: the XML part `anpr.xml` (`application/xml` with the
/// encoding's charset), a 64-byte `licensePlatePicture.jpg` and a 512-byte
/// `detectionPicture.jpg` (see [`fake_jpeg`]).
pub fn anpr_request(event: &AnprEvent, encoding: XmlEncoding) -> Vec<u8> {
    let xml = anpr_xml(event, encoding);
    let content_type = format!("application/xml; charset=\"{}\"", encoding.label());
    let plate_pic = fake_jpeg(64);
    let scene_pic = fake_jpeg(512);
    multipart_request(&[
        FormPart {
            name: "anpr.xml",
            filename: "anpr.xml",
            content_type: &content_type,
            body: &xml,
        },
        FormPart {
            name: "licensePlatePicture.jpg",
            filename: "licensePlatePicture.jpg",
            content_type: "image/jpeg",
            body: &plate_pic,
        },
        FormPart {
            name: "detectionPicture.jpg",
            filename: "detectionPicture.jpg",
            content_type: "image/jpeg",
            body: &scene_pic,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::{
        Item, Limits, RequestFramer, find, multipart_boundary, split_multipart,
    };

    #[test]
    fn gbk_of_plate_characters() {
        assert_eq!(encode_gbk("粤B12345").unwrap(), b"\xD4\xC1B12345".to_vec());
        assert_eq!(
            encode_gbk("无车牌").unwrap(),
            b"\xCE\xDE\xB3\xB5\xC5\xC6".to_vec()
        );
        assert_eq!(encode_gbk("粤Z1234港").unwrap()[7..], *b"\xB8\xDB");
        assert_eq!(encode_gbk("卡口"), None);
        assert!(GBK_TABLE.windows(2).all(|w| w[0].0 < w[1].0));
        for c in crate::proto::plate::PROVINCES.chars() {
            assert!(gbk_code(c).is_some(), "{c}");
        }
    }

    #[test]
    fn xml_carries_the_read() {
        let mut e = AnprEvent::new("粤B12345", "blue", 96, "2026-11-27T10:00:00+08:00");
        e.char_confidence = vec![99, 98, 97, 96, 95, 94, 93];
        let xml = String::from_utf8(anpr_xml(&e, XmlEncoding::Utf8)).unwrap();
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"));
        for needle in [
            "<eventType>ANPR</eventType>",
            "<licensePlate>粤B12345</licensePlate>",
            "<confidenceLevel>96</confidenceLevel>",
            "<plateColor>blue</plateColor>",
            "<plateCharBelieve>99,98,97,96,95,94,93</plateCharBelieve>",
            "<dateTime>2026-11-27T10:00:00+08:00</dateTime>",
            "<channelID>1</channelID>",
            "<direction>forward</direction>",
        ] {
            assert!(xml.contains(needle), "{needle}");
        }
        let gbk = anpr_xml(&e, XmlEncoding::Gbk);
        assert!(gbk.starts_with(b"<?xml version=\"1.0\" encoding=\"GBK\"?>"));
        assert!(std::str::from_utf8(&gbk).is_err());
        assert!(find(&gbk, b"<licensePlate>\xD4\xC1B12345</licensePlate>").is_some());
        // Characters outside the table become character references.
        let odd = AnprEvent::new("卡B12345", "", 0, "t");
        let xml = anpr_xml(&odd, XmlEncoding::Gbk);
        assert!(find(&xml, b"<licensePlate>&#x5361;B12345</licensePlate>").is_some());
        assert!(find(&xml, b"<plateColor>").is_none());
    }

    #[test]
    fn request_frames_and_splits() {
        let e = AnprEvent::new("粤B12345", "blue", 96, "2026-11-27T10:00:00+08:00");
        let wire = anpr_request(&e, XmlEncoding::Gbk);
        let mut framer = RequestFramer::new(Limits::default());
        framer.push(&wire);
        let Some(Item::Request {
            request: req,
            bytes,
        }) = framer.next_item()
        else {
            panic!("no request");
        };
        assert_eq!(framer.buffered(), 0);
        assert_eq!(bytes, wire.len());
        assert_eq!(req.target, TARGET);
        let boundary = multipart_boundary(req.content_type().unwrap()).unwrap();
        assert_eq!(boundary, BOUNDARY);
        let parts = split_multipart(&req.body, &boundary).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].name().as_deref(), Some("anpr.xml"));
        assert_eq!(
            parts[0].content_type(),
            Some("application/xml; charset=\"GBK\"")
        );
        assert_eq!(parts[0].body, anpr_xml(&e, XmlEncoding::Gbk).as_slice());
        assert_eq!(parts[1].body, fake_jpeg(64).as_slice());
        assert_eq!(parts[2].filename().as_deref(), Some("detectionPicture.jpg"));
        assert_eq!(parts[2].header("content-length"), Some("538"));
    }

    #[test]
    fn jpeg_shape() {
        let j = fake_jpeg(10);
        assert_eq!(&j[..4], &[0xFF, 0xD8, 0xFF, 0xE0]);
        assert_eq!(&j[j.len() - 2..], &[0xFF, 0xD9]);
        assert_eq!(j.len(), 2 + 18 + 4 + 10 + 2);
        assert_eq!(fake_jpeg(0).len(), 22);
        assert_eq!(fake_jpeg(70_000).len(), 22 + 4 + 65_533 + 4 + 4_467);
    }

    #[test]
    fn other_events_and_bare_xml() {
        let xml = String::from_utf8(event_xml("videoloss", "inactive", 1, "t")).unwrap();
        assert!(xml.contains("<eventType>videoloss</eventType>"));
        assert!(xml.contains("<eventState>inactive</eventState>"));
        assert!(!xml.contains("<ANPR>"));
        let wire = xml_request(xml.as_bytes(), "application/xml");
        assert!(wire.starts_with(format!("POST {TARGET} HTTP/1.1\r\n").as_bytes()));
        assert!(wire.ends_with(xml.as_bytes()));
    }
}
