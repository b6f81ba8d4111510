//! NMEA 0183 GPS receivers: RMC and GGA sentences into positions.
//!
//! # Wire format
//!
//! A sentence is `$` + address + `,`-separated fields + `*hh` + `\r\n` (a bare `\n` is accepted
//! too). The address is a 2-letter talker id (`GP` GPS, `GN` multi-constellation, `BD`/`GB`
//! BeiDou, `GL` GLONASS, `GA` Galileo, … any two letters are accepted) followed by the 3-letter
//! sentence type. `hh` is the XOR of every character between `$` and `*` in hex. Sentences
//! are framed with the SDK splitter (`$` … `\n`, at most 128 bytes: the standard's 82 plus room
//! for receivers that exceed it); a sentence whose checksum fails is rejected with both
//! values, e.g. `checksum 6B computed, sentence says 6A`.
//!
//! # What is decoded
//!
//! `sentences` (default `RMC,GGA`) chooses the types decoded into [`Position`] readings:
//!
//! - RMC `time,status,lat,N|S,lon,E|W,speed(knots),course,date,magvar,E|W[,mode]`: lat/lon
//!   (`ddmm.mmmm` / `dddmm.mmmm` to signed degrees), speed converted to km/h (× 1.852),
//!   course, `valid` = status `A` (and, from NMEA 2.3, mode indicator not `N`), `utc` from date
//!   and time as RFC 3339 (`230394` `123519` → `1994-03-23T12:35:19Z`; two-digit years are
//!   1980–2079). Attributes: `talker`, `sentence`, `mode`, `magnetic-variation-deg` (east
//!   positive) when sent.
//! - GGA `time,lat,N|S,lon,E|W,quality,satellites,hdop,altitude,M,…`: lat/lon, `valid` = fix
//!   quality 1 to 5 (GPS, DGPS, PPS, RTK fixed, RTK float; 0 invalid, 6 estimated, 7 manual,
//!   8 simulated are not valid), no speed or course. GGA carries no date: `utc` uses the date
//!   of the last RMC (moved a day forward or back when the times are more than 12 hours apart,
//!   i.e. across midnight); before any RMC with a date, `utc` is empty and the time of day is
//!   in the attribute `utc-time`. Attributes: `talker`, `sentence`, `fix-quality`,
//!   `satellites`, `hdop`, `altitude-m`.
//!
//! RMC and GGA of the same fix give two readings (RMC has speed, course and date; GGA has fix
//! quality and satellites); they are not merged.
//!
//! A selected sentence with empty position fields (the receiver has no fix) gives no
//! position; instead a [`DeviceStatus`] `warning` / `no-fix` is emitted once when the receiver
//! loses its fix (or has none at start), not for every sentence. A selected sentence whose
//! checksum is right but whose fields are not (minutes ≥ 60, month 13, latitude 95°, hemisphere
//! `X`, too few fields) is rejected with the field named: an operator should see a receiver
//! that sends nonsense.
//!
//! Every other valid sentence (GSA, GSV, VTG, GLL, TXT, proprietary `$P…`, and RMC/GGA when
//! not selected) is ignored silently: it is neither a reading nor a rejection, since nothing
//! is wrong with it. They are not counted either: the contract has no counters and a status
//! reading per ignored sentence would drown the useful ones.

use kakou_plugin_sdk::prelude::*;
use kakou_plugin_sdk::proto::checksum;
use kakou_plugin_sdk::proto::date::{self, civil_from_days};

const MAX_SENTENCE: usize = 128;
const KMH_PER_KNOT: f64 = 1.852;
const HALF_DAY_S: i64 = 12 * 3600;

/// Sentence types this driver decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rmc,
    Gga,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Rmc => "RMC",
            Kind::Gga => "GGA",
        }
    }
}

/// A UTC time of day: seconds since midnight and the fraction digits as sent.
#[derive(Debug, Clone, PartialEq)]
struct TimeOfDay {
    seconds: i64,
    fraction: String,
}

