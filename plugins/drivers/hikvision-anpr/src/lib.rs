//! Hikvision ISAPI ANPR event push ("HTTP listening" / alarm server mode).
//!
//! # Wire format
//!
//! The camera POSTs each event to the host's HTTP listener, which answers it and hands the
//! driver the request re-serialised as one HTTP/1.1 request with a `Content-Length` (request
//! line, headers, blank line, body). Requests may be split across feeds or arrive back to
//! back; they are framed here by `Content-Length` ([`kakou_plugin_sdk::proto::http`]).
//!
//! The body is either
//! - `multipart/form-data` (boundary from the `Content-Type`): one XML part (recognised by a
//!   `Content-Type` ending in `/xml`, a name ending in `.xml` such as `anpr.xml`, or content
//!   starting with `<`) and picture parts (`image/*` or `.jpg`: `licensePlatePicture.jpg`,
//!   `detectionPicture.jpg`, …); or
//! - the XML alone (`application/xml`, `text/xml`).
//!
//! The XML is an `EventNotificationAlert`: `ipAddress`, `channelID`, `dateTime`, `eventType`,
//! `eventState`, `UUID`, and for plate reads an `ANPR` element with `licensePlate`,
//! `confidenceLevel` (0–100), `plateColor`, `plateCharBelieve` (per-character confidence,
//! comma separated), `direction`, `line` (the camera's lane number), `plateType`,
//! `vehicleType` and `vehicleInfo/color`. Namespace prefixes are ignored.
//!
//! # Character encoding
//!
//! Chinese firmware often writes the XML in GBK. The encoding tried first is the part's
//! (or, for a bare XML body, the request's) `charset`, then the one the XML declaration names,
//! then UTF-8, then GBK; the first that decodes without a malformed byte sequence wins (a
//! declaration that says UTF-8 over GBK bytes is common). One exception: bytes declared GBK
//! that are valid UTF-8 whose non-ASCII characters are all CJK are read as UTF-8, since GBK
//! decoding would accept many such sequences and garble the plate (real GBK text almost
//! never passes that test; `豫`, D4 A5 in GBK, is valid UTF-8 but not CJK, so it stays GBK).
//! The encoding used is reported in the `xml-encoding` attribute, e.g. `GBK (declared UTF-8)`.
//!
//! # Readings
//!
//! - An `ANPR` event (or any event carrying an `ANPR` element) gives one [`Plate`]: text
//!   normalised with [`plate::normalize`] (full-width characters, separators, case); a colour
//!   word some firmware puts before the plate (`蓝粤B12345`) is removed and used as the colour
//!   when `plateColor` is missing or unknown. `plateColor` names (`blue`, `yellow`, `white`,
//!   `black`, `green`, `yellowGreen`/`newEnergyYellowGreen`, also `civilAviation…` variants
//!   and the Chinese words) map to [`PlateColour`]; anything else gives `unknown` with the
//!   name in `colour-raw`. Per-character confidences are kept only when there is one per
//!   plate character (otherwise they go to `char-confidence-raw`). A plate that
//!   [`plate::parse`] refuses (foreign plates, misreads) is still reported, with the reason in
//!   `plate-invalid`; a valid one carries `plate-kind`.
//! - No plate read (`无车牌`, `未识别`, `unknown`, empty, …): a vehicle passed and the camera
//!   could not read it, which the lane must know to send the truck to manual processing. It
//!   is reported as a [`Plate`] with empty text, confidence 0 and the camera's text in
//!   `no-plate`; the pictures listed with it are what the operator keys the plate from. An
//!   empty text never matches a registration, and `min-confidence` does not suppress it.
//! - `videoloss` with `eventState` `active`: [`DeviceStatus`] fault `videoloss` (the camera
//!   is blind). `shelteralarm` active: warning `tamper`. `videoloss` inactive (the cameras'
//!   idle keep-alive), `heartBeat` and every other event type (motion, line crossing, …):
//!   no reading — the request is well formed, it just says nothing the lane needs; that the
//!   camera is alive is visible from its traffic.
//!
//! Attributes of a plate reading, when the camera sends the fact: `event-time` (`dateTime`
//! as sent), `channel`, `camera-lane`, `direction`, `plate-kind` / `plate-invalid`,
//! `plate-raw` (when normalisation changed the text), `no-plate`, `colour-raw`,
//! `char-confidence-raw`, `plate-type`, `vehicle-type`, `vehicle-colour`, `camera-ip`,
//! `event-id` (`UUID`), `pictures` (`name=bytes,…`), `picture-bytes` (total), `xml-encoding`,
//! `http-target`.
//!
//! Pictures never enter a reading: keeping them (the host's listener has the whole request)
//! and attaching them to the passage is the host's concern. The reading only names the
//! picture parts and their sizes.
//!
//! # Rejections
//!
//! A request that cannot be framed (bad request line or headers, bytes that are not HTTP) or
//! that carries no usable event (not a POST/PUT, no XML part, undecodable or malformed XML,
//! an `ANPR` event without its element) is rejected with the reason and its byte count. A
//! plate read below `min-confidence` is rejected too (`plate … read with confidence …`), so
//! the drop shows in the device's log. A request whose body exceeds `max-request-kb` is
//! skipped as it streams by without being buffered and rejected once, counting all its bytes.
//!
//! # Settings
//!
//! - `min-confidence` (0–100, default 0): plate reads below it are dropped. The default
//!   reports everything and leaves the judgement to the lane's rules.
//! - `max-request-kb` (1–16384, default 4096): largest request body. Keep the manifest's
//!   `memory-mb` above three times this.

