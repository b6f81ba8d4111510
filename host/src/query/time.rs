//! Times at the edge: unix ms inside, dates, RFC 3339 times and UTC offsets outside.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::QueryError;

const MS_PER_DAY: i64 = 86_400_000;

/// A fixed offset from UTC, whole minutes east (China: `+08:00`). Days in statistics and
/// dates given without an offset are taken in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct UtcOffset {
    minutes: i32,
}

impl UtcOffset {
    /// UTC itself.
    pub const UTC: UtcOffset = UtcOffset { minutes: 0 };

    /// An offset of `minutes` east of UTC, within ±18 hours.
    pub fn from_minutes(minutes: i32) -> Result<UtcOffset, QueryError> {
        if minutes.abs() > 18 * 60 {
            return Err(QueryError::BadOffset {
                given: format!("{minutes} minutes"),
            });
        }
        Ok(UtcOffset { minutes })
    }

    /// Minutes east of UTC.
    pub fn minutes(self) -> i32 {
        self.minutes
    }

    fn ms(self) -> i64 {
        i64::from(self.minutes) * 60_000
    }

    /// Reads `Z`, `UTC`, `+08:00`, `+0800` or `+08`.
    pub fn parse(text: &str) -> Result<UtcOffset, QueryError> {
        let bad = || QueryError::BadOffset {
            given: text.to_owned(),
        };
        let t = text.trim();
        if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
            return Ok(UtcOffset::UTC);
        }
        let (sign, rest) = match t.as_bytes().first() {
            Some(b'+') => (1, &t[1..]),
            Some(b'-') => (-1, &t[1..]),
            _ => return Err(bad()),
        };
        let (h, m) = match rest.len() {
            2 => (rest, "00"),
            4 => rest.split_at(2),
            5 if rest.as_bytes()[2] == b':' => (&rest[..2], &rest[3..]),
            _ => return Err(bad()),
        };
        let h = digits(h).ok_or_else(bad)?;
        let m = digits(m).ok_or_else(bad)?;
        if m >= 60 {
            return Err(bad());
        }
        UtcOffset::from_minutes(sign * (h * 60 + m) as i32).map_err(|_| bad())
    }
}

impl FromStr for UtcOffset {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UtcOffset::parse(s)
    }
}

impl fmt::Display for UtcOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.minutes < 0 { '-' } else { '+' };
        let m = self.minutes.abs();
        write!(f, "{sign}{:02}:{:02}", m / 60, m % 60)
    }
}

/// A span of passage start times: `from_ms` inclusive, `to_ms` exclusive; `None` is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimeRange {
    /// First unix ms included.
    pub from_ms: Option<i64>,
    /// First unix ms no longer included.
    pub to_ms: Option<i64>,
}

impl TimeRange {
    /// Every time.
    pub const ALL: TimeRange = TimeRange {
        from_ms: None,
        to_ms: None,
    };

    /// A range; refused when it is empty (`from_ms >= to_ms`).
    pub fn new(from_ms: Option<i64>, to_ms: Option<i64>) -> Result<TimeRange, QueryError> {
        if let (Some(from_ms), Some(to_ms)) = (from_ms, to_ms)
            && from_ms >= to_ms
        {
            return Err(QueryError::EmptyRange { from_ms, to_ms });
        }
        Ok(TimeRange { from_ms, to_ms })
    }

    /// `from_ms..to_ms`.
    pub fn between(from_ms: i64, to_ms: i64) -> Result<TimeRange, QueryError> {
        TimeRange::new(Some(from_ms), Some(to_ms))
    }

    /// Whether a passage that started at `ms` is in the range.
    pub fn contains(&self, ms: i64) -> bool {
        self.from_ms.is_none_or(|f| ms >= f) && self.to_ms.is_none_or(|t| ms < t)
    }

    /// The range as inclusive bounds, as the store's indexes take them; `None` when empty.
    pub(crate) fn inclusive(&self) -> Option<(i64, i64)> {
        let lo = self.from_ms.unwrap_or(i64::MIN);
        let hi = match self.to_ms {
            None => i64::MAX,
            Some(i64::MIN) => return None,
            Some(t) => t - 1,
        };
        (lo <= hi).then_some((lo, hi))
    }
}

