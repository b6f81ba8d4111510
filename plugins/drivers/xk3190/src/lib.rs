//! XK3190 weighbridge indicator driver, "tF=0" continuous output.
//!
//! Each frame is 12 bytes: `STX(02) sign(+/-) 6 digits decimals('0'..'4') XORhi XORlo ETX(03)`,
//! the XOR taken over sign, digits and decimals and sent as two upper-case ASCII hex digits.
//! Weights are in kilograms. The protocol has no stability flag, so stability is judged here:
//! `stable-count` consecutive frames within `stable-band-kg` of each other.

use kakou_plugin_sdk::prelude::*;
use kakou_plugin_sdk::proto::StabilityFilter;
use kakou_plugin_sdk::proto::checksum;

const STX: u8 = 0x02;
const ETX: u8 = 0x03;
const FRAME_LEN: usize = 12;

/// One XK3190 indicator.
pub struct Xk3190 {
    frames: Splitter,
    stability: StabilityFilter,
}

/// Checks a candidate frame's shape and checksum.
fn validate(frame: &[u8]) -> Result<(), String> {
    if frame[FRAME_LEN - 1] != ETX {
        return Err(format!(
            "frame ends with {:02X}, expected ETX 03",
            frame[FRAME_LEN - 1]
        ));
    }
    let body = &frame[1..9];
    if !matches!(body[0], b'+' | b'-') {
        return Err(format!("sign byte {:02X} is neither '+' nor '-'", body[0]));
    }
    if !body[1..8].iter().all(u8::is_ascii_digit) {
        return Err("weight digits are not all ASCII digits".into());
    }
    if body[7] > b'4' {
        return Err(format!(
            "decimal count '{}' is out of range 0..4",
            body[7] as char
        ));
    }
    let sent = checksum::parse_hex_pair(frame[9], frame[10]).ok_or_else(|| {
        format!(
            "checksum bytes {:02X} {:02X} are not hex digits",
            frame[9], frame[10]
        )
    })?;
    let computed = checksum::xor(body);
    if sent != computed {
        return Err(format!(
            "checksum {computed:02X} computed, frame says {sent:02X}"
        ));
    }
    Ok(())
}

/// Kilograms from a validated frame.
fn weight_of(frame: &[u8]) -> f64 {
    let digits = frame[2..8]
        .iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    let decimals = i32::from(frame[8] - b'0');
    let kg = f64::from(digits) / 10f64.powi(decimals);
    if frame[1] == b'-' { -kg } else { kg }
}

impl Driver for Xk3190 {
    fn describe() -> DriverDescription {
        DriverDescription {
            name: "xk3190".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            device_classes: vec!["weighbridge".into()],
            summary: "XK3190 weighing indicators, tF=0 continuous output".into(),
            poll_interval_ms: None,
            settings: StabilityFilter::setting_specs(),
        }
    }

    fn open(config: &Config) -> Result<Self, String> {
        Ok(Xk3190 {
            frames: Splitter::new(FrameSpec::Fixed {
                start: STX,
                len: FRAME_LEN,
                end: None,
            }),
            stability: StabilityFilter::from_config(config)?,
        })
    }