mod event;

use kakou_plugin_sdk::prelude::*;
use kakou_plugin_sdk::proto::http::{self, Item, Limits, Request, RequestFramer};
use kakou_plugin_sdk::proto::plate;

use event::{Alert, decode_xml_bytes};

/// Largest `max-request-kb` accepted (the host's listener refuses bodies over 16 MiB).
const MAX_REQUEST_KB: u32 = 16 * 1024;

/// Plate texts that mean "no plate read" (compared after normalisation, case-insensitively).
const NO_PLATE: [&str; 9] = [
    "无车牌",
    "无牌",
    "未识别",
    "未知",
    "车牌",
    "unknown",
    "noplate",
    "none",
    "null",
];

/// Colour words some firmware writes before the plate text.
const COLOUR_PREFIXES: [(&str, PlateColour); 7] = [
    ("黄绿", PlateColour::YellowGreen),
    ("渐变绿", PlateColour::YellowGreen),
    ("蓝", PlateColour::Blue),
    ("黄", PlateColour::Yellow),
    ("白", PlateColour::White),
    ("黑", PlateColour::Black),
    ("绿", PlateColour::Green),
];

/// One Hikvision ANPR camera pushing to the host's HTTP listener.
pub struct HikvisionAnpr {
    framer: RequestFramer,
    min_confidence: u8,
}

/// The XML and the pictures one request carried.
struct Payload<'a> {
    xml: &'a [u8],
    charset: Option<String>,
    /// Picture part names and sizes.
    pictures: Vec<(String, usize)>,
}

fn starts_with_markup(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}

fn is_xml(media: &str, label: &str, body: &[u8]) -> bool {
    media.ends_with("/xml")
        || media.ends_with("+xml")
        || label.to_ascii_lowercase().ends_with(".xml")
        || starts_with_markup(body)
}

fn is_picture(media: &str, label: &str) -> bool {
    let label = label.to_ascii_lowercase();
    media.starts_with("image/")
        || [".jpg", ".jpeg", ".png", ".bmp"]
            .iter()
            .any(|ext| label.ends_with(ext))
}

