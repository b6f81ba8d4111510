//! XK3190 weighing indicators: the "tF=0" continuous output frame.
//!
//! `STX(02) sign(+/-) 6 digits decimals('0'..'4') XORhi XORlo ETX(03)`; the XOR covers sign,
//! digits and decimals and is sent as two upper-case ASCII hex digits.

use crate::proto::checksum;

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
}
