//! XK3190 weighbridge indicator driver: "tF=0" continuous output and the "=" format.
//!
//! Setting `format` picks the output the indicator is configured for:
//!
//! - `tf0` (default): 12-byte frames `STX(02) sign(+/-) 6 digits decimals('0'..'4') XORhi
//!   XORlo ETX(03)`, the XOR taken over sign, digits and decimals and sent as two upper-case
//!   ASCII hex digits.
//! - `eq`: `=` followed by the display string mirrored character by character, e.g.
//!   `=000.3000` for a display showing `0003.000` (3.000). Public descriptions show `=` plus
//!   seven characters (six digits and the decimal point) on six-digit displays, the documented
//!   example shows eight (seven digits), so the length is not fixed: a frame is whatever lies
//!   between one `=` and the next (at most [`EQ_MAX_BODY`] bytes), and a frame is decoded
//!   when the next frame's `=` arrives. The mirrored text, read back the right way round, must
//!   be a display: optional leading blanks, an optional `-` (the display's leftmost position,
//!   so the last byte on the wire), digits with at most one `.`; the decimals are the digits
//!   after the point. There is no checksum, so a cut frame cannot be told by its content:
//!   the bytes before the first `=` after opening (or after `drain()`) are taken for the tail
//!   of a frame and rejected, which costs one frame at a hot swap. An empty frame (`==`, or
//!   the `=` that opens the stream) is skipped silently. Noise that reaches a frame costs that
//!   frame (it is rejected whole, with the reason).
//!
//! Weights are in kilograms. Neither format has a stability flag, so stability is judged here:
//! `stable-count` consecutive frames within `stable-band-kg` of each other; `report` says
//! whether every frame or only changes are reported.

use kakou_plugin_sdk::prelude::*;
use kakou_plugin_sdk::proto::StabilityFilter;
use kakou_plugin_sdk::proto::checksum;

const STX: u8 = 0x02;
const ETX: u8 = 0x03;
const FRAME_LEN: usize = 12;

/// Longest "=" format frame body accepted (the bytes between two `=`).
pub const EQ_MAX_BODY: usize = 12;

/// Which output the indicator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// tF=0 STX frames.
    Tf0,
    /// `=` and the mirrored display.
    Eq,
}

impl Format {
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "tf0" => Ok(Format::Tf0),
            "eq" => Ok(Format::Eq),
            other => Err(format!(
                "setting `format`: expected `tf0` or `eq`, got {other:?}"
            )),
        }
    }

    fn spec(self) -> FrameSpec {
        match self {
            Format::Tf0 => FrameSpec::Fixed {
                start: STX,
                len: FRAME_LEN,
                end: None,
            },
            Format::Eq => FrameSpec::Delimited {
                start: None,
                end: b"=".to_vec(),
                max_len: EQ_MAX_BODY + 1,
            },
        }
    }
}

/// One XK3190 indicator.
pub struct Xk3190 {
    format: Format,
    frames: Splitter,
    stability: StabilityFilter,
    /// "=" format: a frame boundary has been seen, so the next frame is whole.
    synced: bool,
}

/// Checks a candidate tF=0 frame's shape and checksum.
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

/// Kilograms from an "=" frame body (the bytes before the next `=`), `None` for an empty body.
fn eq_weight(body: &[u8]) -> Result<Option<f64>, String> {
    if body.is_empty() {
        return Ok(None);
    }
    let display: Vec<u8> = body.iter().rev().copied().collect();
    let bad = |why: String| {
        format!(
            "\"={}\" is not a mirrored display (reads \"{}\"): {why}",
            body.escape_ascii(),
            display.escape_ascii()
        )
    };
    if body.len() > EQ_MAX_BODY {
        return Err(bad(format!("longer than {EQ_MAX_BODY} bytes")));
    }
    let text = display.trim_ascii_start();
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let mut mantissa = 0u64;
    let mut digits = 0u32;
    let mut decimals: Option<i32> = None;
    for &c in text {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                digits += 1;
                if let Some(d) = decimals.as_mut() {
                    *d += 1;
                }
            }
            b'.' if decimals.is_none() => decimals = Some(0),
            b'.' => return Err(bad("more than one decimal point".into())),
            other => {
                return Err(bad(format!("unexpected byte '{}'", [other].escape_ascii())));
            }
        }
    }
    if digits == 0 {
        return Err(bad("no digits".into()));
    }
    // At most EQ_MAX_BODY digits: exact in f64, and the division rounds once.
    let kg = mantissa as f64 / 10f64.powi(decimals.unwrap_or(0));
    Ok(Some(if negative { -kg } else { kg }))
}

/// Checks a candidate "=" frame (body and the closing `=`).
fn validate_eq(frame: &[u8]) -> Result<(), String> {
    let body = frame.strip_suffix(b"=").unwrap_or(frame);
    eq_weight(body).map(|_| ())
}