/// Finds the XML (and lists the pictures) in a request body.
fn payload(req: &Request) -> Result<Payload<'_>, String> {
    let content_type = req.content_type().unwrap_or("");
    let Some(boundary) = http::multipart_boundary(content_type) else {
        let media = http::media_type(content_type);
        if req.body.iter().all(u8::is_ascii_whitespace) {
            return Err("empty body".into());
        }
        if !is_xml(&media, "", &req.body) {
            return Err(format!(
                "body is {:?} ({} bytes), expected multipart/form-data or XML",
                media,
                req.body.len()
            ));
        }
        return Ok(Payload {
            xml: &req.body,
            charset: http::param(content_type, "charset"),
            pictures: Vec::new(),
        });
    };
    let parts = http::split_multipart(&req.body, &boundary)?;
    let mut xml = None;
    let mut pictures = Vec::new();
    let mut labels = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let label = part
            .filename()
            .or_else(|| part.name())
            .unwrap_or_else(|| format!("part {}", i + 1));
        let media = part
            .content_type()
            .map(http::media_type)
            .unwrap_or_default();
        if xml.is_none() && is_xml(&media, &label, part.body) {
            xml = Some((
                part.body,
                part.content_type().and_then(|c| http::param(c, "charset")),
            ));
        } else if is_picture(&media, &label) {
            pictures.push((label.clone(), part.body.len()));
        }
        labels.push(label);
    }
    let (xml, charset) = xml.ok_or_else(|| {
        format!(
            "no XML part among {} parts ({})",
            parts.len(),
            labels.join(", ")
        )
    })?;
    Ok(Payload {
        xml,
        charset,
        pictures,
    })
}

/// A `plateColor` name, or `None` when it is not one we know.
fn colour_from_name(raw: &str) -> Option<PlateColour> {
    let key: String = raw
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    let has = |words: &[&str]| words.iter().any(|w| key.contains(w));
    Some(if key.is_empty() || key == "unknown" {
        PlateColour::Unknown
    } else if has(&["yellowgreen", "greenyellow", "黄绿", "渐变绿"]) {
        PlateColour::YellowGreen
    } else if has(&["blue", "蓝"]) {
        PlateColour::Blue
    } else if has(&["yellow", "黄"]) {
        PlateColour::Yellow
    } else if has(&["white", "白"]) {
        PlateColour::White
    } else if has(&["black", "黑"]) {
        PlateColour::Black
    } else if has(&["green", "绿"]) {
        PlateColour::Green
    } else {
        return None;
    })
}

/// Removes a colour word before the province character (`蓝粤B12345`), returning its colour.
fn split_colour_prefix(raw: &str) -> (Option<PlateColour>, &str) {
    for (word, colour) in COLOUR_PREFIXES {
        if let Some(rest) = raw.strip_prefix(word)
            && rest.chars().next().is_some_and(plate::is_province)
        {
            return (Some(colour), rest);
        }
    }
    (None, raw)
}

fn is_no_plate(normalised: &str) -> bool {
    let lower = normalised.to_lowercase();
    lower.is_empty() || NO_PLATE.contains(&lower.as_str()) || lower.contains("无车牌")
}

/// Copies the listed alert fields into attributes.
fn copy_fields(mut reading: Reading, alert: &Alert, fields: &[(&str, &str)]) -> Reading {
    for (path, key) in fields {
        if let Some(v) = alert.get(path) {
            reading = reading.with(*key, v);
        }
    }
    reading
}

