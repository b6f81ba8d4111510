//! Jointech JT701 GPS e-seal (electronic padlock): `P45` text reports into seal readings.
//!
//! # Wire format
//!
//! Text reports are ASCII between parentheses, fields separated by commas, framed here with
//! the SDK splitter (`(` … `)`, at most 512 bytes):
//!
//! ```text
//! (id,P45,ddmmyy,hhmmss,lat,N|S,lon,E|W,A|V,speed,course,event source,unlock verification,
//!  rfid,password verification,wrong password count,index[,more…])
//! (8000632862,P45,290322,132412,25.28217,S,57.54683,W,A,0,0,5,0,0000000000,0,0,9,0)
//! ```
//!
//! The vendor's protocol document is not public. The layout above is the one public decoders
//! agree on (field names included), checked against the two public example reports; what
//! the codes mean beyond their names is not documented publicly, and this driver says so
//! instead of guessing.
//!
//! # What is decoded
//!
//! Each P45 report becomes one [`Seal`] reading:
//!
//! - `id`: field 1, the device id.
//! - `position`: lat/lon from fields 5–8 (decimal degrees with hemisphere letters, as in both
//!   public examples; not `ddmm.mmmm`), `valid` from field 9 (`A`), `utc` from fields 3–4
//!   (taken as UTC, two-digit years as 20yy), `course_deg` from field 11, and `speed_kmh` from
//!   field 10 converted from `speed-unit` (default `mph`, which is how the most widely used
//!   public decoder reads it; Jointech documents differ between products, so the unit is a
//!   setting: `mph`, `kmh` or `knots`).
//! - `state`: **unsure**. No public source defines the event-source codes. The driver uses
//!   the site's `source-states` table first (e.g. `5=locked,3=tampered`: event source 5 means
//!   locked on this site's seals); otherwise a report whose unlock verification (field 13) is
//!   `1` is taken as an authorised unlock (`unlocked`, as in the public example where a card
//!   is swiped and verified); anything else is `unknown`. The seal's own lock, wire and
//!   back-cap status bits are in its binary (`$`) reports, which this driver does not decode.
//!
//! Passed through as attributes, undecoded: `report` (`P45`), `event-source` (field 12),
//! `unlock-verification` (13), `rfid` (14, only when not `0000000000`), `password-verification`
//! (15), `wrong-passwords` (16), `index` (17), `speed-raw` (field 10 as sent), and every field
//! after the index as `field-18`, `field-19`, … (the first public example has one, `0`, of
//! unknown meaning; one public decoder calls a P45 field "geofence id"). P45 carries no battery
//! level: battery is in the binary reports.
//!
//! Other text reports (`P01` command replies, `@JT`, `U01`, …) are well-formed but not decoded:
//! they are rejected with the report type in the reason. Reports that break the layout (too
//! few fields, month 13, latitude 95, hemisphere `X`, non-numeric codes) are rejected with the
//! field named. Binary `$` reports on the same link are rejected as noise.
//!
//! # Acknowledgements (`poll`)
//!
//! The seal expects the platform to acknowledge each P45 with `(P69,0,<index>)` and uploads it
//! again otherwise. A driver cannot send from `feed`, so with `ack = true` (default) the
//! acknowledgements are queued and handed out by `poll` (every second), oldest first, all
//! pending ones in one write; at most 64 are kept. Set `ack = false` when another server
//! already answers the seal.

use kakou_plugin_sdk::prelude::*;

const MAX_REPORT: usize = 512;
const MIN_FIELDS: usize = 17;
const MAX_PENDING_ACKS: usize = 64;
const POLL_MS: u32 = 1000;

/// How the device's speed field is read.
#[derive(Debug, Clone, Copy, PartialEq)]
enum SpeedUnit {
    Mph,
    Kmh,
    Knots,
}

impl SpeedUnit {
    fn to_kmh(self, v: f64) -> f64 {
        match self {
            SpeedUnit::Mph => v * 1.609_344,
            SpeedUnit::Kmh => v,
            SpeedUnit::Knots => v * 1.852,
        }
    }
}

