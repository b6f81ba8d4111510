//! Mettler Toledo standard continuous output.
//!
//! 18 bytes: `STX(02) SWA SWB SWC weight(6) tare(6) CR(0D) checksum`, all 7-bit ASCII. The
//! checksum makes the sum of all 18 bytes ≡ 0 mod 128; indicators can be set not to send it
//! (17 bytes). Weight and tare are six digits without sign or point (leading zeros may be sent
//! as spaces).
//!
//! - SWA: bits 0–2 decimal position, as a code: 0 `XXXX00`, 1 `XXXXX0`, 2 `XXXXXX`,
//!   3 `XXXXX.X`, 4 `XXXX.XX`, 5 `XXX.XXX`, 6 `XX.XXXX`, 7 `X.XXXXX` (value = digits ×
//!   10^(2 − code)); bits 3–4 increment size (01 ×1, 10 ×2, 11 ×5); bit 5 always 1.
//! - SWB: bit 0 net, bit 1 negative, bit 2 out of range, bit 3 in motion, bit 4 kg (else lb),
//!   bit 5 always 1, bit 6 "power-up not zeroed" on some indicators.
//! - SWC: bit 0 grams (overrides SWB bit 4), bit 3 print request, bit 4 expanded display,
//!   bit 5 always 1.
//!
//! The line is usually 7E1; [`even_parity`] sets bit 7 the way an 8-bit port sees it.
//!
//! Example: `02 2C 70 60 30 30 30 35 36 37 30 30 30 30 30 30 0D 23` is 5.67 kg, stable.
//! [`Output`] sets bits 5 and 6 of SWB and SWC as that capture does.

use crate::proto::checksum;

/// Unit the indicator shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unit {
    /// Kilograms (SWB bit 4).
    #[default]
    Kg,
    /// Pounds (SWB bit 4 clear).
    Lb,
    /// Grams (SWC bit 0).
    G,
}

/// What one continuous-output frame says.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Displayed weight in `unit`, signed.
    pub weight: f64,
    /// Tare in `unit` (sent without sign).
    pub tare: f64,
    /// Decimal places, -2 to 5: -2 and -1 are the dummy-zero codes `XXXX00` and `XXXXX0`.
    pub decimals: i8,
    /// Increment size: 1, 2 or 5 (other values are sent as 1).
    pub increment: u8,
    /// Net weight (tare taken off).
    pub net: bool,
    /// Scale in motion.
    pub motion: bool,
    /// Over or under range.
    pub out_of_range: bool,
    /// Unit shown.
    pub unit: Unit,
    /// Print requested at the indicator.
    pub print_request: bool,
    /// Leading zeros of weight and tare sent as spaces.
    pub blank_leading_zeros: bool,
}

impl Default for Output {
    fn default() -> Self {
        Output {
            weight: 0.0,
            tare: 0.0,
            decimals: 0,
            increment: 1,
            net: false,
            motion: false,
            out_of_range: false,
            unit: Unit::Kg,
            print_request: false,
            blank_leading_zeros: false,
        }
    }
}

/// Six digits for `value` at `decimals`, rounded and clamped; leading zeros blanked on request.
fn field(value: f64, decimals: i8, blank: bool) -> [u8; 6] {
    let scaled = (value.abs() * 10f64.powi(i32::from(decimals)))
        .round()
        .min(999_999.0) as u32;
    let text = format!("{scaled:06}");
    let mut out = [b'0'; 6];
    out.copy_from_slice(text.as_bytes());
    if blank {
        for b in out.iter_mut().take(5) {
            if *b != b'0' {
                break;
            }
            *b = b' ';
        }
    }
    out
}

/// The status words A, B, C for `o`.
pub fn status_words(o: &Output) -> [u8; 3] {
    let code = (o.decimals.clamp(-2, 5) + 2) as u8;
    let increment = match o.increment {
        2 => 0b10,
        5 => 0b11,
        _ => 0b01,
    };
    let swa = 0x20 | (increment << 3) | code;
    let mut swb = 0x60;
    if o.net {
        swb |= 0x01;
    }
    if o.weight < 0.0 {
        swb |= 0x02;
    }
    if o.out_of_range {
        swb |= 0x04;
    }
    if o.motion {
        swb |= 0x08;
    }
    if o.unit == Unit::Kg {
        swb |= 0x10;
    }
    let mut swc = 0x60;
    if o.unit == Unit::G {
        swc |= 0x01;
    }
    if o.print_request {
        swc |= 0x08;
    }
    [swa, swb, swc]
}

/// The 17 bytes `STX SWA SWB SWC weight tare CR`, for indicators set to send no checksum.
pub fn continuous_frame_without_checksum(o: &Output) -> Vec<u8> {
    let mut frame = vec![0x02];
    frame.extend_from_slice(&status_words(o));
    frame.extend_from_slice(&field(o.weight, o.decimals, o.blank_leading_zeros));
    frame.extend_from_slice(&field(o.tare, o.decimals, o.blank_leading_zeros));
    frame.push(0x0D);
    frame
}

/// The full 18-byte frame, checksum included.
pub fn continuous_frame(o: &Output) -> Vec<u8> {
    let mut frame = continuous_frame_without_checksum(o);
    frame.push(checksum::sum_mod128_complement(&frame));
    frame
}

/// The bytes as an 8-bit port receives a 7E1 line: bit 7 set where it makes a byte's count of
/// one bits even.
pub fn even_parity(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|b| {
            let b = b & 0x7F;
            if b.count_ones() % 2 == 1 { b | 0x80 } else { b }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: [u8; 18] = [
        0x02, 0x2C, 0x70, 0x60, 0x30, 0x30, 0x30, 0x35, 0x36, 0x37, 0x30, 0x30, 0x30, 0x30, 0x30,
        0x30, 0x0D, 0x23,
    ];

    #[test]
    fn documented_example() {
        let o = Output {
            weight: 5.67,
            decimals: 2,
            ..Output::default()
        };
        assert_eq!(continuous_frame(&o), EXAMPLE);
        assert_eq!(continuous_frame_without_checksum(&o), EXAMPLE[..17]);
        let sum: u32 = EXAMPLE.iter().map(|b| u32::from(*b)).sum();
        assert_eq!(sum % 128, 0);
    }

    #[test]
    fn status_bits() {
        let o = Output {
            weight: -1.5,
            tare: 2.0,
            decimals: 1,
            increment: 5,
            net: true,
            motion: true,
            out_of_range: true,
            unit: Unit::Lb,
            print_request: true,
            blank_leading_zeros: true,
        };
        assert_eq!(
            status_words(&o),
            [0x20 | 0x18 | 3, 0x60 | 0x0F, 0x60 | 0x08]
        );
        let f = continuous_frame(&o);
        assert_eq!(&f[4..16], b"    15    20");
        assert_eq!(
            status_words(&Output {
                unit: Unit::G,
                ..Output::default()
            })[2],
            0x61
        );
        assert_eq!(
            status_words(&Output {
                decimals: -2,
                increment: 2,
                ..Output::default()
            })[0],
            0x30
        );
    }

    #[test]
    fn parity_is_even_and_strips_back() {
        let p = even_parity(&EXAMPLE);
        assert!(p.iter().all(|b| b.count_ones() % 2 == 0));
        assert_eq!(p[0], 0x82);
        let stripped: Vec<u8> = p.iter().map(|b| b & 0x7F).collect();
        assert_eq!(stripped, EXAMPLE);
    }
}
