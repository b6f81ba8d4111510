//! Yaohua XK3190-A12 weighing indicators: the continuous output line.
//!
//! 15 bytes: `W`, `G` (gross) or `N` (net), the weight in 7 characters with its decimal point
//! (zero padded, `-` first when negative), the unit `kg`, the XOR of bytes 1 to 11 (`W` through
//! the unit) as two upper-case ASCII hex digits, CR LF. Example: `WG004.139kg3D\r\n`. Over
//! range the indicator sends nine spaces and `OL` in place of `W`, kind, weight and unit:
//! `         OL23\r\n`.

use crate::proto::checksum;

/// Width of the weight field, decimal point and sign included.
pub const WEIGHT_WIDTH: usize = 7;

/// The 11 bytes the indicator sends over range (before the XOR and CR LF).
pub const OVERLOAD_BODY: &[u8; 11] = b"         OL";

/// A whole line from its first 11 bytes: appends the XOR of `body` as two upper-case hex
/// digits and CR LF. Use it for bodies [`weight_line`] does not make (another unit, a
/// damaged field).
pub fn line(body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    out.extend_from_slice(&checksum::hex_upper(checksum::xor(body)));
    out.extend_from_slice(b"\r\n");
    out
}

/// The weight field for `value` shown with `decimals` (0 to 5) decimal places: 7 characters,
/// zero padded after the sign, rounded to the display resolution and clamped to what fits.
/// `weight_field(4.139, 3)` is `004.139`; with no decimals there is no point (`0003260`).
pub fn weight_field(value: f64, decimals: u8) -> String {
    let decimals = usize::from(decimals.min(5));
    let point = usize::from(decimals > 0);
    let digits = WEIGHT_WIDTH - point - usize::from(value < 0.0);
    let max = 10f64.powi(digits as i32) - 1.0;
    let scaled = (value.abs() * 10f64.powi(decimals as i32)).round().min(max) as u64;
    let mut text = format!("{scaled:0digits$}");
    if decimals > 0 {
        text.insert(text.len() - decimals, '.');
    }
    if value < 0.0 {
        text.insert(0, '-');
    }
    text
}

/// A weight line: `value` in the unit the display shows (`kg` on the wire), `decimals` decimal
/// places, gross or net. `weight_line(4.139, 3, false)` is `WG004.139kg3D\r\n`.
pub fn weight_line(value: f64, decimals: u8, net: bool) -> Vec<u8> {
    weight_line_in(value, decimals, net, *b"kg")
}

/// A weight line with another two-character unit field (`lb` on some models).
pub fn weight_line_in(value: f64, decimals: u8, net: bool, unit: [u8; 2]) -> Vec<u8> {
    let mut body = vec![b'W', if net { b'N' } else { b'G' }];
    body.extend_from_slice(weight_field(value, decimals).as_bytes());
    body.extend_from_slice(&unit);
    line(&body)
}

/// The over-range line `         OL23\r\n`.
pub fn overload_line() -> Vec<u8> {
    line(OVERLOAD_BODY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example() {
        assert_eq!(weight_line(4.139, 3, false), b"WG004.139kg3D\r\n");
    }

    #[test]
    fn documented_overload() {
        assert_eq!(overload_line(), b"         OL23\r\n");
        assert_eq!(overload_line().len(), 15);
    }

    #[test]
    fn net_negative_and_integer_fields() {
        assert_eq!(weight_field(-0.1, 1), "-0000.1");
        assert_eq!(weight_field(3260.0, 0), "0003260");
        assert_eq!(weight_field(12345678.0, 0), "9999999");
        assert_eq!(weight_field(25.18, 2), "0025.18");
        let l = weight_line(25.18, 2, true);
        assert_eq!(&l[..11], b"WN0025.18kg");
        assert_eq!(l.len(), 15);
        assert_eq!(
            checksum::parse_hex_pair(l[11], l[12]),
            Some(checksum::xor(&l[..11]))
        );
        assert_eq!(&weight_line_in(1.0, 3, false, *b"lb")[..11], b"WG001.000lb");
    }
}
