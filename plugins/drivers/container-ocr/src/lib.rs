//! Container-number OCR portals speaking kakou's neutral result format, over TCP lines or HTTP.
//!
//! The host hands the driver a byte stream: TCP lines as received, or each HTTP request
//! re-serialised with a `Content-Length`. Messages are framed here by their first bytes and
//! their line end or `Content-Length` ([`kakou_plugin_sdk::proto::http::RequestFramer`] with
//! line support). Settings: `max-message-kb` (1–16384, default 64), the longest line or HTTP
//! body accepted.
//!
//! The format specification follows; it is also in the crate's `FORMAT.md`, for integrators.
//!
#![doc = include_str!("../FORMAT.md")]

mod json;

use kakou_plugin_sdk::prelude::*;
use kakou_plugin_sdk::proto::http::{self, Item, Limits, LineSpec, Request, RequestFramer};
use kakou_plugin_sdk::proto::iso6346::{self, ContainerError};

use json::Value;

/// Largest `max-message-kb` accepted (the host's listener refuses bodies over 16 MiB).
const MAX_MESSAGE_KB: u32 = 16 * 1024;

/// First bytes of the line messages.
const LINE_STARTS: [&str; 4] = ["{", "CNTR|", "HBT|", "STAT|"];

/// One container OCR portal (or OCR server) feeding one lane's device link.
pub struct ContainerOcr {
    framer: RequestFramer,
}

/// Facts of one message shared by all its readings.
#[derive(Debug, Clone, Default)]
struct Context {
    lane: Option<String>,
    time: Option<String>,
    id: Option<String>,
    format: &'static str,
    http_target: Option<String>,
}

impl Context {
    fn attach(&self, mut r: Reading) -> Reading {
        for (key, value) in [
            ("lane", &self.lane),
            ("event-time", &self.time),
            ("event-id", &self.id),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                r = r.with(key, v);
            }
        }
        r
    }

    fn finish(&self, mut r: Reading) -> Reading {
        r = r.with("format", self.format);
        if let Some(t) = &self.http_target {
            r = r.with("http-target", t);
        }
        r
    }
}

/// One container as sent, before validation.
struct Seen<'a> {
    number: &'a str,
    iso: Option<&'a str>,
    position: &'a str,
    confidence: u8,
}

/// The position a word or letter names; `None` if it names none.
fn position_of(word: &str) -> Option<ContainerPosition> {
    Some(match word.trim().to_ascii_lowercase().as_str() {
        "front" | "f" => ContainerPosition::Front,
        "rear" | "r" | "back" => ContainerPosition::Rear,
        "single" | "s" => ContainerPosition::Single,
        "unknown" | "u" | "" => ContainerPosition::Unknown,
        _ => return None,
    })
}

/// The `iso6346` attribute: `valid`, `check-digit-mismatch (expected N)` or `invalid: …`.
fn iso6346_verdict(number: &str) -> String {
    match iso6346::validate(number) {
        Ok(_) => "valid".into(),
        Err(ContainerError::CheckDigitMismatch { expected, .. }) => {
            format!("check-digit-mismatch (expected {expected})")
        }
        Err(e) => format!("invalid: {e}"),
    }
}

/// The readings of a container event.
fn container_readings(seen: &[Seen<'_>], ctx: &Context) -> Vec<Reading> {
    if seen.is_empty() {
        let r = ctx.attach(Reading::from(Container::default()).with("no-container", true));
        return vec![ctx.finish(r)];
    }
    seen.iter()
        .enumerate()
        .map(|(i, c)| {
            let number = iso6346::normalize(c.number);
            let position = position_of(c.position);
            let mut r: Reading = Container {
                iso_type: c
                    .iso
                    .map(|t| t.trim().to_ascii_uppercase())
                    .filter(|t| !t.is_empty()),
                position: position.unwrap_or_default(),
                confidence: c.confidence,
                number: number.clone(),
            }
            .into();
            r = r.with("iso6346", iso6346_verdict(&number));
            r = ctx.attach(r).with("index", i + 1).with("count", seen.len());
            if position.is_none() {
                r = r.with("position-raw", c.position);
            }
            ctx.finish(r)
        })
        .collect()
}

fn status_reading(
    level: &str,
    code: &str,
    message: &str,
    ctx: &Context,
) -> Result<Reading, String> {
    let level = match level.trim().to_ascii_lowercase().as_str() {
        "ok" => StatusLevel::Ok,
        "warning" => StatusLevel::Warning,
        "fault" => StatusLevel::Fault,
        other => {
            return Err(format!(
                "status level {other:?} is not ok, warning or fault"
            ));
        }
    };
    if code.trim().is_empty() {
        return Err("status without a code".into());
    }
    let r = ctx.attach(
        DeviceStatus {
            level,
            code: code.trim().into(),
            message: message.trim().into(),
        }
        .into(),
    );
    Ok(ctx.finish(r))
}

/// A string member, accepting numbers (lanes and ids are sometimes numeric).
fn text_member(obj: &Value, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("\"{key}\" is {}, expected a string", other.kind())),
    }
}