/// A time as given on the command line, before a UTC offset is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    /// An instant: unix ms, or an RFC 3339 time with its offset.
    Instant(i64),
    /// A calendar date: its start (midnight) as a `from`, its end (next midnight) as a `to`.
    Date {
        /// Days since 1970-01-01.
        days: i64,
    },
    /// A date and time without an offset: taken in the UTC offset in force.
    Local {
        /// Days since 1970-01-01.
        days: i64,
        /// Milliseconds since midnight.
        ms_of_day: i64,
    },
}

impl TimeSpec {
    /// Reads `2026-11-27`, `2026-11-27T08:30:00+08:00` (also with `Z`, a space for `T`,
    /// fractions of a second, no seconds, or no offset) or unix milliseconds (at least 12
    /// digits, so that `20261127` is not taken for 1970).
    pub fn parse(text: &str) -> Result<TimeSpec, QueryError> {
        let t = text.trim();
        let bad = |reason: &str| QueryError::BadTime {
            given: text.to_owned(),
            reason: reason.to_owned(),
        };
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            if t.len() < 12 {
                return Err(bad("too few digits for unix milliseconds"));
            }
            return t
                .parse::<i64>()
                .map(TimeSpec::Instant)
                .map_err(|_| bad("out of range"));
        }
        if t.len() < 10 || !t.is_char_boundary(10) {
            return Err(bad("no YYYY-MM-DD date"));
        }
        let (date, rest) = t.split_at(10);
        let days = parse_date(date).ok_or_else(|| bad("no valid YYYY-MM-DD date"))?;
        if rest.is_empty() {
            return Ok(TimeSpec::Date { days });
        }
        let rest = rest
            .strip_prefix(['T', 't', ' '])
            .ok_or_else(|| bad("expected T between date and time"))?;
        // The time of day runs up to the offset, if any.
        let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
        let (clock, zone) = rest.split_at(zone_at);
        let ms_of_day = parse_clock(clock).ok_or_else(|| bad("no valid HH:MM[:SS[.fff]] time"))?;
        if zone.is_empty() {
            return Ok(TimeSpec::Local { days, ms_of_day });
        }
        let offset = UtcOffset::parse(zone).map_err(|_| bad("no valid offset after the time"))?;
        Ok(TimeSpec::Instant(
            days * MS_PER_DAY + ms_of_day - offset.ms(),
        ))
    }

    /// The instant as the start of a range: a date's midnight.
    pub fn start_ms(self, offset: UtcOffset) -> i64 {
        match self {
            TimeSpec::Instant(ms) => ms,
            TimeSpec::Date { days } => days * MS_PER_DAY - offset.ms(),
            TimeSpec::Local { days, ms_of_day } => days * MS_PER_DAY + ms_of_day - offset.ms(),
        }
    }

    /// The instant as the (exclusive) end of a range: a date's next midnight, so that
    /// `--to 2026-11-27` includes all of that day.
    pub fn end_ms(self, offset: UtcOffset) -> i64 {
        match self {
            TimeSpec::Date { days } => (days + 1) * MS_PER_DAY - offset.ms(),
            other => other.start_ms(offset),
        }
    }
}

impl FromStr for TimeSpec {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TimeSpec::parse(s)
    }
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(&s[..4])?, digits(&s[5..7])?, digits(&s[8..])?);
    kakou_plugin_sdk::proto::date::checked_days(y, m, d)
}

fn parse_clock(s: &str) -> Option<i64> {
    let (hms, frac) = match s.split_once(['.', ',']) {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (s, None),
    };
    let mut parts = hms.split(':');
    let h = parts.next().filter(|p| p.len() == 2).and_then(digits)?;
    let m = parts.next().filter(|p| p.len() == 2).and_then(digits)?;
    let sec = match parts.next() {
        Some(p) if p.len() == 2 => digits(p)?,
        Some(_) => return None,
        None if frac.is_some() => return None,
        None => 0,
    };
    if parts.next().is_some() || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let ms = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 => {
            let padded = format!("{f:0<3}");
            digits(&padded[..3])?
        }
        Some(_) => return None,
    };
    Some(((h * 60 + m) * 60 + sec.min(59)) * 1000 + ms)
}

