//! Yaohua XK3190-A12 weighbridge indicator driver, continuous output.
//!
//! Each line is 15 bytes: `W`, `G` (gross) or `N` (net), the weight in 7 characters with its
//! decimal point (`004.139`; a leading `-` when negative, leading blanks accepted), the unit
//! `kg`, the XOR of bytes 1 to 11 as two ASCII hex digits, CR LF. Example:
//! `WG004.139kg3D\r\n`. Over range the indicator sends nine spaces, `OL` and the XOR:
//! `         OL23\r\n`.
//!
//! Choices:
//!
//! - Lines are cut at CR LF. A line longer than 15 bytes whose last 15 bytes are a good frame
//!   is decoded, and the bytes in front are reported as noise, so garbage glued to a frame does
//!   not cost the frame. Shorter lines (a partial line after opening) are rejected.
//! - The number is taken at face value in kilograms. Some models show tonnes on a display
//!   labelled kg (`004.139` for 4.139 t): setting `unit = "t"` multiplies by 1000. A line whose
//!   unit field says `lb` is converted from pounds whatever `unit` says, and carries the
//!   attribute `unit=lb`.
//! - Over range is a `Weight` with `out_of_range = true`, `kg = 0` and the attribute
//!   `display=OL` (a weight the lane must not use, rather than a device fault: the indicator
//!   works, the load does not fit). It is reported once per over-range spell (every line with
//!   `report = "every"`), and the stability run starts afresh after it.
//! - The line has no stability flag: a weight is stable after `stable-count` consecutive lines
//!   within `stable-band-kg` (see `StabilityFilter`); `report` picks every line or changes.

use kakou_plugin_sdk::prelude::*;
use kakou_plugin_sdk::proto::checksum;
use kakou_plugin_sdk::proto::{Report, StabilityFilter};

/// Bytes in one line, CR LF included.
pub const LINE_LEN: usize = 15;
/// Longest line looked at (noise and a frame); longer lines are dropped whole.
const MAX_LINE: usize = 64;
/// Pounds to kilograms.
const KG_PER_LB: f64 = 0.453_592_37;

/// One decoded line.
#[derive(Debug, Clone, PartialEq)]
enum Line {
    /// A weight: the displayed number as mantissa and decimals, net or gross, in pounds or not.
    Weight {
        mantissa: i64,
        decimals: u32,
        net: bool,
        lb: bool,
    },
    /// `OL`: over range.
    Overload,
}

/// The displayed number: optional leading blanks, optional `-`, digits with at most one `.`.
fn parse_number(field: &[u8]) -> Result<(i64, u32), String> {
    let text = field.trim_ascii_start();
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let mut mantissa = 0i64;
    let mut digits = 0;
    let mut decimals: Option<u32> = None;
    for &c in text {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + i64::from(c - b'0');
                digits += 1;
                if let Some(d) = decimals.as_mut() {
                    *d += 1;
                }
            }
            b'.' if decimals.is_none() => decimals = Some(0),
            _ => {
                return Err(format!(
                    "weight field \"{}\" is not a number",
                    field.escape_ascii()
                ));
            }
        }
    }
    if digits == 0 {
        return Err(format!(
            "weight field \"{}\" has no digits",
            field.escape_ascii()
        ));
    }
    Ok((
        if negative { -mantissa } else { mantissa },
        decimals.unwrap_or(0),
    ))
}

/// Decodes one 15-byte frame (CR LF included).
fn parse_frame(frame: &[u8]) -> Result<Line, String> {
    if frame.len() != LINE_LEN || !frame.ends_with(b"\r\n") {
        return Err(format!("not a {LINE_LEN}-byte line ending in CR LF"));
    }
    let body = &frame[..11];
    let sent = checksum::parse_hex_pair(frame[11], frame[12]).ok_or_else(|| {
        format!(
            "checksum bytes \"{}\" are not hex digits",
            frame[11..13].escape_ascii()
        )
    })?;
    let computed = checksum::xor(body);
    if sent != computed {
        return Err(format!(
            "checksum {computed:02X} computed, frame says {sent:02X}"
        ));
    }
    if body == b"         OL" {
        return Ok(Line::Overload);
    }
    if body[0] != b'W' {
        return Err(format!(
            "line starts with \"{}\", expected 'W' or nine spaces and OL",
            body[..1].escape_ascii()
        ));
    }
    let net = match body[1] {
        b'G' => false,
        b'N' => true,
        other => {
            return Err(format!(
                "kind byte '{}' is neither 'G' (gross) nor 'N' (net)",
                [other].escape_ascii()
            ));
        }
    };
    let lb = match &body[9..11] {
        b"kg" => false,
        b"lb" => true,
        other => {
            return Err(format!(
                "unit \"{}\" is neither kg nor lb",
                other.escape_ascii()
            ));
        }
    };
    let (mantissa, decimals) = parse_number(&body[2..9])?;
    Ok(Line::Weight {
        mantissa,
        decimals,
        net,
        lb,
    })
}