/// The plate reading of an ANPR alert, and whether it is a "no plate" read.
fn plate_reading(alert: &Alert) -> (Reading, bool) {
    let raw = alert.get("ANPR/licensePlate").unwrap_or("");
    let (prefix_colour, rest) = split_colour_prefix(raw.trim());
    let text = plate::normalize(rest);
    let no_plate = is_no_plate(&text);

    let colour_name = alert.get("ANPR/plateColor").unwrap_or("");
    let named = colour_from_name(colour_name);
    let colour = match (named, prefix_colour) {
        (Some(PlateColour::Unknown) | None, Some(p)) => p,
        (Some(c), _) => c,
        (None, None) => PlateColour::Unknown,
    };
    let confidence = if no_plate {
        0
    } else {
        alert
            .get("ANPR/confidenceLevel")
            .and_then(|c| c.trim().parse::<f64>().ok())
            .map_or(0, |c| c.round().clamp(0.0, 100.0) as u8)
    };
    let chars_raw = alert.get("ANPR/plateCharBelieve");
    let per_char: Option<Vec<u8>> = chars_raw.and_then(|list| {
        list.split(',')
            .map(|v| v.trim().parse::<u8>().ok().map(|v| v.min(100)))
            .collect()
    });
    let (char_confidence, chars_mismatch) = match per_char {
        Some(v) if !no_plate && v.len() == text.chars().count() => (v, false),
        _ => (Vec::new(), chars_raw.is_some() && !no_plate),
    };

    let mut reading: Reading = Plate {
        text: if no_plate {
            String::new()
        } else {
            text.clone()
        },
        colour,
        confidence,
        char_confidence,
    }
    .into();
    reading = copy_fields(
        reading,
        alert,
        &[
            ("dateTime", "event-time"),
            ("channelID", "channel"),
            ("ANPR/line", "camera-lane"),
            ("ANPR/direction", "direction"),
        ],
    );
    if no_plate {
        reading = reading.with(
            "no-plate",
            if raw.trim().is_empty() {
                "(empty)"
            } else {
                raw.trim()
            },
        );
    } else {
        reading = match plate::parse(&text) {
            Ok(p) => reading.with("plate-kind", p.kind),
            Err(e) => reading.with("plate-invalid", e),
        };
        if raw != text {
            reading = reading.with("plate-raw", raw);
        }
    }
    if named.is_none() {
        reading = reading.with("colour-raw", colour_name);
    }
    if chars_mismatch && let Some(list) = chars_raw {
        reading = reading.with("char-confidence-raw", list);
    }
    reading = copy_fields(
        reading,
        alert,
        &[
            ("ANPR/plateType", "plate-type"),
            ("ANPR/vehicleType", "vehicle-type"),
            ("ANPR/vehicleInfo/color", "vehicle-colour"),
            ("ipAddress", "camera-ip"),
            ("UUID", "event-id"),
        ],
    );
    (reading, no_plate)
}

/// A device status for the health events an operator must see, `None` for the rest.
fn status_reading(alert: &Alert, event_type: &str) -> Option<Reading> {
    let active = alert
        .get("eventState")
        .is_none_or(|s| s.eq_ignore_ascii_case("active"));
    if !active {
        return None;
    }
    let channel = alert.get("channelID").unwrap_or("?");
    let (level, code, message) = match event_type.to_ascii_lowercase().as_str() {
        "videoloss" => (
            StatusLevel::Fault,
            "videoloss",
            format!("video loss on channel {channel}: the camera cannot read plates"),
        ),
        "shelteralarm" => (
            StatusLevel::Warning,
            "tamper",
            format!("video tampering (view blocked) on channel {channel}"),
        ),
        _ => return None,
    };
    let reading: Reading = DeviceStatus {
        level,
        code: code.into(),
        message,
    }
    .into();
    Some(copy_fields(
        reading,
        alert,
        &[
            ("dateTime", "event-time"),
            ("channelID", "channel"),
            ("ipAddress", "camera-ip"),
        ],
    ))
}