impl TimeOfDay {
    /// `hh:mm:ss[.f]`, trailing zeros of the fraction dropped.
    fn text(&self) -> String {
        let (h, m, s) = (
            self.seconds / 3600,
            self.seconds / 60 % 60,
            self.seconds % 60,
        );
        let frac = self.fraction.trim_end_matches('0');
        if frac.is_empty() {
            format!("{h:02}:{m:02}:{s:02}")
        } else {
            format!("{h:02}:{m:02}:{s:02}.{frac}")
        }
    }
}

fn rfc3339(days: i64, time: &TimeOfDay) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{}Z", time.text())
}

/// Fields of a checked sentence, or `None` for sentences this driver ignores.
#[derive(Debug, Clone, PartialEq)]
struct Fix {
    kind: Kind,
    talker: String,
    time: Option<TimeOfDay>,
    /// Days since 1970-01-01 (RMC only).
    date: Option<i64>,
    position: Option<(f64, f64)>,
    valid: bool,
    speed_knots: Option<f64>,
    course_deg: Option<f64>,
    attributes: Vec<(&'static str, String)>,
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn two(s: &str, at: usize) -> i64 {
    s[at..at + 2].parse().unwrap_or(0)
}

/// `hhmmss[.sss]`; empty gives `None`.
fn time_field(s: &str) -> Result<Option<TimeOfDay>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    if whole.len() != 6 || !digits(whole) || !(fraction.is_empty() || digits(fraction)) {
        return Err(format!("time {s:?} is not hhmmss[.sss]"));
    }
    let (h, m, sec) = (two(whole, 0), two(whole, 2), two(whole, 4));
    if h > 23 || m > 59 || sec > 60 {
        return Err(format!("time {s:?} is out of range"));
    }
    Ok(Some(TimeOfDay {
        seconds: h * 3600 + m * 60 + sec,
        fraction: fraction.to_string(),
    }))
}

/// `ddmmyy` to days since 1970-01-01; empty gives `None`.
fn date_field(s: &str) -> Result<Option<i64>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    if s.len() != 6 || !digits(s) {
        return Err(format!("date {s:?} is not ddmmyy"));
    }
    let (day, month, yy) = (two(s, 0), two(s, 2), two(s, 4));
    let year = if yy < 80 { 2000 + yy } else { 1900 + yy };
    if !(1..=12).contains(&month) {
        return Err(format!("date {s:?}: month {month} is out of range"));
    }
    match date::checked_days(year, month, day) {
        Some(days) => Ok(Some(days)),
        None => Err(format!(
            "date {s:?}: day {day} does not exist in {year}-{month:02}"
        )),
    }
}

/// `ddmm.mmmm` (or `dddmm.mmmm`) with its hemisphere to signed degrees.
fn coordinate(
    value: &str,
    hemisphere: &str,
    what: &str,
    max: f64,
    pos: &str,
    neg: &str,
) -> Result<f64, String> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if whole.len() < 3 || !digits(whole) || !(fraction.is_empty() || digits(fraction)) {
        return Err(format!("{what} {value:?} is not (d)ddmm.mmmm"));
    }
    let split = whole.len() - 2;
    let degrees: f64 = whole[..split].parse().unwrap_or(f64::NAN);
    let minutes: f64 = format!("{}.{}0", &whole[split..], fraction)
        .parse()
        .unwrap_or(f64::NAN);
    if !(0.0..60.0).contains(&minutes) {
        return Err(format!(
            "{what} {value:?}: minutes {minutes} are not below 60"
        ));
    }
    let deg = degrees + minutes / 60.0;
    if deg > max {
        return Err(format!("{what} {value:?} is beyond {max} degrees"));
    }
    match hemisphere {
        h if h == pos => Ok(deg),
        h if h == neg => Ok(-deg),
        h => Err(format!(
            "{what} hemisphere {h:?} is neither {pos} nor {neg}"
        )),
    }
}