/// Checks a line cut at CR LF: its last 15 bytes must be a good frame.
fn validate(line: &[u8]) -> Result<(), String> {
    if line.len() < LINE_LEN {
        return Err(format!(
            "line \"{}\" is {} bytes, shorter than a {LINE_LEN}-byte frame",
            line.escape_ascii(),
            line.len()
        ));
    }
    parse_frame(&line[line.len() - LINE_LEN..]).map(|_| ())
}

/// `mantissa` × 10^(`exp` − `decimals`), with one rounding at most.
fn scaled(mantissa: i64, decimals: u32, exp: u32) -> f64 {
    kakou_plugin_sdk::proto::number::scale_pow10(mantissa as f64, exp as i32 - decimals as i32)
}

/// One Yaohua XK3190-A12 indicator.
pub struct YaohuaA12 {
    frames: Splitter,
    /// The stability filter as configured, to start afresh after over range.
    fresh: StabilityFilter,
    stability: StabilityFilter,
    report: Report,
    /// Setting `unit = "t"`: the number is tonnes.
    tonnes: bool,
    /// The last line was over range.
    overloaded: bool,
}

impl YaohuaA12 {
    fn decode(&mut self, line: Line) -> Option<Reading> {
        match line {
            Line::Overload => {
                self.stability = self.fresh.clone();
                let repeat = std::mem::replace(&mut self.overloaded, true);
                if repeat && self.report == Report::Change {
                    return None;
                }
                Some(
                    Reading::from(Weight {
                        out_of_range: true,
                        ..Default::default()
                    })
                    .with("display", "OL"),
                )
            }
            Line::Weight {
                mantissa,
                decimals,
                net,
                lb,
            } => {
                self.overloaded = false;
                let kg = if lb {
                    scaled(mantissa, decimals, 0) * KG_PER_LB
                } else {
                    scaled(mantissa, decimals, if self.tonnes { 3 } else { 0 })
                };
                let (kg, stable) = self.stability.observe(kg)?;
                let reading = Reading::from(Weight {
                    kg,
                    stable,
                    kind: if net {
                        WeightKind::Net
                    } else {
                        WeightKind::Gross
                    },
                    ..Default::default()
                });
                Some(if lb {
                    reading.with("unit", "lb")
                } else {
                    reading
                })
            }
        }
    }
}

impl Driver for YaohuaA12 {
    fn describe() -> DriverDescription {
        let mut settings = vec![SettingSpec::new(
            "unit",
            Some("kg"),
            "what the displayed number is: `kg`, or `t` for displays that show tonnes",
        )];
        settings.extend(StabilityFilter::setting_specs());
        DriverDescription {
            name: "yaohua-a12".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            device_classes: vec!["weighbridge".into()],
            summary: "Yaohua XK3190-A12 weighing indicators, continuous output".into(),
            poll_interval_ms: None,
            settings,
        }
    }

    fn open(config: &Config) -> Result<Self, String> {
        let tonnes = match config.text("unit").unwrap_or("kg").trim() {
            "kg" => false,
            "t" => true,
            other => {
                return Err(format!(
                    "setting `unit`: expected `kg` or `t`, got {other:?}"
                ));
            }
        };
        let stability = StabilityFilter::from_config(config)?;
        Ok(YaohuaA12 {
            frames: Splitter::new(FrameSpec::Delimited {
                start: None,
                end: b"\r\n".to_vec(),
                max_len: MAX_LINE,
            }),
            fresh: stability.clone(),
            stability,
            report: Report::parse(config.text("report").unwrap_or("change"))?,
            tonnes,
            overloaded: false,
        })
    }

