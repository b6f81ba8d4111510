//! Jointech JT701 GPS e-seal (electronic padlock): the `P45` text report.
//!
//! Text reports are ASCII between parentheses, fields separated by commas:
//!
//! ```text
//! (id,P45,ddmmyy,hhmmss,lat,N|S,lon,E|W,A|V,speed,course,event source,unlock verification,
//!  rfid,password verification,wrong password count,index[,more…])
//! ```
//!
//! e.g. `(8000632862,P45,290322,132412,25.28217,S,57.54683,W,A,0,0,5,0,0000000000,0,0,9,0)`.
//! Coordinates are decimal degrees with a hemisphere letter; date and time are UTC; `rfid` is
//! the 10-digit card number (`0000000000` when no card was involved); `index` is the report's
//! serial number, which the platform acknowledges with `(P69,0,index)`. This layout follows
//! the field names used by public JT701 decoders; the vendor's own table of event-source
//! values is not public, so the builder takes the numbers as they are.

/// The fields of a P45 report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct P45 {
    /// Device id (10 digits on real devices).
    pub id: String,
    /// Year (two digits are sent).
    pub year: u16,
    /// Month, 1 to 12.
    pub month: u8,
    /// Day, 1 to 31.
    pub day: u8,
    /// Hour, 0 to 23.
    pub hour: u8,
    /// Minute.
    pub minute: u8,
    /// Second.
    pub second: u8,
    /// Degrees, positive north.
    pub lat: f64,
    /// Degrees, positive east.
    pub lon: f64,
    /// Decimal places sent for lat/lon (5 or 6 on real devices).
    pub decimals: u8,
    /// GPS fix valid (`A`) or not (`V`).
    pub valid: bool,
    /// Speed as the device sends it (an integer).
    pub speed: u32,
    /// Course in degrees.
    pub course: u32,
    /// Event source code.
    pub event_source: u32,
    /// Unlock verification code.
    pub unlock_verification: u32,
    /// RFID card number, 10 digits, `0000000000` for none.
    pub rfid: String,
    /// Password verification code.
    pub password_verification: u32,
    /// Wrong password count.
    pub wrong_passwords: u32,
    /// Report serial number.
    pub index: u32,
    /// Fields sent after the index, as text.
    pub extra: Vec<String>,
}

/// The text of a P45 report, parentheses included.
pub fn p45(r: &P45) -> Vec<u8> {
    let d = usize::from(r.decimals);
    let mut text = format!(
        "({},P45,{:02}{:02}{:02},{:02}{:02}{:02},{:.d$},{},{:.d$},{},{},{},{},{},{},{},{},{},{}",
        r.id,
        r.day,
        r.month,
        r.year % 100,
        r.hour,
        r.minute,
        r.second,
        r.lat.abs(),
        if r.lat < 0.0 { 'S' } else { 'N' },
        r.lon.abs(),
        if r.lon < 0.0 { 'W' } else { 'E' },
        if r.valid { 'A' } else { 'V' },
        r.speed,
        r.course,
        r.event_source,
        r.unlock_verification,
        r.rfid,
        r.password_verification,
        r.wrong_passwords,
        r.index,
    );
    for field in &r.extra {
        text.push(',');
        text.push_str(field);
    }
    text.push(')');
    text.into_bytes()
}

/// The platform's acknowledgement of report `index`: `(P69,0,index)`. Not sent by the device;
/// drivers that answer the seal send exactly this.
pub fn p69_ack(index: u32) -> Vec<u8> {
    format!("(P69,0,{index})").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public example report.
    fn example() -> P45 {
        P45 {
            id: "8000632862".into(),
            year: 2022,
            month: 3,
            day: 29,
            hour: 13,
            minute: 24,
            second: 12,
            lat: -25.28217,
            lon: -57.54683,
            decimals: 5,
            valid: true,
            speed: 0,
            course: 0,
            event_source: 5,
            unlock_verification: 0,
            rfid: "0000000000".into(),
            password_verification: 0,
            wrong_passwords: 0,
            index: 9,
            extra: vec!["0".into()],
        }
    }

    #[test]
    fn documented_example() {
        assert_eq!(
            p45(&example()),
            b"(8000632862,P45,290322,132412,25.28217,S,57.54683,W,A,0,0,5,0,0000000000,0,0,9,0)"
        );
    }

    #[test]
    fn card_unlock_example() {
        let r = P45 {
            id: "2050018634".into(),
            year: 2024,
            month: 11,
            day: 5,
            hour: 20,
            minute: 40,
            second: 46,
            lat: 9.861502,
            lon: -83.950336,
            decimals: 6,
            valid: true,
            speed: 1,
            course: 0,
            event_source: 1,
            unlock_verification: 1,
            rfid: "0012260888".into(),
            password_verification: 0,
            wrong_passwords: 0,
            index: 0,
            extra: vec![],
        };
        assert_eq!(
            p45(&r),
            b"(2050018634,P45,051124,204046,9.861502,N,83.950336,W,A,1,0,1,1,0012260888,0,0,0)"
        );
    }

    #[test]
    fn ack() {
        assert_eq!(p69_ack(9), b"(P69,0,9)");
    }
}