/// Latitude and longitude from four fields; all empty gives `None`.
fn position(f: &[&str]) -> Result<Option<(f64, f64)>, String> {
    if f.iter().all(|s| s.is_empty()) {
        return Ok(None);
    }
    let lat = coordinate(f[0], f[1], "latitude", 90.0, "N", "S")?;
    let lon = coordinate(f[2], f[3], "longitude", 180.0, "E", "W")?;
    Ok(Some((lat, lon)))
}

/// A decimal number; empty gives `None`.
fn number(s: &str, what: &str) -> Result<Option<f64>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(format!("{what} {s:?} is not a number")),
    }
}

/// Checks framing and checksum of a whole sentence and returns its payload (between `$`
/// and `*`).
fn payload(frame: &[u8]) -> Result<&str, String> {
    let line = frame
        .strip_suffix(b"\r\n")
        .or_else(|| frame.strip_suffix(b"\n"))
        .unwrap_or(frame);
    let body = line.strip_prefix(b"$").unwrap_or(line);
    let star = body
        .iter()
        .rposition(|b| *b == b'*')
        .ok_or("no `*hh` checksum at the end of the sentence")?;
    let (data, check) = (&body[..star], &body[star + 1..]);
    let sent = match check {
        [hi, lo] => checksum::parse_hex_pair(*hi, *lo),
        _ => None,
    }
    .ok_or_else(|| {
        format!(
            "checksum field {:?} is not two hex digits",
            String::from_utf8_lossy(check)
        )
    })?;
    let computed = checksum::nmea(data);
    if computed != sent {
        return Err(format!(
            "checksum {computed:02X} computed, sentence says {sent:02X}"
        ));
    }
    if let Some(b) = data.iter().find(|b| !(0x20..0x7F).contains(*b)) {
        return Err(format!("byte {b:02X} is not printable ASCII"));
    }
    std::str::from_utf8(data).map_err(|e| e.to_string())
}

/// Parses a checked payload into a fix when it is a selected RMC or GGA sentence.
fn parse(frame: &[u8], selected: &[Kind]) -> Result<Option<Fix>, String> {
    let text = payload(frame)?;
    let fields: Vec<&str> = text.split(',').collect();
    let address = fields[0];
    let bytes = address.as_bytes();
    if bytes.len() != 5 || bytes[0] == b'P' || !bytes[..2].iter().all(u8::is_ascii_uppercase) {
        return Ok(None); // proprietary or malformed address: not ours to judge
    }
    let kind = match &address[2..] {
        "RMC" => Kind::Rmc,
        "GGA" => Kind::Gga,
        _ => return Ok(None),
    };
    if !selected.contains(&kind) {
        return Ok(None);
    }
    let talker = address[..2].to_string();
    let named = |e: String| format!("{address}: {e}");
    let need = 10;
    if fields.len() < need {
        return Err(named(format!(
            "{} fields, at least {} expected",
            fields.len() - 1,
            need - 1
        )));
    }
    let time = time_field(fields[1]).map_err(named)?;
    let mut attributes = vec![("talker", talker.clone()), ("sentence", kind.name().into())];
    match kind {
        Kind::Rmc => {
            let status = fields[2];
            if !matches!(status, "A" | "V") {
                return Err(named(format!("status {status:?} is neither A nor V")));
            }
            let position = position(&fields[3..7]).map_err(named)?;
            let speed_knots = number(fields[7], "speed").map_err(named)?;
            let course_deg = number(fields[8], "course").map_err(named)?;
            let date = date_field(fields[9]).map_err(named)?;
            if let (Some(v), Some(dir)) = (fields.get(10), fields.get(11))
                && let Some(v) = number(v, "magnetic variation").map_err(named)?
            {
                let signed = match *dir {
                    "E" => v,
                    "W" => -v,
                    d => {
                        return Err(named(format!(
                            "magnetic variation direction {d:?} is neither E nor W"
                        )));
                    }
                };
                attributes.push(("magnetic-variation-deg", signed.to_string()));
            }
            let mode = fields.get(12).copied().unwrap_or("");
            if !mode.is_empty() {
                attributes.push(("mode", mode.to_string()));
            }
            Ok(Some(Fix {
                kind,
                talker,
                time,
                date,
                position,
                valid: status == "A" && mode != "N",
                speed_knots,
                course_deg,
                attributes,
            }))
        }
        Kind::Gga => {
            let position = position(&fields[2..6]).map_err(named)?;
            let quality: u8 = fields[6]
                .parse()
                .map_err(|_| named(format!("fix quality {:?} is not a number", fields[6])))?;
            let quality_name = match quality {
                0 => "invalid",
                1 => "gps",
                2 => "dgps",
                3 => "pps",
                4 => "rtk-fixed",
                5 => "rtk-float",
                6 => "estimated",
                7 => "manual",
                8 => "simulation",
                _ => "unknown",
            };
            attributes.push(("fix-quality", format!("{quality} {quality_name}")));
            if !fields[7].is_empty() {
                let sats: u32 = fields[7]
                    .parse()
                    .map_err(|_| named(format!("satellites {:?} is not a number", fields[7])))?;
                attributes.push(("satellites", sats.to_string()));
            }
            if let Some(h) = number(fields[8], "hdop").map_err(named)? {
                attributes.push(("hdop", h.to_string()));
            }
            if let Some(a) = number(fields[9], "altitude").map_err(named)? {
                attributes.push(("altitude-m", a.to_string()));
            }
            Ok(Some(Fix {
                kind,
                talker,
                time,
                date: None,
                position,
                valid: (1..=5).contains(&quality),
                speed_knots: None,
                course_deg: None,
                attributes,
            }))
        }
    }
}