    fn feed(&mut self, data: &[u8]) -> FeedOutput {
        let mut out = FeedOutput::default();
        self.frames.push(data);
        while let Some(frame) = self.frames.next_frame(validate) {
            match frame {
                Frame::Ok(line) => {
                    let noise = line.len() - LINE_LEN;
                    if noise > 0 {
                        out.rejected.push(Rejected {
                            reason: format!(
                                "{noise} bytes of noise before a frame: \"{}\"",
                                line[..noise].escape_ascii()
                            ),
                            bytes: noise as u32,
                        });
                    }
                    // `validate` accepted these bytes, so this cannot fail.
                    if let Ok(decoded) = parse_frame(&line[noise..])
                        && let Some(reading) = self.decode(decoded)
                    {
                        out.readings.push(reading);
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

kakou_plugin_sdk::export_driver!(YaohuaA12);

#[cfg(test)]
mod tests {
    use super::*;
    use kakou_plugin_sdk::harness::{feed_split, open};
    use kakou_plugin_sdk::wire::yaohua;

    const EXAMPLE: &[u8] = b"WG004.139kg3D\r\n";
    const OVERLOAD: &[u8] = b"         OL23\r\n";

    /// (kg, stable, kind, out of range) of every reading.
    fn weights(out: &FeedOutput) -> Vec<(f64, bool, WeightKind, bool)> {
        out.readings
            .iter()
            .map(|r| match &r.value {
                ReadingValue::Weight(w) => (w.kg, w.stable, w.kind, w.out_of_range),
                other => panic!("unexpected reading {other:?}"),
            })
            .collect()
    }

    const G: WeightKind = WeightKind::Gross;
    const N: WeightKind = WeightKind::Net;

    #[test]
    fn documented_example_is_4_139_kg_at_face_value() {
        assert_eq!(yaohua::weight_line(4.139, 3, false), EXAMPLE);
        let out = feed_split::<YaohuaA12>(&[], EXAMPLE);
        assert_eq!(weights(&out), vec![(4.139, false, G, false)]);
        assert!(out.rejected.is_empty());
        assert!(out.readings[0].attributes.is_empty());
    }

    #[test]
    fn unit_t_reads_the_number_as_tonnes() {
        let out = feed_split::<YaohuaA12>(&[("unit", "t")], EXAMPLE);
        assert_eq!(weights(&out), vec![(4139.0, false, G, false)]);
        let out = feed_split::<YaohuaA12>(&[("unit", "t")], &yaohua::weight_line(25.18, 2, true));
        assert_eq!(weights(&out), vec![(25180.0, false, N, false)]);
    }

    #[test]
    fn documented_overload_is_out_of_range() {
        assert_eq!(yaohua::overload_line(), OVERLOAD);
        let out = feed_split::<YaohuaA12>(&[], OVERLOAD);
        assert_eq!(weights(&out), vec![(0.0, false, G, true)]);
        assert_eq!(
            out.readings[0].attributes,
            vec![Setting::new("display", "OL")]
        );
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn stream_with_stability_net_and_overload() {
        let mut input = EXAMPLE.repeat(4);
        input.extend(yaohua::weight_line(-0.1, 1, true).repeat(2));
        input.extend(OVERLOAD.repeat(3));
        input.extend(EXAMPLE.repeat(3));
        let out = feed_split::<YaohuaA12>(&[], &input);
        assert_eq!(
            weights(&out),
            vec![
                (4.139, false, G, false),
                (4.139, true, G, false),
                (-0.1, false, N, false),
                (0.0, false, G, true),
                // The run starts afresh after over range, so the same weight is reported again.
                (4.139, false, G, false),
                (4.139, true, G, false),
            ]
        );
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        let every = feed_split::<YaohuaA12>(&[("report", "every"), ("stable-count", "1")], &input);
        assert_eq!(every.readings.len(), input.len() / LINE_LEN);
        assert_eq!(weights(&every)[0], (4.139, true, G, false));
    }

    #[test]
    fn pounds_are_converted() {
        let out = feed_split::<YaohuaA12>(&[], &yaohua::weight_line_in(100.0, 1, false, *b"lb"));
        let w = weights(&out);
        assert!((w[0].0 - 45.359_237).abs() < 1e-9, "{w:?}");
        assert_eq!(out.readings[0].attributes, vec![Setting::new("unit", "lb")]);
    }

    #[test]
    fn blanked_digits_are_read() {
        let out = feed_split::<YaohuaA12>(&[], &yaohua::line(b"WG  12.50kg"));
        assert_eq!(weights(&out), vec![(12.5, false, G, false)]);
    }

    #[test]
    fn garbage_and_corrupt_lines_are_rejected_and_skipped() {
        let mut input = b"9kg3D\r\n".to_vec(); // tail of a line from before the port opened
        input.extend(b"\xff\x00noise"); // glued to the next frame
        input.extend(EXAMPLE);
        let mut bad = yaohua::weight_line(5.0, 3, false);
        bad[12] = if bad[12] == b'0' { b'1' } else { b'0' }; // wrong checksum
        input.extend(&bad);
        input.extend(b"garbage line\r\n");
        input.extend(yaohua::line(b"WX004.139kg")); // bad kind
        input.extend(yaohua::line(b"WG004.139 t")); // bad unit
        input.extend(yaohua::line(b"WG00x.139kg")); // bad digit
        input.extend(yaohua::weight_line(6.0, 3, false));
        let out = feed_split::<YaohuaA12>(&[], &input);
        assert_eq!(
            weights(&out),
            vec![(4.139, false, G, false), (6.0, false, G, false)]
        );
        let reasons: Vec<&str> = out.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 7, "{reasons:?}");
        assert!(
            reasons[0].contains("shorter than a 15-byte frame"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].starts_with("7 bytes of noise before a frame"),
            "{reasons:?}"
        );
        assert!(reasons[2].starts_with("checksum"), "{reasons:?}");
        assert!(reasons[2].contains("computed, frame says"), "{reasons:?}");
        assert!(
            reasons[3].contains("shorter than a 15-byte frame"),
            "{reasons:?}"
        );
        assert!(reasons[4].contains("kind byte 'X'"), "{reasons:?}");
        assert!(reasons[5].contains("unit \" t\""), "{reasons:?}");
        assert!(reasons[6].contains("not a number"), "{reasons:?}");
        let dropped: u32 = out.rejected.iter().map(|r| r.bytes).sum();
        assert_eq!(dropped as usize, 7 + 7 + 15 + 14 + 15 * 3);
    }

    #[test]
    fn overlong_line_is_dropped() {
        let mut input = vec![b'x'; 100];
        input.extend(EXAMPLE);
        input.extend(EXAMPLE);
        let out = feed_split::<YaohuaA12>(&[("stable-count", "2")], &input);
        // The first frame shares a line with the noise and goes with it; the second is good.
        assert_eq!(weights(&out), vec![(4.139, false, G, false)]);
        let dropped: u32 = out.rejected.iter().map(|r| r.bytes).sum();
        assert_eq!(dropped as usize, 100 + LINE_LEN);
    }

    #[test]
    fn drain_returns_partial_line() {
        let mut d = open::<YaohuaA12>(&[]).unwrap();
        assert!(d.feed(&EXAMPLE[..9]).readings.is_empty());
        assert_eq!(d.drain(), EXAMPLE[..9].to_vec());
    }

    #[test]
    fn fixture_capture() {
        let out = feed_split::<YaohuaA12>(&[], include_bytes!("../fixtures/capture.bin"));
        assert_eq!(
            weights(&out),
            vec![
                (0.0, false, G, false),
                (0.0, true, G, false),
                (12.34, false, G, false),
                (25.16, false, G, false),
                (25.18, false, G, false),
                (25.18, true, G, false),
                (0.0, false, G, true),
                (25.18, false, G, false),
                (25.18, true, G, false),
            ]
        );
        assert_eq!(out.rejected.len(), 1, "{:?}", out.rejected);
        let frames = feed_split::<YaohuaA12>(&[], include_bytes!("../fixtures/frames.bin"));
        assert_eq!(
            weights(&frames),
            vec![(4.139, false, G, false), (0.0, false, G, true)]
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let e = open::<YaohuaA12>(&[("unit", "lb")]).err().unwrap();
        assert_eq!(e, "setting `unit`: expected `kg` or `t`, got \"lb\"");
        assert!(
            open::<YaohuaA12>(&[("report", "sometimes")])
                .err()
                .unwrap()
                .contains("`report`")
        );
        assert!(
            open::<YaohuaA12>(&[("stable-band-kg", "-1")])
                .err()
                .unwrap()
                .contains("`stable-band-kg`")
        );
        assert!(
            open::<YaohuaA12>(&[("baud", "9600")])
                .err()
                .unwrap()
                .contains("unknown setting `baud`")
        );
    }
}