    fn feed(&mut self, data: &[u8]) -> FeedOutput {
        let mut out = FeedOutput::default();
        self.frames.push(data);
        while let Some(frame) = self.frames.next_frame(validate) {
            match frame {
                Frame::Ok(bytes) => {
                    if let Some((kg, stable)) = self.stability.observe(weight_of(&bytes)) {
                        out.readings.push(
                            Weight {
                                kg,
                                stable,
                                ..Default::default()
                            }
                            .into(),
                        );
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

kakou_plugin_sdk::export_driver!(Xk3190);

#[cfg(test)]
mod tests {
    use super::*;
    use kakou_plugin_sdk::harness::{feed_split, open};
    use kakou_plugin_sdk::wire;

    /// The example frame: +3260 kg.
    const EXAMPLE: [u8; 12] = [
        0x02, 0x2B, 0x30, 0x30, 0x33, 0x32, 0x36, 0x30, 0x30, 0x31, 0x43, 0x03,
    ];

    fn frame(sign: u8, digits: &str, decimals: u8) -> Vec<u8> {
        let value: f64 = digits.parse::<u32>().unwrap().into();
        let kg = value / 10f64.powi(i32::from(decimals));
        wire::xk3190::tf0_frame(if sign == b'-' { -kg } else { kg }, decimals)
    }

    fn kgs(out: &FeedOutput) -> Vec<(f64, bool)> {
        out.readings
            .iter()
            .map(|r| match &r.value {
                ReadingValue::Weight(w) => (w.kg, w.stable),
                other => panic!("unexpected reading {other:?}"),
            })
            .collect()
    }

    #[test]
    fn documented_example_is_3260_kg() {
        assert_eq!(frame(b'+', "003260", 0), EXAMPLE);
        let out = feed_split::<Xk3190>(&[], &EXAMPLE);
        assert_eq!(kgs(&out), vec![(3260.0, false)]);
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn stability_after_repeated_frames() {
        let input = EXAMPLE.repeat(4);
        let out = feed_split::<Xk3190>(&[], &input);
        assert_eq!(kgs(&out), vec![(3260.0, false), (3260.0, true)]);
        let every = feed_split::<Xk3190>(&[("report", "every"), ("stable-count", "2")], &input);
        assert_eq!(
            kgs(&every),
            vec![
                (3260.0, false),
                (3260.0, true),
                (3260.0, true),
                (3260.0, true)
            ]
        );
    }

    #[test]
    fn band_tolerates_jitter() {
        let mut input = frame(b'+', "010000", 0);
        input.extend(frame(b'+', "010020", 0));
        input.extend(frame(b'+', "010000", 0));
        let out = feed_split::<Xk3190>(&[("stable-band-kg", "20"), ("report", "every")], &input);
        assert_eq!(
            kgs(&out),
            vec![(10000.0, false), (10020.0, false), (10000.0, true)]
        );
    }

    #[test]
    fn decimals_and_sign() {
        let mut input = frame(b'-', "001250", 2);
        input.extend(frame(b'+', "123456", 3));
        let out = feed_split::<Xk3190>(&[], &input);
        assert_eq!(kgs(&out), vec![(-12.5, false), (123.456, false)]);
    }

    #[test]
    fn garbage_and_corrupt_frames_are_rejected_and_skipped() {
        let mut input = b"\xff\x00noise".to_vec();
        input.extend(EXAMPLE);
        let mut bad = frame(b'+', "004000", 0);
        bad[10] = b'0'; // wrong checksum
        input.extend(&bad);
        input.extend(frame(b'+', "005000", 0));
        let out = feed_split::<Xk3190>(&[], &input);
        assert_eq!(kgs(&out), vec![(3260.0, false), (5000.0, false)]);
        assert_eq!(out.rejected.len(), 2, "{:?}", out.rejected);
        assert!(
            out.rejected[1].reason.contains("checksum"),
            "{:?}",
            out.rejected
        );
        let dropped: u32 = out.rejected.iter().map(|r| r.bytes).sum();
        assert_eq!(dropped as usize, 7 + 12);
    }

    #[test]
    fn drain_returns_partial_frame() {
        let mut d = open::<Xk3190>(&[]).unwrap();
        assert!(d.feed(&EXAMPLE[..5]).readings.is_empty());
        assert_eq!(d.drain(), EXAMPLE[..5].to_vec());
        assert!(d.feed(&EXAMPLE[5..]).readings.is_empty());
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(
            open::<Xk3190>(&[("report", "sometimes")])
                .err()
                .unwrap()
                .contains("`report`")
        );
        assert!(
            open::<Xk3190>(&[("baud", "9600")])
                .err()
                .unwrap()
                .contains("unknown setting `baud`")
        );
    }
}