/// One GPS receiver.
pub struct Nmea0183 {
    selected: Vec<Kind>,
    frames: Splitter,
    /// Date and time of day of the last RMC that had both.
    last_date: Option<(i64, i64)>,
    /// Whether the last selected sentence had a position (`None` before the first).
    has_fix: Option<bool>,
}

impl Nmea0183 {
    fn reading(&mut self, fix: Fix) -> Option<Reading> {
        let Some((lat, lon)) = fix.position else {
            let report = self.has_fix != Some(false);
            self.has_fix = Some(false);
            return report.then(|| {
                Reading::from(DeviceStatus {
                    level: StatusLevel::Warning,
                    code: "no-fix".into(),
                    message: format!(
                        "{}{}: the receiver has no position fix",
                        fix.talker,
                        fix.kind.name()
                    ),
                })
                .with("talker", &fix.talker)
                .with("sentence", fix.kind.name())
            });
        };
        self.has_fix = Some(true);
        let utc = match (&fix.time, fix.date) {
            (Some(time), Some(days)) => {
                self.last_date = Some((days, time.seconds));
                Some(rfc3339(days, time))
            }
            (Some(time), None) => self.last_date.map(|(days, secs)| {
                let shift = match time.seconds - secs {
                    d if d < -HALF_DAY_S => 1,
                    d if d > HALF_DAY_S => -1,
                    _ => 0,
                };
                rfc3339(days + shift, time)
            }),
            (None, _) => None,
        };
        let mut reading = Reading::from(Position {
            lat,
            lon,
            speed_kmh: fix.speed_knots.map(|k| k * KMH_PER_KNOT),
            course_deg: fix.course_deg,
            valid: fix.valid,
            utc: utc.clone(),
        });
        for (key, value) in fix.attributes {
            reading = reading.with(key, value);
        }
        if let (None, Some(time)) = (utc, &fix.time) {
            reading = reading.with("utc-time", time.text());
        }
        Some(reading)
    }
}