/// `YYYY-MM-DD HH:MM:SS` of unix ms in an offset.
pub fn format_ms(ms: i64, offset: UtcOffset) -> String {
    let local = ms.saturating_add(offset.ms());
    let (y, m, d) = kakou_plugin_sdk::proto::date::civil_from_days(local.div_euclid(MS_PER_DAY));
    let s = local.rem_euclid(MS_PER_DAY) / 1000;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The calendar day (`YYYY-MM-DD`) of unix ms in an offset.
pub fn day_of(ms: i64, offset: UtcOffset) -> String {
    let local = ms.saturating_add(offset.ms());
    let (y, m, d) = kakou_plugin_sdk::proto::date::civil_from_days(local.div_euclid(MS_PER_DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 1_795_737_600_000; // 2026-11-27T00:00Z

    #[test]
    fn dates_and_times_read_in_every_form() {
        let utc = UtcOffset::UTC;
        let cst = UtcOffset::parse("+08:00").unwrap();
        let d = TimeSpec::parse("2026-11-27").unwrap();
        assert_eq!(d.start_ms(utc), DAY);
        assert_eq!(d.end_ms(utc), DAY + MS_PER_DAY);
        assert_eq!(d.start_ms(cst), DAY - 8 * 3_600_000);
        let cases = [
            ("2026-11-27T08:30:00Z", DAY + 30_600_000),
            ("2026-11-27t08:30:00z", DAY + 30_600_000),
            ("2026-11-27T08:30:00+08:00", DAY + 1_800_000),
            ("2026-11-27 08:30:00.250-01:00", DAY + 34_200_250),
            ("2026-11-27T08:30Z", DAY + 30_600_000),
            ("1795737600000", DAY),
        ];
        for (text, ms) in cases {
            assert_eq!(TimeSpec::parse(text).unwrap().start_ms(cst), ms, "{text}");
        }
        let local = TimeSpec::parse("2026-11-27T08:30:00").unwrap();
        assert_eq!(local.start_ms(utc), DAY + 30_600_000);
        assert_eq!(local.start_ms(cst), DAY + 1_800_000);
        assert_eq!(local.end_ms(cst), DAY + 1_800_000);
        for bad in [
            "",
            "20261127",
            "2026-13-01",
            "2026-02-29",
            "2026-11-27T25:00",
            "2026-11-27X08:00",
            "2026-11-27T08:00+8",
            "yesterday",
            "2026-11-2",
        ] {
            let e = TimeSpec::parse(bad).unwrap_err().to_string();
            assert!(e.contains("expected a date (2026-11-27)"), "{bad}: {e}");
        }
    }

    #[test]
    fn offsets_and_formatting() {
        assert_eq!(UtcOffset::parse("Z").unwrap(), UtcOffset::UTC);
        assert_eq!(UtcOffset::parse("+0800").unwrap().minutes(), 480);
        assert_eq!(UtcOffset::parse("-05:30").unwrap().minutes(), -330);
        assert_eq!(UtcOffset::parse("+08").unwrap().to_string(), "+08:00");
        for bad in ["8", "+19:00", "+08:60", "GMT"] {
            assert!(UtcOffset::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            format_ms(DAY + 3_723_000, UtcOffset::UTC),
            "2026-11-27 01:02:03"
        );
        let west = UtcOffset::parse("-09:00").unwrap();
        assert_eq!(format_ms(DAY + 3_723_000, west), "2026-11-26 16:02:03");
        assert_eq!(day_of(DAY + 3_723_000, west), "2026-11-26");
        assert_eq!(day_of(-1, UtcOffset::UTC), "1969-12-31");
    }

    #[test]
    fn ranges_include_from_and_exclude_to() {
        let r = TimeRange::between(10, 20).unwrap();
        assert!(r.contains(10) && r.contains(19) && !r.contains(20) && !r.contains(9));
        assert_eq!(r.inclusive(), Some((10, 19)));
        assert_eq!(TimeRange::ALL.inclusive(), Some((i64::MIN, i64::MAX)));
        assert!(matches!(
            TimeRange::between(20, 20),
            Err(QueryError::EmptyRange { .. })
        ));
    }
}