/// A parsed P45 report.
#[derive(Debug, Clone, PartialEq)]
struct P45 {
    id: String,
    utc: String,
    lat: f64,
    lon: f64,
    valid: bool,
    speed: f64,
    speed_raw: String,
    course: f64,
    event_source: u32,
    unlock_verification: u32,
    rfid: String,
    password_verification: u32,
    wrong_passwords: u32,
    index: u32,
    extra: Vec<String>,
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn two(s: &str, at: usize) -> u32 {
    s[at..at + 2].parse().unwrap_or(0)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `ddmmyy` and `hhmmss` as RFC 3339 UTC.
fn utc(date: &str, time: &str) -> Result<String, String> {
    if date.len() != 6 || !digits(date) {
        return Err(format!("date {date:?} is not ddmmyy"));
    }
    if time.len() != 6 || !digits(time) {
        return Err(format!("time {time:?} is not hhmmss"));
    }
    let (day, month, year) = (two(date, 0), two(date, 2), 2000 + two(date, 4));
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(format!("date {date:?} does not exist"));
    }
    let (h, m, s) = (two(time, 0), two(time, 2), two(time, 4));
    if h > 23 || m > 59 || s > 59 {
        return Err(format!("time {time:?} is out of range"));
    }
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z"
    ))
}

/// Decimal degrees with a hemisphere letter.
fn degrees(
    value: &str,
    hemisphere: &str,
    what: &str,
    max: f64,
    pos: &str,
    neg: &str,
) -> Result<f64, String> {
    let ok = value
        .split_once('.')
        .map_or(digits(value), |(a, b)| digits(a) && digits(b));
    let v: f64 = match value.parse() {
        Ok(v) if ok => v,
        _ => return Err(format!("{what} {value:?} is not decimal degrees")),
    };
    if v > max {
        return Err(format!("{what} {value:?} is beyond {max} degrees"));
    }
    match hemisphere {
        h if h == pos => Ok(v),
        h if h == neg => Ok(-v),
        h => Err(format!(
            "{what} hemisphere {h:?} is neither {pos} nor {neg}"
        )),
    }
}

fn code(value: &str, what: &str) -> Result<u32, String> {
    match value.parse() {
        Ok(v) if digits(value) => Ok(v),
        _ => Err(format!("{what} {value:?} is not a number")),
    }
}

fn decimal(value: &str, what: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && !value.starts_with('+') => Ok(v),
        _ => Err(format!("{what} {value:?} is not a number")),
    }
}

/// Parses a whole frame `(…)`.
fn parse(frame: &[u8]) -> Result<P45, String> {
    let inner = frame
        .strip_prefix(b"(")
        .and_then(|f| f.strip_suffix(b")"))
        .ok_or("report is not enclosed in parentheses")?;
    if let Some(b) = inner.iter().find(|b| !(0x20..0x7F).contains(*b)) {
        return Err(format!(
            "byte {b:02X} is not printable ASCII: not a text report"
        ));
    }
    let text = std::str::from_utf8(inner).map_err(|e| e.to_string())?;
    let f: Vec<&str> = text.split(',').collect();
    match f.get(1) {
        Some(&"P45") => {}
        Some(kind) => {
            return Err(format!(
                "report type {kind:?} is not decoded (this driver decodes P45)"
            ));
        }
        None => return Err(format!("report {text:?} has no type field")),
    }
    if f.len() < MIN_FIELDS {
        return Err(format!(
            "P45 report has {} fields, at least {MIN_FIELDS} expected",
            f.len()
        ));
    }
    let named = |e: String| format!("P45: {e}");
    let id = f[0];
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(named(format!("device id {id:?} is not alphanumeric")));
    }
    let valid = match f[8] {
        "A" => true,
        "V" => false,
        other => return Err(named(format!("GPS status {other:?} is neither A nor V"))),
    };
    let rfid = f[13];
    if !digits(rfid) {
        return Err(named(format!("RFID card {rfid:?} is not digits")));
    }
    Ok(P45 {
        id: id.to_string(),
        utc: utc(f[2], f[3]).map_err(named)?,
        lat: degrees(f[4], f[5], "latitude", 90.0, "N", "S").map_err(named)?,
        lon: degrees(f[6], f[7], "longitude", 180.0, "E", "W").map_err(named)?,
        valid,
        speed: decimal(f[9], "speed").map_err(named)?,
        speed_raw: f[9].to_string(),
        course: decimal(f[10], "course").map_err(named)?,
        event_source: code(f[11], "event source").map_err(named)?,
        unlock_verification: code(f[12], "unlock verification").map_err(named)?,
        rfid: rfid.to_string(),
        password_verification: code(f[14], "password verification").map_err(named)?,
        wrong_passwords: code(f[15], "wrong password count").map_err(named)?,
        index: code(f[16], "index").map_err(named)?,
        extra: f[MIN_FIELDS..].iter().map(|s| s.to_string()).collect(),
    })
}