impl Driver for Nmea0183 {
    fn describe() -> DriverDescription {
        DriverDescription {
            name: "nmea0183".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            device_classes: vec!["gps".into()],
            summary: "NMEA 0183 GPS receivers, any talker: RMC and GGA into positions, other \
                      sentences ignored"
                .into(),
            poll_interval_ms: None,
            settings: vec![SettingSpec::new(
                "sentences",
                Some("RMC,GGA"),
                "sentence types decoded into positions, comma-separated: RMC, GGA or both",
            )],
        }
    }

    fn open(config: &Config) -> Result<Self, String> {
        let text = config.text("sentences").unwrap_or("RMC,GGA");
        let mut selected = Vec::new();
        for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let kind = match name.to_ascii_uppercase().as_str() {
                "RMC" => Kind::Rmc,
                "GGA" => Kind::Gga,
                _ => {
                    return Err(format!(
                        "setting `sentences`: {name:?} is not decoded; choose RMC, GGA or both"
                    ));
                }
            };
            if !selected.contains(&kind) {
                selected.push(kind);
            }
        }
        if selected.is_empty() {
            return Err("setting `sentences`: empty; choose RMC, GGA or both".into());
        }
        Ok(Nmea0183 {
            selected,
            frames: Splitter::new(FrameSpec::Delimited {
                start: Some(b"$".to_vec()),
                end: b"\n".to_vec(),
                max_len: MAX_SENTENCE,
            }),
            last_date: None,
            has_fix: None,
        })
    }

    fn feed(&mut self, data: &[u8]) -> FeedOutput {
        let mut out = FeedOutput::default();
        self.frames.push(data);
        loop {
            let selected = &self.selected;
            let Some(frame) = self.frames.next_frame(|f| parse(f, selected).map(|_| ())) else {
                break;
            };
            match frame {
                Frame::Ok(bytes) => {
                    if let Ok(Some(fix)) = parse(&bytes, &self.selected) {
                        out.readings.extend(self.reading(fix));
                    }
                }
                Frame::Rejected(r) => out.rejected.push(r.into()),
            }
        }
        out
    }

    fn drain(&mut self) -> Vec<u8> {
        self.frames.drain()
    }
}

kakou_plugin_sdk::export_driver!(Nmea0183);

#[cfg(test)]
mod tests {
    use super::*;
    use kakou_plugin_sdk::harness::{feed_split, open};
    use kakou_plugin_sdk::wire::nmea as wire;

    const EXAMPLE: &[u8] =
        b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n";
    const GGA: &[u8] = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n";

