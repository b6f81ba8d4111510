//! XK3190 weighing indicators: the "tF=0" continuous output frame and the "=" format.
//!
//! tF=0: `STX(02) sign(+/-) 6 digits decimals('0'..'4') XORhi XORlo ETX(03)`; the XOR covers
//! sign, digits and decimals and is sent as two upper-case ASCII hex digits.
//!
//! "=" format (some XK3190 models and many clones): `=` followed by the display string
//! mirrored, character by character, with no checksum and no terminator; the next frame's `=`
//! ends a frame. A seven-digit display showing `0003.000` sends `=000.3000` (3.000); a
//! six-digit display showing `0086.0` sends `=0.6800` (`=` + 7 characters with the decimal
//! point). A negative weight shows `-` in the display's leftmost position, so it is the last
//! character before the next `=`.

use crate::proto::checksum;

/// Display digits [`eq_frame`] mirrors (the documented example `=000.3000` shows seven).
pub const EQ_DIGITS: usize = 7;

/// A tF=0 frame for `kg` shown with `decimals` (0 to 4) decimal places. Values are rounded to
/// the display resolution and clamped to six digits.
pub fn tf0_frame(kg: f64, decimals: u8) -> Vec<u8> {
    let decimals = decimals.min(4);
    let scaled = (kg.abs() * 10f64.powi(i32::from(decimals)))
        .round()
        .min(999_999.0) as u32;
    let mut body = vec![if kg < 0.0 { b'-' } else { b'+' }];
    body.extend_from_slice(format!("{scaled:06}").as_bytes());
    body.push(b'0' + decimals);
    let x = checksum::hex_upper(checksum::xor(&body));
    let mut frame = Vec::with_capacity(12);
    frame.push(0x02);
    frame.extend_from_slice(&body);
    frame.extend_from_slice(&x);
    frame.push(0x03);
    frame
}

/// The text a `digits`-digit display shows for `kg` with `decimals` decimal places: zero
/// padded, a `.` before the decimals, `-` in the leftmost digit position when negative.
/// `digits` is at least 1 and `decimals` at most 4 and below `digits`; the value is rounded to
/// the display resolution and clamped to what fits.
pub fn eq_display(kg: f64, decimals: u8, digits: usize) -> String {
    let digits = digits.clamp(1, 12);
    let decimals = usize::from(decimals.min(4)).min(digits - 1);
    let negative = kg < 0.0 && digits > 1;
    let width = if negative { digits - 1 } else { digits };
    let max = 10f64.powi(width as i32) - 1.0;
    let scaled = (kg.abs() * 10f64.powi(decimals as i32)).round().min(max) as u64;
    let mut text = format!("{scaled:0width$}");
    if decimals > 0 {
        text.insert(text.len() - decimals, '.');
    }
    if negative {
        text.insert(0, '-');
    }
    text
}

/// An "=" format frame for `kg` with `decimals` (0 to 4) decimal places on a seven-digit
/// display ([`EQ_DIGITS`]): `=` and the display text mirrored. `eq_frame(3.0, 3)` is
/// `=000.3000`.
pub fn eq_frame(kg: f64, decimals: u8) -> Vec<u8> {
    eq_frame_digits(kg, decimals, EQ_DIGITS)
}

/// An "=" format frame for a display with `digits` digits (six on most XK3190 models:
/// `eq_frame_digits(86.0, 1, 6)` is `=0.68000`). See [`eq_display`] for rounding and sign.
pub fn eq_frame_digits(kg: f64, decimals: u8, digits: usize) -> Vec<u8> {
    let mut frame = vec![b'='];
    frame.extend(eq_display(kg, decimals, digits).bytes().rev());
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example() {
        assert_eq!(
            tf0_frame(3260.0, 0),
            [
                0x02, 0x2B, 0x30, 0x30, 0x33, 0x32, 0x36, 0x30, 0x30, 0x31, 0x43, 0x03
            ]
        );
    }

    #[test]
    fn decimals_and_sign() {
        assert_eq!(&tf0_frame(-12.5, 2)[1..9], b"-0012502");
    }

    #[test]
    fn eq_documented_example() {
        assert_eq!(eq_display(3.0, 3, 7), "0003.000");
        assert_eq!(eq_frame(3.0, 3), b"=000.3000");
    }

    #[test]
    fn eq_six_digit_display_and_integers() {
        assert_eq!(eq_frame_digits(86.0, 1, 6), b"=0.68000");
        assert_eq!(eq_frame(3260.0, 0), b"=0623000");
        assert_eq!(eq_frame_digits(3260.0, 0, 6), b"=062300");
    }

    #[test]
    fn eq_sign_rounding_and_clamping() {
        assert_eq!(eq_display(-12.5, 2, 7), "-0012.50");
        assert_eq!(eq_frame(-12.5, 2), b"=05.2100-");
        assert_eq!(eq_display(1.23456, 2, 7), "00001.23");
        assert_eq!(eq_display(123_456_789.0, 0, 7), "9999999");
        assert_eq!(eq_display(5.0, 9, 3), "5.00");
    }
}
