//! NMEA 0183 GPS receivers: RMC and GGA sentences.
//!
//! A sentence is `$` + address (2-letter talker such as `GP`, `GN`, `BD`, `GL`, then the
//! 3-letter type) + comma-separated fields + `*` + checksum + `\r\n`; the checksum is the XOR of
//! every character between `$` and `*`, sent as two upper-case hex digits. Latitude is
//! `ddmm.mmm` with `N`/`S`, longitude `dddmm.mmm` with `E`/`W`; times are UTC `hhmmss`, dates
//! `ddmmyy`.
//!
//! - RMC: `$GPRMC,time,status(A|V),lat,N|S,lon,E|W,speed(knots),course,date,magvar,E|W*hh`,
//!   e.g. `$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A`.
//! - GGA: `$GPGGA,time,lat,N|S,lon,E|W,quality,satellites,hdop,altitude,M,geoid,M,age,station*hh`,
//!   e.g. `$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47`.

use crate::proto::checksum;

/// A UTC time stamp as NMEA sends it (RMC carries the date, GGA only the time of day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UtcTime {
    /// Four-digit year; sent as two digits.
    pub year: u16,
    /// Month, 1 to 12.
    pub month: u8,
    /// Day of the month, 1 to 31.
    pub day: u8,
    /// Hour, 0 to 23.
    pub hour: u8,
    /// Minute, 0 to 59.
    pub minute: u8,
    /// Second, 0 to 59.
    pub second: u8,
    /// Hundredths of a second, sent as `.cc` when present.
    pub centis: Option<u8>,
}

impl UtcTime {
    /// `hhmmss` or `hhmmss.cc`.
    fn time_field(&self) -> String {
        let mut t = format!("{:02}{:02}{:02}", self.hour, self.minute, self.second);
        if let Some(c) = self.centis {
            t.push_str(&format!(".{c:02}"));
        }
        t
    }

    /// `ddmmyy`.
    fn date_field(&self) -> String {
        format!("{:02}{:02}{:02}", self.day, self.month, self.year % 100)
    }
}

/// What an RMC sentence says.
#[derive(Debug, Clone, PartialEq)]
pub struct Rmc {
    /// Talker id, e.g. "GP", "GN", "BD".
    pub talker: String,
    /// Date and time of the fix.
    pub time: UtcTime,
    /// Status `A` (valid) or `V` (warning).
    pub valid: bool,
    /// Degrees, positive north; `None` sends empty position fields (no fix).
    pub lat: Option<f64>,
    /// Degrees, positive east.
    pub lon: Option<f64>,
    /// Speed over ground in knots.
    pub speed_knots: Option<f64>,
    /// Course over ground in degrees.
    pub course_deg: Option<f64>,
    /// Magnetic variation in degrees, positive east.
    pub magnetic_variation_deg: Option<f64>,
    /// Decimal places of the minutes in lat/lon (3 in the classic example, 4 or 5 today).
    pub minute_decimals: u8,
}

/// What a GGA sentence says.
#[derive(Debug, Clone, PartialEq)]
pub struct Gga {
    /// Talker id.
    pub talker: String,
    /// Time of the fix (the date part is not sent).
    pub time: UtcTime,
    /// Degrees, positive north; `None` sends empty position fields (no fix).
    pub lat: Option<f64>,
    /// Degrees, positive east.
    pub lon: Option<f64>,
    /// Fix quality: 0 invalid, 1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, 6 estimated.
    pub quality: u8,
    /// Satellites in use.
    pub satellites: u8,
    /// Horizontal dilution of precision.
    pub hdop: Option<f64>,
    /// Antenna altitude above mean sea level, metres.
    pub altitude_m: Option<f64>,
    /// Geoid separation, metres.
    pub geoid_separation_m: Option<f64>,
    /// Decimal places of the minutes in lat/lon.
    pub minute_decimals: u8,
}

/// Wraps a sentence body (`GPRMC,...`, without `$` and `*`) into `$body*HH\r\n`.
pub fn sentence(body: &str) -> Vec<u8> {
    let hh = checksum::hex_upper(checksum::nmea(body.as_bytes()));
    let mut out = Vec::with_capacity(body.len() + 6);
    out.push(b'$');
    out.extend_from_slice(body.as_bytes());
    out.push(b'*');
    out.extend_from_slice(&hh);
    out.extend_from_slice(b"\r\n");
    out
}

/// `ddmm.mmm,N` (`deg_digits` 2) or `dddmm.mmm,E` (3); empty fields for `None`.
fn coordinate(value: Option<f64>, deg_digits: usize, decimals: u8, pos: char, neg: char) -> String {
    let Some(v) = value else {
        return ",".to_string();
    };
    let scale = 10u64.pow(u32::from(decimals));
    // Whole coordinate in units of 10^-decimals minutes, so rounding can carry into degrees.
    let units = (v.abs() * 60.0 * scale as f64).round() as u64;
    let degrees = units / (60 * scale);
    let rest = units % (60 * scale);
    let (whole, frac) = (rest / scale, rest % scale);
    let hemisphere = if v < 0.0 { neg } else { pos };
    if decimals == 0 {
        format!("{degrees:0deg_digits$}{whole:02},{hemisphere}")
    } else {
        let d = usize::from(decimals);
        format!("{degrees:0deg_digits$}{whole:02}.{frac:0d$},{hemisphere}")
    }
}