    fn positions(out: &FeedOutput) -> Vec<&Position> {
        out.readings
            .iter()
            .filter_map(|r| match &r.value {
                ReadingValue::Position(p) => Some(p),
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

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn time(h: u8, m: u8, s: u8) -> wire::UtcTime {
        wire::UtcTime {
            year: 2024,
            month: 3,
            day: 15,
            hour: h,
            minute: m,
            second: s,
            centis: None,
        }
    }

    fn rmc(t: wire::UtcTime, lat: Option<f64>, lon: Option<f64>) -> Vec<u8> {
        wire::rmc(&wire::Rmc {
            talker: "GN".into(),
            time: t,
            valid: lat.is_some(),
            lat,
            lon,
            speed_knots: lat.map(|_| 10.0),
            course_deg: None,
            magnetic_variation_deg: None,
            minute_decimals: 5,
        })
    }

    fn gga(t: wire::UtcTime, lat: Option<f64>, lon: Option<f64>) -> Vec<u8> {
        wire::gga(&wire::Gga {
            talker: "BD".into(),
            time: t,
            lat,
            lon,
            quality: u8::from(lat.is_some()),
            satellites: 9,
            hdop: Some(0.8),
            altitude_m: Some(12.5),
            geoid_separation_m: Some(-3.1),
            minute_decimals: 5,
        })
    }

    #[test]
    fn documented_example_rmc() {
        let out = feed_split::<Nmea0183>(&[], EXAMPLE);
        assert!(out.rejected.is_empty());
        let p = positions(&out);
        assert_eq!(p.len(), 1);
        assert!(close(p[0].lat, 48.0 + 7.038 / 60.0), "{:?}", p[0]);
        assert!(close(p[0].lon, 11.0 + 31.0 / 60.0));
        assert!(close(p[0].speed_kmh.unwrap(), 22.4 * 1.852));
        assert_eq!(p[0].course_deg, Some(84.4));
        assert!(p[0].valid);
        assert_eq!(p[0].utc.as_deref(), Some("1994-03-23T12:35:19Z"));
        let r = &out.readings[0];
        assert_eq!(attr(r, "talker"), Some("GP"));
        assert_eq!(attr(r, "sentence"), Some("RMC"));
        assert_eq!(attr(r, "magnetic-variation-deg"), Some("-3.1"));
        // The wire encoder speaks the same sentence.
        let e = wire::rmc(&wire::Rmc {
            talker: "GP".into(),
            time: wire::UtcTime {
                year: 1994,
                month: 3,
                day: 23,
                hour: 12,
                minute: 35,
                second: 19,
                centis: None,
            },
            valid: true,
            lat: Some(48.0 + 7.038 / 60.0),
            lon: Some(11.0 + 31.0 / 60.0),
            speed_knots: Some(22.4),
            course_deg: Some(84.4),
            magnetic_variation_deg: Some(-3.1),
            minute_decimals: 3,
        });
        assert_eq!(e, EXAMPLE);
    }

    #[test]
    fn gga_takes_the_date_of_the_last_rmc() {
        let mut input = GGA.to_vec(); // before any date
        input.extend(EXAMPLE);
        input.extend(GGA);
        let out = feed_split::<Nmea0183>(&[], &input);
        let p = positions(&out);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].utc, None);
        assert_eq!(attr(&out.readings[0], "utc-time"), Some("12:35:19"));
        assert_eq!(attr(&out.readings[0], "satellites"), Some("8"));
        assert_eq!(attr(&out.readings[0], "hdop"), Some("0.9"));
        assert_eq!(attr(&out.readings[0], "altitude-m"), Some("545.4"));
        assert_eq!(attr(&out.readings[0], "fix-quality"), Some("1 gps"));
        assert!(p[0].valid && p[0].speed_kmh.is_none());
        assert_eq!(p[2].utc.as_deref(), Some("1994-03-23T12:35:19Z"));
    }

    #[test]
    fn gga_after_midnight_moves_the_date() {
        let mut input = rmc(time(23, 59, 59), Some(22.5), Some(114.2));
        input.extend(gga(time(0, 0, 0), Some(22.5), Some(114.2)));
        let out = feed_split::<Nmea0183>(&[], &input);
        let p = positions(&out);
        assert_eq!(p[0].utc.as_deref(), Some("2024-03-15T23:59:59Z"));
        assert_eq!(p[1].utc.as_deref(), Some("2024-03-16T00:00:00Z"));
        // Month and leap-year boundaries.
        assert_eq!(
            rfc3339(
                date::days_from_civil(2024, 2, 28) + 1,
                &TimeOfDay {
                    seconds: 0,
                    fraction: String::new()
                }
            ),
            "2024-02-29T00:00:00Z"
        );
        assert_eq!(
            civil_from_days(date::days_from_civil(2023, 12, 31) + 1),
            (2024, 1, 1)
        );
    }

    #[test]
    fn any_talker_and_sentence_selection() {
        let mut input = rmc(time(2, 15, 2), Some(22.58), Some(114.27));
        input.extend(gga(time(2, 15, 2), Some(22.58), Some(114.27)));
        let both = feed_split::<Nmea0183>(&[], &input);
        let talkers: Vec<_> = both.readings.iter().map(|r| attr(r, "talker")).collect();
        assert_eq!(talkers, [Some("GN"), Some("BD")]);
        let only_gga = feed_split::<Nmea0183>(&[("sentences", "gga")], &input);
        assert_eq!(positions(&only_gga).len(), 1);
        assert_eq!(attr(&only_gga.readings[0], "sentence"), Some("GGA"));
        assert!(only_gga.rejected.is_empty());
        let p = positions(&both);
        assert!(
            close(p[0].lat, 22.58) && close(p[0].lon, 114.27),
            "{:?}",
            p[0]
        );
        assert!(close(p[0].speed_kmh.unwrap(), 18.52));
    }

    #[test]
    fn southern_and_western_hemispheres() {
        let input = wire::sentence("GPRMC,000001.50,A,3352.1200,S,07040.5000,W,,,010125,,,D");
        let out = feed_split::<Nmea0183>(&[], &input);
        let p = positions(&out);
        assert!(close(p[0].lat, -(33.0 + 52.12 / 60.0)));
        assert!(close(p[0].lon, -(70.0 + 40.5 / 60.0)));
        assert_eq!(p[0].speed_kmh, None);
        assert_eq!(p[0].utc.as_deref(), Some("2025-01-01T00:00:01.5Z"));
        assert_eq!(attr(&out.readings[0], "mode"), Some("D"));
    }

    #[test]
    fn no_fix_is_reported_once_per_loss() {
        let mut input = rmc(time(1, 0, 0), None, None);
        input.extend(gga(time(1, 0, 0), None, None));
        input.extend(rmc(time(1, 0, 1), None, None));
        input.extend(rmc(time(1, 0, 2), Some(22.5), Some(114.0)));
        input.extend(gga(time(1, 0, 3), None, None));
        let out = feed_split::<Nmea0183>(&[], &input);
        let kinds: Vec<&str> = out.readings.iter().map(|r| r.value.kind()).collect();
        assert_eq!(kinds, ["status", "position", "status"]);
        match &out.readings[0].value {
            ReadingValue::Status(s) => {
                assert_eq!(s.level, StatusLevel::Warning);
                assert_eq!(s.code, "no-fix");
                assert_eq!(s.message, "GNRMC: the receiver has no position fix");
            }
            other => panic!("{other:?}"),
        }
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn status_v_and_mode_n_are_not_valid() {
        let input = wire::sentence("GPRMC,123519,V,4807.038,N,01131.000,E,0.0,,230394,,,N");
        let out = feed_split::<Nmea0183>(&[], &input);
        assert!(!positions(&out)[0].valid);
        let input = wire::sentence("GPGGA,123519,4807.038,N,01131.000,E,6,04,2.0,545.4,M,,M,,");
        let out = feed_split::<Nmea0183>(&[], &input);
        assert!(!positions(&out)[0].valid);
        assert_eq!(attr(&out.readings[0], "fix-quality"), Some("6 estimated"));
    }

    #[test]
    fn fixture_capture_decodes() {
        let capture = include_bytes!("../fixtures/gnss.nmea");
        assert!(capture.starts_with(EXAMPLE));
        let out = feed_split::<Nmea0183>(&[], capture);
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        let kinds: Vec<&str> = out.readings.iter().map(|r| r.value.kind()).collect();
        assert_eq!(
            kinds,
            [
                "position", "position", "status", "position", "position", "position", "position"
            ]
        );
        let p = positions(&out);
        assert_eq!(p[2].utc.as_deref(), Some("2024-03-15T02:15:01Z"));
        assert_eq!(p[3].utc.as_deref(), Some("2024-03-15T02:15:01Z"));
        assert!(p[2].valid && p[3].valid);
    }

    #[test]
    fn other_sentences_are_ignored_not_rejected() {
        let mut input =
            wire::sentence("GPGSV,2,1,08,01,40,083,46,02,17,308,41,12,07,344,39,14,22,228,45");
        input.extend(wire::sentence("GNVTG,,T,,M,0.214,N,0.396,K,A"));
        input.extend(wire::sentence("PUBX,00,021502.00,2234.87654,N"));
        input.extend(wire::sentence("GPTXT,01,01,02,ANTSTATUS=OK"));
        input.extend(EXAMPLE);
        let out = feed_split::<Nmea0183>(&[], &input);
        assert_eq!(out.readings.len(), 1);
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn garbage_and_bad_checksums_are_rejected() {
        let mut input = b"\x00\xffjunk".to_vec();
        input.extend(EXAMPLE);
        input.extend(b"garbage between");
        let mut bad = EXAMPLE.to_vec();
        bad[10] = b'4'; // time 123419: checksum no longer matches
        input.extend(&bad);
        let mut broken = GGA.to_vec();
        broken.insert(20, 0x07); // a control byte inside a sentence
        input.extend(&broken);
        input.extend(b"$GPRMC,123519,A,4807.038,N"); // truncated, no end
        input.extend(GGA);
        let out = feed_split::<Nmea0183>(&[], &input);
        assert_eq!(positions(&out).len(), 2);
        let reasons: Vec<&str> = out.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert!(
            reasons.contains(&"checksum 6B computed, sentence says 6A"),
            "{reasons:?}"
        );
        assert!(reasons.iter().any(|r| r.contains("noise")), "{reasons:?}");
        let mut d = open::<Nmea0183>(&[]).unwrap();
        let whole = d.feed(&input);
        let dropped: usize = whole.rejected.iter().map(|r| r.bytes as usize).sum();
        assert_eq!(
            dropped + EXAMPLE.len() + GGA.len() + d.drain().len(),
            input.len()
        );
    }

    #[test]
    fn well_formed_but_nonsense_fields_are_rejected() {
        let cases = [
            (
                "GPRMC,123519,A,4867.038,N,01131.000,E,,,230394,,",
                "minutes",
            ),
            (
                "GPRMC,123519,A,9507.038,N,01131.000,E,,,230394,,",
                "beyond 90",
            ),
            (
                "GPRMC,123519,A,4807.038,X,01131.000,E,,,230394,,",
                "hemisphere",
            ),
            (
                "GPRMC,123519,A,4807.038,N,01131.000,E,,,231394,,",
                "month 13",
            ),
            ("GPRMC,123519,A,4807.038,N,01131.000,E,,,300294,,", "day 30"),
            ("GPRMC,126519,A,4807.038,N,01131.000,E,,,230394,,", "time"),
            ("GPRMC,123519,Q,4807.038,N,01131.000,E,,,230394,,", "status"),
            ("GPRMC,123519,A,4807.038,N", "fields"),
            (
                "GPGGA,123519,4807.038,N,01131.000,E,x,08,0.9,545.4,M,46.9,M,,",
                "quality",
            ),
        ];
        for (body, needle) in cases {
            let out = feed_split::<Nmea0183>(&[], &wire::sentence(body));
            assert!(out.readings.is_empty(), "{body}");
            assert_eq!(out.rejected.len(), 1, "{body}");
            assert!(
                out.rejected[0].reason.contains(needle),
                "{body}: {:?}",
                out.rejected
            );
        }
        // An unselected type is not judged.
        let out = feed_split::<Nmea0183>(
            &[("sentences", "GGA")],
            &wire::sentence("GPRMC,123519,A,4867.038,N,01131.000,E,,,230394,,"),
        );
        assert!(out.rejected.is_empty() && out.readings.is_empty());
    }

    #[test]
    fn drain_returns_partial_sentence() {
        let mut d = open::<Nmea0183>(&[]).unwrap();
        assert!(d.feed(&EXAMPLE[..30]).readings.is_empty());
        assert_eq!(d.drain(), EXAMPLE[..30].to_vec());
    }

    #[test]
    fn bad_settings_are_refused() {
        let err = |s: &[(&str, &str)]| open::<Nmea0183>(s).err().unwrap();
        assert!(err(&[("sentences", "RMC,VTG")]).contains("`sentences`"));
        assert!(err(&[("sentences", " , ")]).contains("`sentences`"));
        assert!(err(&[("baud", "4800")]).contains("unknown setting `baud`"));
        assert!(open::<Nmea0183>(&[("sentences", " rmc ")]).is_ok());
    }
}