fn json_confidence(v: Option<&Value>, at: &str) -> Result<u8, String> {
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) if (0.0..=100.0).contains(n) => Ok(n.round() as u8),
        Some(Value::Number(n)) => Err(format!("{at}: confidence {n} is outside 0..100")),
        Some(other) => Err(format!(
            "{at}: confidence is {}, expected a number",
            other.kind()
        )),
    }
}

/// Decodes one JSON message.
fn decode_json(text: &str, mut ctx: Context) -> Result<Vec<Reading>, String> {
    let obj = json::parse(text)?;
    if !matches!(obj, Value::Object(_)) {
        return Err(format!("message is {}, expected an object", obj.kind()));
    }
    ctx.format = "json";
    ctx.lane = text_member(&obj, "lane")?;
    ctx.time = text_member(&obj, "time")?;
    ctx.id = text_member(&obj, "id")?;
    let event = text_member(&obj, "event")?.ok_or("missing \"event\"")?;
    match event.as_str() {
        "heartbeat" => Ok(Vec::new()),
        "status" => {
            let level = text_member(&obj, "level")?.ok_or("status without \"level\"")?;
            let code = text_member(&obj, "code")?.ok_or("status without \"code\"")?;
            let message = text_member(&obj, "message")?.unwrap_or_default();
            Ok(vec![status_reading(&level, &code, &message, &ctx)?])
        }
        "container" => {
            let list = match obj.get("containers") {
                Some(Value::Array(list)) => list,
                None => return Err("container event without \"containers\"".into()),
                Some(other) => {
                    return Err(format!(
                        "\"containers\" is {}, expected an array",
                        other.kind()
                    ));
                }
            };
            let mut seen = Vec::with_capacity(list.len());
            for (i, c) in list.iter().enumerate() {
                let at = format!("containers[{i}]");
                if !matches!(c, Value::Object(_)) {
                    return Err(format!("{at} is {}, expected an object", c.kind()));
                }
                let number = match c.get("number") {
                    Some(Value::String(n)) if !n.trim().is_empty() => n.as_str(),
                    Some(Value::String(_)) => return Err(format!("{at}: empty \"number\"")),
                    None | Some(Value::Null) => return Err(format!("{at}: missing \"number\"")),
                    Some(other) => {
                        return Err(format!(
                            "{at}: \"number\" is {}, expected a string",
                            other.kind()
                        ));
                    }
                };
                let iso = match c.get("iso") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.as_str()),
                    Some(other) => {
                        return Err(format!(
                            "{at}: \"iso\" is {}, expected a string",
                            other.kind()
                        ));
                    }
                };
                let position = match c.get("position") {
                    None | Some(Value::Null) => "",
                    Some(Value::String(s)) => s.as_str(),
                    Some(other) => {
                        return Err(format!(
                            "{at}: \"position\" is {}, expected a string",
                            other.kind()
                        ));
                    }
                };
                seen.push(Seen {
                    number,
                    iso,
                    position,
                    confidence: json_confidence(c.get("confidence"), &at)?,
                });
            }
            Ok(container_readings(&seen, &ctx))
        }
        other => Err(format!(
            "unknown event {other:?} (expected container, heartbeat or status)"
        )),
    }
}

/// Decodes one text message (without its line end).
fn decode_text(line: &str, mut ctx: Context) -> Result<Vec<Reading>, String> {
    ctx.format = "text";
    let (kind, rest) = line.split_once('|').unwrap_or((line, ""));
    let some = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
    match kind {
        "HBT" => {
            let fields: Vec<&str> = rest.split('|').collect();
            if fields.len() != 2 {
                return Err(format!(
                    "HBT line has {} fields after the tag, expected 2 (lane, time)",
                    fields.len()
                ));
            }
            Ok(Vec::new())
        }
        "STAT" => {
            let fields: Vec<&str> = rest.splitn(5, '|').collect();
            let [lane, time, level, code, message] = fields[..] else {
                return Err(format!(
                    "STAT line has {} fields after the tag, expected 5 (lane, time, level, code, message)",
                    fields.len()
                ));
            };
            ctx.lane = some(lane);
            ctx.time = some(time);
            Ok(vec![status_reading(level, code, message, &ctx)?])
        }
        "CNTR" => {
            let fields: Vec<&str> = rest.split('|').collect();
            let [lane, time, list] = fields[..] else {
                return Err(format!(
                    "CNTR line has {} fields after the tag, expected 3 (lane, time, containers)",
                    fields.len()
                ));
            };
            ctx.lane = some(lane);
            ctx.time = some(time);
            let mut seen = Vec::new();
            if !list.trim().is_empty() {
                for (i, entry) in list.split(';').enumerate() {
                    let at = format!("container {}", i + 1);
                    let parts: Vec<&str> = entry.split(',').collect();
                    if parts.len() > 4 {
                        return Err(format!(
                            "{at}: {} fields, expected at most 4 (number, iso, position, confidence)",
                            parts.len()
                        ));
                    }
                    let field = |n: usize| parts.get(n).map_or("", |s| s.trim());
                    if field(0).is_empty() {
                        return Err(format!("{at}: empty number"));
                    }
                    let confidence = match field(3) {
                        "" => 0,
                        c => c
                            .parse::<u8>()
                            .ok()
                            .filter(|c| *c <= 100)
                            .ok_or_else(|| format!("{at}: confidence {c:?} is not 0..100"))?,
                    };
                    seen.push(Seen {
                        number: field(0),
                        iso: Some(field(1)),
                        position: field(2),
                        confidence,
                    });
                }
            }
            Ok(container_readings(&seen, &ctx))
        }
        other => Err(format!("unknown line tag {other:?}")),
    }
}