impl HikvisionAnpr {
    /// What one request says: a reading, nothing, or why it is rejected.
    fn decode(&self, req: &Request) -> Result<Option<Reading>, String> {
        if !matches!(req.method.as_str(), "POST" | "PUT") {
            return Err("not an event push (cameras POST their events)".into());
        }
        let payload = payload(req)?;
        let decoded = decode_xml_bytes(payload.xml, payload.charset.as_deref())?;
        let alert = Alert::parse(&decoded.text)?;
        let event_type = alert.get("eventType").unwrap_or("");
        let is_anpr = event_type.eq_ignore_ascii_case("ANPR");
        if !is_anpr && !alert.has("ANPR") {
            return Ok(status_reading(&alert, event_type).map(|r| {
                r.with("xml-encoding", &decoded.encoding)
                    .with("http-target", &req.target)
            }));
        }
        if !alert.has("ANPR") {
            return Err("ANPR event without an <ANPR> element".into());
        }
        let (mut reading, no_plate) = plate_reading(&alert);
        if let ReadingValue::Plate(p) = &reading.value
            && !no_plate
            && p.confidence < self.min_confidence
        {
            return Err(format!(
                "plate {} read with confidence {}, below min-confidence {}; dropped",
                p.text, p.confidence, self.min_confidence
            ));
        }
        if !payload.pictures.is_empty() {
            let list: Vec<String> = payload
                .pictures
                .iter()
                .map(|(name, size)| format!("{name}={size}"))
                .collect();
            let total: usize = payload.pictures.iter().map(|(_, size)| size).sum();
            reading = reading
                .with("pictures", list.join(","))
                .with("picture-bytes", total);
        }
        Ok(Some(
            reading
                .with("xml-encoding", &decoded.encoding)
                .with("http-target", &req.target),
        ))
    }
}

fn setting_specs() -> Vec<SettingSpec> {
    vec![
        SettingSpec::new(
            "min-confidence",
            Some("0"),
            "plate reads below this confidence (0-100) are dropped; 0 reports all and leaves \
             the judgement to the lane",
        ),
        SettingSpec::new(
            "max-request-kb",
            Some("4096"),
            "largest request body in KiB (1-16384); larger requests are skipped and rejected",
        ),
    ]
}

impl Driver for HikvisionAnpr {
    fn describe() -> DriverDescription {
        DriverDescription {
            name: "hikvision-anpr".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            device_classes: vec!["plate-camera".into()],
            summary: "Hikvision ISAPI ANPR event push (multipart XML + JPEG, UTF-8 or GBK)".into(),
            poll_interval_ms: None,
            settings: setting_specs(),
        }
    }

    fn open(config: &Config) -> Result<Self, String> {
        let min_confidence = config.get::<u8>("min-confidence", 0)?;
        if min_confidence > 100 {
            return Err(format!(
                "setting `min-confidence`: {min_confidence} is above 100"
            ));
        }
        let kb = config.get::<u32>("max-request-kb", 4096)?;
        if !(1..=MAX_REQUEST_KB).contains(&kb) {
            return Err(format!(
                "setting `max-request-kb`: {kb} is outside 1..={MAX_REQUEST_KB}"
            ));
        }
        Ok(HikvisionAnpr {
            framer: RequestFramer::new(Limits {
                max_head: http::DEFAULT_MAX_HEAD,
                max_body: kb as usize * 1024,
            }),
            min_confidence,
        })
    }

    fn feed(&mut self, data: &[u8]) -> FeedOutput {
        let mut out = FeedOutput::default();
        self.framer.push(data);
        while let Some(item) = self.framer.next_item() {
            match item {
                Item::Request { request, bytes } => match self.decode(&request) {
                    Ok(Some(reading)) => out.readings.push(reading),
                    Ok(None) => {}
                    Err(reason) => out.rejected.push(Rejected {
                        reason: format!("{} {}: {reason}", request.method, request.target),
                        bytes: bytes.try_into().unwrap_or(u32::MAX),
                    }),
                },
                Item::Line(line) => out.rejected.push(Rejected {
                    reason: "unexpected line".into(),
                    bytes: line.len().try_into().unwrap_or(u32::MAX),
                }),
                Item::Rejected(r) => out.rejected.push(r.into()),
            }
        }
        out
    }

    fn drain(&mut self) -> Vec<u8> {
        self.framer.drain()
    }
}

kakou_plugin_sdk::export_driver!(HikvisionAnpr);

#[cfg(test)]
mod tests;