/// `source-states`: `code=state` pairs.
fn source_states(text: &str) -> Result<Vec<(u32, SealState)>, String> {
    let mut out = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || {
            format!(
                "setting `source-states`: {pair:?} is not `code=state` with state locked, \
                 unlocked, tampered or unknown"
            )
        };
        let (code, state) = pair.split_once('=').ok_or_else(bad)?;
        let code: u32 = code.trim().parse().map_err(|_| bad())?;
        let state = match state.trim() {
            "locked" => SealState::Locked,
            "unlocked" => SealState::Unlocked,
            "tampered" => SealState::Tampered,
            "unknown" => SealState::Unknown,
            _ => return Err(bad()),
        };
        out.push((code, state));
    }
    Ok(out)
}

/// One JT701 seal link.
pub struct Jt701 {
    frames: Splitter,
    speed_unit: SpeedUnit,
    source_states: Vec<(u32, SealState)>,
    ack: bool,
    pending_acks: Vec<u32>,
}

impl Jt701 {
    fn reading(&self, r: P45) -> Reading {
        let state = match self
            .source_states
            .iter()
            .find(|(c, _)| *c == r.event_source)
        {
            Some((_, state)) => *state,
            None if r.unlock_verification == 1 => SealState::Unlocked,
            None => SealState::Unknown,
        };
        let seal = Seal {
            id: r.id,
            state,
            position: Some(Position {
                lat: r.lat,
                lon: r.lon,
                speed_kmh: Some(self.speed_unit.to_kmh(r.speed)),
                course_deg: Some(r.course),
                valid: r.valid,
                utc: Some(r.utc),
            }),
        };
        let mut reading = Reading::from(seal)
            .with("report", "P45")
            .with("event-source", r.event_source)
            .with("unlock-verification", r.unlock_verification);
        if r.rfid.bytes().any(|b| b != b'0') {
            reading = reading.with("rfid", &r.rfid);
        }
        reading = reading
            .with("password-verification", r.password_verification)
            .with("wrong-passwords", r.wrong_passwords)
            .with("index", r.index)
            .with("speed-raw", &r.speed_raw);
        for (field, value) in (MIN_FIELDS + 1..).zip(&r.extra) {
            reading = reading.with(format!("field-{field}"), value);
        }
        reading
    }
}

impl Driver for Jt701 {
    fn describe() -> DriverDescription {
        DriverDescription {
            name: "jt701".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            device_classes: vec!["e-seal".into(), "gps".into()],
            summary: "Jointech JT701 GPS e-seals: P45 text reports into seal readings with \
                      position; acknowledgements (P69) sent by poll"
                .into(),
            poll_interval_ms: Some(POLL_MS),
            settings: vec![
                SettingSpec::new(
                    "speed-unit",
                    Some("mph"),
                    "unit of the report's speed field: mph, kmh or knots",
                ),
                SettingSpec::new(
                    "source-states",
                    Some(""),
                    "seal state per event-source code, e.g. 5=locked,3=tampered (states: \
                     locked, unlocked, tampered, unknown); unlisted codes: unlocked when unlock \
                     verification is 1, else unknown",
                ),
                SettingSpec::new(
                    "ack",
                    Some("true"),
                    "answer each P45 with (P69,0,index) through poll; false when another \
                     server answers the seal",
                ),
            ],
        }
    }