/// Decodes one message (a line, or an HTTP body holding one JSON message).
fn decode_message(bytes: &[u8], ctx: Context) -> Result<Vec<Reading>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("message is not UTF-8: {e}"))?;
    let text = text.trim_end_matches(['\r', '\n']);
    if text.trim_start().starts_with('{') {
        decode_json(text, ctx)
    } else {
        decode_text(text, ctx)
    }
}

/// Splits `body` into lines (line end included).
fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split_inclusive(|&b| b == b'\n')
}

fn count(n: usize) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

impl ContainerOcr {
    /// The readings of one HTTP request; rejections carry their byte counts.
    fn decode_request(&self, req: &Request, bytes: usize, out: &mut FeedOutput) {
        let reject = |out: &mut FeedOutput, reason: String, n: usize| {
            out.rejected.push(Rejected {
                reason: format!("{} {}: {reason}", req.method, req.target),
                bytes: count(n),
            });
        };
        if !matches!(req.method.as_str(), "POST" | "PUT") {
            return reject(out, "not a result push (expected POST)".into(), bytes);
        }
        let ctx = Context {
            http_target: Some(req.target.clone()),
            ..Context::default()
        };
        let body = req.body.trim_ascii();
        if body.is_empty() {
            return reject(out, "empty body".into(), bytes);
        }
        if body.starts_with(b"{") {
            // One JSON message, possibly pretty-printed.
            match decode_message(body, ctx) {
                Ok(readings) => out.readings.extend(readings),
                Err(e) => reject(out, e, bytes),
            }
            return;
        }
        for line in lines(&req.body) {
            if line.trim_ascii().is_empty() {
                continue;
            }
            match decode_message(line.trim_ascii(), ctx.clone()) {
                Ok(readings) => out.readings.extend(readings),
                Err(e) => reject(out, e, line.len()),
            }
        }
    }
}

impl Driver for ContainerOcr {
    fn describe() -> DriverDescription {
        DriverDescription {
            name: "container-ocr".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            device_classes: vec!["container-camera".into()],
            summary:
                "Container OCR results in kakou's neutral format (JSON or text lines, TCP or HTTP)"
                    .into(),
            poll_interval_ms: None,
            settings: vec![SettingSpec::new(
                "max-message-kb",
                Some("64"),
                "longest line or HTTP body in KiB (1-16384); longer messages are skipped and rejected",
            )],
        }
    }

    fn open(config: &Config) -> Result<Self, String> {
        let kb = config.get::<u32>("max-message-kb", 64)?;
        if !(1..=MAX_MESSAGE_KB).contains(&kb) {
            return Err(format!(
                "setting `max-message-kb`: {kb} is outside 1..={MAX_MESSAGE_KB}"
            ));
        }
        let max = kb as usize * 1024;
        let framer = RequestFramer::new(Limits {
            max_head: http::DEFAULT_MAX_HEAD,
            max_body: max,
        })
        .with_lines(LineSpec {
            starts: LINE_STARTS.iter().map(|s| s.as_bytes().to_vec()).collect(),
            end: b"\n".to_vec(),
            max_len: max,
        });
        Ok(ContainerOcr { framer })
    }

    fn feed(&mut self, data: &[u8]) -> FeedOutput {
        let mut out = FeedOutput::default();
        self.framer.push(data);
        while let Some(item) = self.framer.next_item() {
            match item {
                Item::Line(line) => match decode_message(&line, Context::default()) {
                    Ok(readings) => out.readings.extend(readings),
                    Err(reason) => out.rejected.push(Rejected {
                        reason,
                        bytes: count(line.len()),
                    }),
                },
                Item::Request { request, bytes } => self.decode_request(&request, bytes, &mut out),
                Item::Rejected(r) => out.rejected.push(r.into()),
            }
        }
        out
    }

    fn drain(&mut self) -> Vec<u8> {
        self.framer.drain()
    }
}

kakou_plugin_sdk::export_driver!(ContainerOcr);

#[cfg(test)]
mod tests;