impl Xk3190 {
    /// Decodes one good frame into kilograms (`None`: nothing to report).
    fn decode(&self, frame: &[u8]) -> Option<f64> {
        match self.format {
            Format::Tf0 => Some(weight_of(frame)),
            Format::Eq => {
                let body = frame.strip_suffix(b"=").unwrap_or(frame);
                eq_weight(body).ok().flatten()
            }
        }
    }
}

impl Driver for Xk3190 {
    fn describe() -> DriverDescription {
        let mut settings = vec![SettingSpec::new(
            "format",
            Some("tf0"),
            "`tf0`: STX sign digits decimals XOR ETX frames; `eq`: `=` and the mirrored display",
        )];
        settings.extend(StabilityFilter::setting_specs());
        DriverDescription {
            name: "xk3190".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            device_classes: vec!["weighbridge".into()],
            summary: "XK3190 weighing indicators, tF=0 continuous output or the \"=\" format"
                .into(),
            poll_interval_ms: None,
            settings,
        }
    }

    fn open(config: &Config) -> Result<Self, String> {
        let format = Format::parse(config.text("format").unwrap_or("tf0"))?;
        Ok(Xk3190 {
            format,
            frames: Splitter::new(format.spec()),
            stability: StabilityFilter::from_config(config)?,
            synced: false,
        })
    }