    fn open(config: &Config) -> Result<Self, String> {
        let speed_unit = match config.text("speed-unit").unwrap_or("mph").trim() {
            "mph" => SpeedUnit::Mph,
            "kmh" => SpeedUnit::Kmh,
            "knots" => SpeedUnit::Knots,
            other => {
                return Err(format!(
                    "setting `speed-unit`: {other:?} is not mph, kmh or knots"
                ));
            }
        };
        Ok(Jt701 {
            frames: Splitter::new(FrameSpec::Delimited {
                start: Some(b"(".to_vec()),
                end: b")".to_vec(),
                max_len: MAX_REPORT,
            }),
            speed_unit,
            source_states: source_states(config.text("source-states").unwrap_or(""))?,
            ack: config.get("ack", true)?,
            pending_acks: Vec::new(),
        })
    }

    fn feed(&mut self, data: &[u8]) -> FeedOutput {
        let mut out = FeedOutput::default();
        self.frames.push(data);
        while let Some(frame) = self.frames.next_frame(|f| parse(f).map(|_| ())) {
            match frame {
                Frame::Ok(bytes) => {
                    let Ok(report) = parse(&bytes) else {
                        continue; // validated above
                    };
                    if self.ack {
                        if self.pending_acks.len() == MAX_PENDING_ACKS {
                            self.pending_acks.remove(0);
                        }
                        self.pending_acks.push(report.index);
                    }
                    out.readings.push(self.reading(report));
                }
                Frame::Rejected(r) => out.rejected.push(r.into()),
            }
        }
        out
    }

    fn drain(&mut self) -> Vec<u8> {
        self.frames.drain()
    }

    fn poll(&mut self) -> Option<Vec<u8>> {
        if self.pending_acks.is_empty() {
            return None;
        }
        let acks = std::mem::take(&mut self.pending_acks);
        Some(
            acks.iter()
                .flat_map(|i| format!("(P69,0,{i})").into_bytes())
                .collect(),
        )
    }
}

kakou_plugin_sdk::export_driver!(Jt701);

#[cfg(test)]
mod tests {
    use super::*;
    use kakou_plugin_sdk::harness::{feed_split, open};
    use kakou_plugin_sdk::wire::jt701 as wire;

    const EXAMPLE: &[u8] =
        b"(8000632862,P45,290322,132412,25.28217,S,57.54683,W,A,0,0,5,0,0000000000,0,0,9,0)";
    const CARD: &[u8] =
        b"(2050018634,P45,051124,204046,9.861502,N,83.950336,W,A,1,0,1,1,0012260888,0,0,0)";

    fn seals(out: &FeedOutput) -> Vec<&Seal> {
        out.readings
            .iter()
            .map(|r| match &r.value {
                ReadingValue::Seal(s) => s,
                other => panic!("unexpected reading {other:?}"),
            })
            .collect()
    }