/// `ddd.d` with at least three integer digits, as the classic RMC example sends speed and
/// course; empty for `None`.
fn padded_tenths(value: Option<f64>) -> String {
    value.map_or_else(String::new, |v| format!("{v:05.1}"))
}

fn tenths(value: Option<f64>) -> String {
    value.map_or_else(String::new, |v| format!("{v:.1}"))
}

/// The RMC sentence for `fix`, checksum and `\r\n` included.
pub fn rmc(fix: &Rmc) -> Vec<u8> {
    let magvar = match fix.magnetic_variation_deg {
        None => ",".to_string(),
        Some(v) => format!("{:05.1},{}", v.abs(), if v < 0.0 { 'W' } else { 'E' }),
    };
    let body = format!(
        "{}RMC,{},{},{},{},{},{},{},{}",
        fix.talker,
        fix.time.time_field(),
        if fix.valid { 'A' } else { 'V' },
        coordinate(fix.lat, 2, fix.minute_decimals, 'N', 'S'),
        coordinate(fix.lon, 3, fix.minute_decimals, 'E', 'W'),
        padded_tenths(fix.speed_knots),
        padded_tenths(fix.course_deg),
        fix.time.date_field(),
        magvar,
    );
    sentence(&body)
}

/// The GGA sentence for `fix`, checksum and `\r\n` included (age and station left empty).
pub fn gga(fix: &Gga) -> Vec<u8> {
    let body = format!(
        "{}GGA,{},{},{},{},{:02},{},{},M,{},M,,",
        fix.talker,
        fix.time.time_field(),
        coordinate(fix.lat, 2, fix.minute_decimals, 'N', 'S'),
        coordinate(fix.lon, 3, fix.minute_decimals, 'E', 'W'),
        fix.quality,
        fix.satellites,
        tenths(fix.hdop),
        tenths(fix.altitude_m),
        tenths(fix.geoid_separation_m),
    );
    sentence(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_time() -> UtcTime {
        UtcTime {
            year: 1994,
            month: 3,
            day: 23,
            hour: 12,
            minute: 35,
            second: 19,
            centis: None,
        }
    }

    fn example_rmc() -> Rmc {
        Rmc {
            talker: "GP".into(),
            time: example_time(),
            valid: true,
            lat: Some(48.0 + 7.038 / 60.0),
            lon: Some(11.0 + 31.0 / 60.0),
            speed_knots: Some(22.4),
            course_deg: Some(84.4),
            magnetic_variation_deg: Some(-3.1),
            minute_decimals: 3,
        }
    }

    #[test]
    fn documented_rmc() {
        assert_eq!(
            rmc(&example_rmc()),
            b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n"
        );
    }

    #[test]
    fn classic_gga() {
        let fix = Gga {
            talker: "GP".into(),
            time: example_time(),
            lat: Some(48.0 + 7.038 / 60.0),
            lon: Some(11.0 + 31.0 / 60.0),
            quality: 1,
            satellites: 8,
            hdop: Some(0.9),
            altitude_m: Some(545.4),
            geoid_separation_m: Some(46.9),
            minute_decimals: 3,
        };
        assert_eq!(
            gga(&fix),
            b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"
        );
    }

    #[test]
    fn southern_western_no_fix_and_rounding() {
        let mut fix = example_rmc();
        fix.talker = "GN".into();
        fix.lat = Some(-(33.0 + 59.999_99 / 60.0));
        fix.lon = Some(-70.5);
        fix.minute_decimals = 4;
        fix.magnetic_variation_deg = None;
        let s = String::from_utf8(rmc(&fix)).unwrap();
        // 59.99999' rounds up into the next degree.
        assert!(
            s.starts_with("$GNRMC,123519,A,3400.0000,S,07030.0000,W,"),
            "{s}"
        );
        assert!(s.contains(",230394,,*"), "{s}");
        assert!(checksum::nmea_sentence_ok(s.as_bytes()));

        fix.lat = None;
        fix.lon = None;
        fix.valid = false;
        fix.speed_knots = None;
        fix.course_deg = None;
        let s = String::from_utf8(rmc(&fix)).unwrap();
        assert!(s.starts_with("$GNRMC,123519,V,,,,,,,230394,,*"), "{s}");
    }

    #[test]
    fn centiseconds() {
        let mut fix = example_rmc();
        fix.time.centis = Some(5);
        let s = String::from_utf8(rmc(&fix)).unwrap();
        assert!(s.starts_with("$GPRMC,123519.05,A,"), "{s}");
    }
}
