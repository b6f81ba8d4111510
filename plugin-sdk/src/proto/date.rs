//! Proleptic Gregorian calendar dates as day counts since 1970-01-01 (H. Hinnant's
//! algorithms): devices send dates (NMEA `ddmmyy`), people type them, logs print them.

/// Days since 1970-01-01 of a date (month 1–12, day 1–31; not checked).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month 1–12, day 1–31) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Days since 1970-01-01 of a date that exists (no 30 February, no month 13), else `None`.
pub fn checked_days(year: i64, month: i64, day: i64) -> Option<i64> {
    if !(1..=12).contains(&month) || day < 1 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    (civil_from_days(days) == (year, month, day)).then_some(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_dates_that_do_not_exist() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(20_784), (2026, 11, 27));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(
            checked_days(2024, 2, 29),
            Some(days_from_civil(2024, 2, 28) + 1)
        );
        assert_eq!(checked_days(2023, 2, 29), None);
        assert_eq!(checked_days(2026, 13, 1), None);
        for d in [-800_000, -1, 0, 59, 11_016, 20_784, 2_932_896] {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(checked_days(y, m, day), Some(d));
        }
    }
}