    fn feed(&mut self, data: &[u8]) -> FeedOutput {
        let mut out = FeedOutput::default();
        self.frames.push(data);
        let check = match self.format {
            Format::Tf0 => validate,
            Format::Eq => validate_eq,
        };
        while let Some(frame) = self.frames.next_frame(check) {
            // Every "=" result but the first after opening (or draining) follows a `=`: the
            // splitter cuts only at `=`, and an overlong run is always reported up to its `=`.
            let first = !std::mem::replace(&mut self.synced, true);
            match frame {
                Frame::Ok(bytes) if first && self.format == Format::Eq && bytes.len() > 1 => {
                    out.rejected.push(Rejected {
                        reason: format!(
                            "partial frame before the first '=': \"{}\"",
                            bytes.escape_ascii()
                        ),
                        bytes: bytes.len() as u32,
                    });
                }
                Frame::Ok(bytes) => {
                    if let Some(kg) = self.decode(&bytes)
                        && let Some((kg, stable)) = self.stability.observe(kg)
                    {
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
        // What follows the drained bytes continues them, so it may begin mid-frame.
        self.synced = false;
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

    // ---- "=" format ---------------------------------------------------------------------

    const EQ: &[(&str, &str)] = &[("format", "eq")];

    #[test]
    fn eq_documented_example_is_3_kg() {
        assert_eq!(wire::xk3190::eq_frame(3.0, 3), b"=000.3000");
        // A frame ends at the next frame's `=`.
        let out = feed_split::<Xk3190>(EQ, b"=000.3000=");
        assert_eq!(kgs(&out), vec![(3.0, false)]);
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        let mut d = open::<Xk3190>(EQ).unwrap();
        assert!(d.feed(b"=000.3000").readings.is_empty());
        assert_eq!(kgs(&d.feed(b"=")), vec![(3.0, false)]);
    }

    #[test]
    fn eq_stream_with_stability_and_display_widths() {
        let mut input = wire::xk3190::eq_frame(3.0, 3).repeat(3);
        input.extend(wire::xk3190::eq_frame_digits(86.0, 1, 6)); // =0.68000
        input.extend(wire::xk3190::eq_frame(-12.5, 2)); // =05.2100-
        input.extend(wire::xk3190::eq_frame(3260.0, 0)); // =0623000
        input.extend(wire::xk3190::eq_frame(3260.0, 0));
        input.push(b'=');
        let out = feed_split::<Xk3190>(&[("format", "eq"), ("stable-count", "2")], &input);
        assert_eq!(
            kgs(&out),
            vec![
                (3.0, false),
                (3.0, true),
                (86.0, false),
                (-12.5, false),
                (3260.0, false),
                (3260.0, true),
            ]
        );
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    }

    #[test]
    fn eq_leading_blanks_are_read_as_blank_digits() {
        // Display "   12.5" (blanked leading zeros) mirrored.
        let out = feed_split::<Xk3190>(EQ, b"=5.21   =");
        assert_eq!(kgs(&out), vec![(12.5, false)]);
    }

    #[test]
    fn eq_partial_first_frame_garbage_and_bad_frames() {
        // Opened mid-frame: "3000" is the tail of "=000.3000", not a weight of 3.
        let mut input = b"3000".to_vec();
        input.extend(wire::xk3190::eq_frame(3.0, 3));
        input.extend(b"\xff\x00noise"); // glued to the frame before: costs that frame
        input.extend(wire::xk3190::eq_frame(3.0, 3));
        input.extend(b"=000.3x00"); // corrupt inside
        input.extend(b"=00..3000"); // two points
        input.extend(b"=-"); // a sign and no digits
        input.extend(wire::xk3190::eq_frame(7.5, 1));
        input.push(b'=');
        let out = feed_split::<Xk3190>(EQ, &input);
        assert_eq!(kgs(&out), vec![(3.0, false), (7.5, false)]);
        let reasons: Vec<&str> = out.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(out.rejected.len(), 5, "{reasons:?}");
        assert!(
            reasons[0].starts_with("partial frame before the first '='"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].contains("exceeds the maximum of 13"),
            "{reasons:?}"
        );
        assert!(reasons[2].contains("unexpected byte 'x'"), "{reasons:?}");
        assert!(
            reasons[3].contains("more than one decimal point"),
            "{reasons:?}"
        );
        assert!(reasons[4].contains("no digits"), "{reasons:?}");
        let dropped: u32 = out.rejected.iter().map(|r| r.bytes).sum();
        // Each rejected frame is its body and the `=` that ends it.
        assert_eq!(dropped as usize, 5 + (8 + 7 + 1) + 9 + 9 + 2);
    }

    #[test]
    fn eq_overlong_run_is_dropped_and_decoding_resumes() {
        let mut input = wire::xk3190::eq_frame(3.0, 3);
        input.extend(b"0123456789012345678901234"); // 25 bytes, no `=`
        input.extend(wire::xk3190::eq_frame(4.0, 3));
        input.push(b'=');
        let out = feed_split::<Xk3190>(EQ, &input);
        assert_eq!(kgs(&out), vec![(4.0, false)]);
        // Whole: one overlong frame; in small chunks: the first 13 bytes, then the rest.
        assert!(
            out.rejected[0].reason.contains("exceeds the maximum of 13")
                || out.rejected[0].reason.starts_with("no end delimiter"),
            "{:?}",
            out.rejected
        );
        let mut d = open::<Xk3190>(EQ).unwrap();
        let bytewise = kakou_plugin_sdk::harness::feed_chunks(&mut d, &input, 1);
        let reasons: Vec<&str> = bytewise
            .rejected
            .iter()
            .map(|r| r.reason.as_str())
            .collect();
        assert_eq!(
            reasons,
            [
                "no end delimiter within 13 bytes",
                "rest of an overlong frame",
                "rest of an overlong frame"
            ]
        );
        let dropped: u32 = bytewise.rejected.iter().map(|r| r.bytes).sum();
        assert_eq!(dropped as usize, 8 + 25 + 1);
        assert_eq!(kgs(&bytewise), vec![(4.0, false)]);
        let dropped: u32 = out.rejected.iter().map(|r| r.bytes).sum();
        assert_eq!(dropped as usize, 8 + 25 + 1);
    }

    #[test]
    fn eq_drain_hands_back_the_tail_and_the_next_instance_resyncs() {
        let frame = wire::xk3190::eq_frame(3.0, 3);
        let mut d = open::<Xk3190>(EQ).unwrap();
        assert!(d.feed(&frame[..6]).readings.is_empty());
        let tail = d.drain();
        assert_eq!(tail, frame[1..6].to_vec());
        // The new instance cannot know the tail starts a frame: it drops it and resyncs.
        let mut next = open::<Xk3190>(EQ).unwrap();
        let mut input = tail;
        input.extend(&frame[6..]);
        input.extend(wire::xk3190::eq_frame(4.0, 3));
        input.push(b'=');
        let out = next.feed(&input);
        assert_eq!(kgs(&out), vec![(4.0, false)]);
        assert_eq!(out.rejected.len(), 1, "{:?}", out.rejected);
        assert_eq!(out.rejected[0].bytes, 9);
        // So does the drained instance itself when fed on.
        assert!(d.feed(&frame[6..]).readings.is_empty());
        assert_eq!(kgs(&d.feed(b"=000.4000=")), vec![(4.0, false)]);
    }

    #[test]
    fn eq_does_not_read_tf0_frames_and_vice_versa() {
        let out = open::<Xk3190>(EQ).unwrap().feed(&EXAMPLE.repeat(3));
        assert!(out.readings.is_empty());
        let out = open::<Xk3190>(&[("format", "tf0")])
            .unwrap()
            .feed(b"=000.3000=000.3000=");
        assert!(out.readings.is_empty());
    }

    #[test]
    fn eq_fixture_capture() {
        let capture = include_bytes!("../fixtures/eq.bin");
        let out = feed_split::<Xk3190>(EQ, capture);
        assert_eq!(
            kgs(&out),
            vec![
                (0.0, false),
                (0.0, true),
                (3.0, false),
                (12.58, false),
                (25.16, false),
                (25.18, false),
                (25.18, true),
            ]
        );
        assert_eq!(out.rejected.len(), 1, "{:?}", out.rejected);
        assert!(out.rejected[0].reason.starts_with("partial frame"));
    }

    #[test]
    fn format_setting_is_checked() {
        let e = open::<Xk3190>(&[("format", "tf1")]).err().unwrap();
        assert_eq!(e, "setting `format`: expected `tf0` or `eq`, got \"tf1\"");
        assert!(open::<Xk3190>(&[("format", " eq ")]).is_ok());
    }
}