    fn attr<'a>(r: &'a Reading, key: &str) -> Option<&'a str> {
        r.attributes
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.value.as_str())
    }

    fn report(index: u32, source: u32, verified: u32, rfid: &str) -> Vec<u8> {
        wire::p45(&wire::P45 {
            id: "7000313309".into(),
            year: 2024,
            month: 3,
            day: 15,
            hour: 2,
            minute: 15,
            second: 2,
            lat: 22.581234,
            lon: 114.271456,
            decimals: 6,
            valid: true,
            speed: 30,
            course: 275,
            event_source: source,
            unlock_verification: verified,
            rfid: rfid.into(),
            password_verification: 0,
            wrong_passwords: 0,
            index,
            extra: vec![],
        })
    }

    #[test]
    fn documented_example() {
        let out = feed_split::<Jt701>(&[], EXAMPLE);
        assert!(out.rejected.is_empty());
        let s = seals(&out);
        assert_eq!(s[0].id, "8000632862");
        assert_eq!(s[0].state, SealState::Unknown);
        let p = s[0].position.as_ref().unwrap();
        assert_eq!((p.lat, p.lon), (-25.28217, -57.54683));
        assert!(p.valid);
        assert_eq!(p.utc.as_deref(), Some("2022-03-29T13:24:12Z"));
        assert_eq!((p.speed_kmh, p.course_deg), (Some(0.0), Some(0.0)));
        let r = &out.readings[0];
        assert_eq!(attr(r, "event-source"), Some("5"));
        assert_eq!(attr(r, "unlock-verification"), Some("0"));
        assert_eq!(attr(r, "rfid"), None);
        assert_eq!(attr(r, "index"), Some("9"));
        assert_eq!(attr(r, "field-18"), Some("0"));
    }

    #[test]
    fn verified_card_unlock() {
        let out = feed_split::<Jt701>(&[], CARD);
        let s = seals(&out);
        assert_eq!(s[0].state, SealState::Unlocked);
        let p = s[0].position.as_ref().unwrap();
        assert_eq!((p.lat, p.lon), (9.861502, -83.950336));
        assert!((p.speed_kmh.unwrap() - 1.609_344).abs() < 1e-9);
        assert_eq!(attr(&out.readings[0], "rfid"), Some("0012260888"));
        assert_eq!(attr(&out.readings[0], "field-18"), None);
    }

    #[test]
    fn fixture_capture_decodes() {
        let capture = include_bytes!("../fixtures/p45.txt");
        assert!(capture.starts_with(EXAMPLE));
        let out = feed_split::<Jt701>(&[("source-states", "5=locked")], capture);
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        let states: Vec<SealState> = seals(&out).iter().map(|s| s.state).collect();
        assert_eq!(
            states,
            [
                SealState::Locked,
                SealState::Unlocked,
                SealState::Unlocked,
                SealState::Unknown,
                SealState::Locked
            ]
        );
    }

    #[test]
    fn settings_change_state_and_speed() {
        let input = report(1, 3, 0, "0000000000");
        let out = feed_split::<Jt701>(
            &[
                ("source-states", " 3 = tampered , 5=locked"),
                ("speed-unit", "kmh"),
            ],
            &input,
        );
        let s = seals(&out);
        assert_eq!(s[0].state, SealState::Tampered);
        assert_eq!(s[0].position.as_ref().unwrap().speed_kmh, Some(30.0));
        let out = feed_split::<Jt701>(&[("speed-unit", "knots")], &input);
        let kmh = seals(&out)[0].position.as_ref().unwrap().speed_kmh.unwrap();
        assert!((kmh - 55.56).abs() < 1e-9);
        // The table wins over the unlock-verification rule.
        let out = feed_split::<Jt701>(&[("source-states", "1=unknown")], CARD);
        assert_eq!(seals(&out)[0].state, SealState::Unknown);
    }

    #[test]
    fn acknowledgements_through_poll() {
        let mut d = open::<Jt701>(&[]).unwrap();
        assert_eq!(d.poll(), None);
        let mut input = EXAMPLE.to_vec();
        input.extend(report(17, 1, 1, "0008834512"));
        assert_eq!(d.feed(&input).readings.len(), 2);
        let mut expected = wire::p69_ack(9);
        expected.extend(wire::p69_ack(17));
        assert_eq!(d.poll(), Some(expected));
        assert_eq!(d.poll(), None);
        // Bounded when the host does not poll.
        for i in 0..100 {
            d.feed(&report(i, 1, 1, "0008834512"));
        }
        let acks = String::from_utf8(d.poll().unwrap()).unwrap();
        assert_eq!(acks.matches("(P69").count(), MAX_PENDING_ACKS);
        assert!(acks.starts_with("(P69,0,36)") && acks.ends_with("(P69,0,99)"));

        let mut d = open::<Jt701>(&[("ack", "false")]).unwrap();
        d.feed(EXAMPLE);
        assert_eq!(d.poll(), None);
        assert_eq!(Jt701::describe().poll_interval_ms, Some(1000));
    }

    #[test]
    fn other_reports_garbage_and_corruption() {
        let mut input = b"\x24\x80\x41\x30\x09junk".to_vec(); // before (binary $ report start)
        input.extend(EXAMPLE);
        input.extend(b"(8000632862,P01,JT701,V1.2)"); // another report type
        input.extend(b" \r\n"); // between
        let mut broken = CARD.to_vec();
        broken[30] = 0x00; // garbage inside
        input.extend(&broken);
        input.extend(
            b"(8000632862,P45,290322,132412,95.28217,S,57.54683,W,A,0,0,5,0,0000000000,0,0,9)",
        );
        input.extend(b"(8000632862,P45,290322,132412)");
        input.extend(CARD);
        let out = feed_split::<Jt701>(&[], &input);
        assert_eq!(seals(&out).len(), 2);
        let reasons: Vec<&str> = out.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 6, "{reasons:?}");
        assert!(reasons[0].contains("noise"), "{reasons:?}");
        assert_eq!(
            reasons[1],
            "report type \"P01\" is not decoded (this driver decodes P45)"
        );
        assert!(reasons[2].contains("noise"), "{reasons:?}");
        assert!(reasons[3].contains("not printable"), "{reasons:?}");
        assert!(reasons[4].contains("latitude \"95.28217\""), "{reasons:?}");
        assert!(reasons[5].contains("4 fields"), "{reasons:?}");
        let dropped: u32 = out.rejected.iter().map(|r| r.bytes).sum();
        assert_eq!(dropped as usize + EXAMPLE.len() + CARD.len(), input.len());
    }

    #[test]
    fn nonsense_fields_are_named() {
        // (date, time, latitude, hemisphere, GPS status, event source, expected in the reason)
        let cases = [
            (
                "2903221",
                "132412",
                "25.28217",
                "S",
                "A",
                "5",
                "date \"2903221\" is not ddmmyy",
            ),
            (
                "291322",
                "132412",
                "25.28217",
                "S",
                "A",
                "5",
                "date \"291322\" does not exist",
            ),
            (
                "300222",
                "132412",
                "25.28217",
                "S",
                "A",
                "5",
                "date \"300222\" does not exist",
            ),
            (
                "290322",
                "246012",
                "25.28217",
                "S",
                "A",
                "5",
                "time \"246012\" is out of range",
            ),
            (
                "290322",
                "132412",
                "25.28217",
                "X",
                "A",
                "5",
                "hemisphere \"X\"",
            ),
            (
                "290322",
                "132412",
                "25.2a217",
                "S",
                "A",
                "5",
                "not decimal degrees",
            ),
            (
                "290322",
                "132412",
                "25.28217",
                "S",
                "Z",
                "5",
                "GPS status \"Z\"",
            ),
            (
                "290322",
                "132412",
                "25.28217",
                "S",
                "A",
                "x",
                "event source \"x\"",
            ),
        ];
        for (date, time, lat, ns, fix, source, needle) in cases {
            let text = format!(
                "(8000632862,P45,{date},{time},{lat},{ns},57.54683,W,{fix},0,0,{source},0,\
                 0000000000,0,0,9)"
            );
            let out = feed_split::<Jt701>(&[], text.as_bytes());
            assert!(out.readings.is_empty(), "{text}");
            assert_eq!(out.rejected.len(), 1, "{text}");
            assert!(
                out.rejected[0].reason.contains(needle),
                "{text}: {:?}",
                out.rejected
            );
        }
    }

    #[test]
    fn drain_returns_partial_report() {
        let mut d = open::<Jt701>(&[]).unwrap();
        assert!(d.feed(&EXAMPLE[..20]).readings.is_empty());
        assert_eq!(d.drain(), EXAMPLE[..20].to_vec());
    }

    #[test]
    fn bad_settings_are_refused() {
        let err = |s: &[(&str, &str)]| open::<Jt701>(s).err().unwrap();
        assert!(err(&[("speed-unit", "m/s")]).contains("`speed-unit`"));
        assert!(err(&[("source-states", "5=open")]).contains("`source-states`"));
        assert!(err(&[("source-states", "five=locked")]).contains("`source-states`"));
        assert!(err(&[("ack", "maybe")]).contains("`ack`"));
        assert!(err(&[("imei", "1")]).contains("unknown setting `imei`"));
    }
}
