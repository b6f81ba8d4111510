//! Mettler Toledo standard continuous output driver (weighing terminals and their many clones).
//!
//! Each frame is `STX(02) SWA SWB SWC weight(6) tare(6) CR(0D) checksum`: 18 bytes, or 17
//! when the terminal is set to send no checksum (setting `checksum = "false"`). The checksum
//! makes the sum of all 18 bytes ≡ 0 mod 128. Weight and tare are six digits without sign or
//! point; leading zeros may come as spaces.
//!
//! - SWA bits 0–2: the decimal position code, 0 `XXXX00`, 1 `XXXXX0`, 2 `XXXXXX`, 3 `XXXXX.X`,
//!   4 `XXXX.XX`, 5 `XXX.XXX`, 6 `XX.XXXX`, 7 `X.XXXXX`: value = digits × 10^(2 − code), for
//!   weight and tare alike. Bits 3–4 (increment size) are not needed to read the value.
//! - SWB: bit 0 net (kind `Net`), bit 1 negative, bit 2 out of range (`out_of_range`), bit 3
//!   in motion (`stable` = not in motion and in range), bit 4 kg (else lb). Bit 6 is
//!   "power-up not zeroed" on some terminals and always set on others (the documented example
//!   has it), so it is ignored.
//! - SWC: bit 0 grams (overrides SWB bit 4), bit 3 print request (attribute
//!   `print-request=true`).
//!
//! Choices: every weight is reported in kilograms; pounds are converted (×0.45359237) and the
//! reading carries `unit=lb`, grams are divided by 1000. The tare field goes into `tare_kg`
//! on every reading (0 when no tare is set). An out-of-range frame whose weight field is not a
//! number reads as 0 kg, out of range. The line is usually 7E1: with `strip-parity = "true"`
//! (default) bit 7 of every byte is cleared as it arrives, before framing, so `drain()` hands
//! back the bytes with bit 7 cleared. Terminals stream continuously: with `report = "change"`
//! (default) a reading equal to the last one reported is not repeated; `every` reports all.

use kakou_plugin_sdk::prelude::*;
use kakou_plugin_sdk::proto::Report;
use kakou_plugin_sdk::proto::checksum;

const STX: u8 = 0x02;
const CR: u8 = 0x0D;
/// Frame length with the checksum byte.
pub const FRAME_LEN: usize = 18;
/// Pounds to kilograms.
const KG_PER_LB: f64 = 0.453_592_37;

/// A six-digit field: leading spaces, then digits (at least one).
fn parse_field(field: &[u8]) -> Option<u32> {
    let digits = field.trim_ascii_start();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')),
    )
}

/// Checks a candidate frame: CR, checksum (when sent), numeric weight and tare.
fn check(frame: &[u8], with_checksum: bool) -> Result<(), String> {
    if frame[16] != CR {
        return Err(format!("byte 17 is {:02X}, expected CR 0D", frame[16]));
    }
    if with_checksum {
        let computed = checksum::sum_mod128_complement(&frame[..17]);
        let sent = frame[17] & 0x7F;
        if sent != computed {
            return Err(format!(
                "checksum {computed:02X} computed, frame says {sent:02X}"
            ));
        }
    }
    let out_of_range = frame[2] & 0x04 != 0;
    if parse_field(&frame[4..10]).is_none() && !out_of_range {
        return Err(format!(
            "weight field \"{}\" is not six digits",
            frame[4..10].escape_ascii()
        ));
    }
    if parse_field(&frame[10..16]).is_none() {
        return Err(format!(
            "tare field \"{}\" is not six digits",
            frame[10..16].escape_ascii()
        ));
    }
    Ok(())
}

fn check_with_checksum(frame: &[u8]) -> Result<(), String> {
    check(frame, true)
}

fn check_without_checksum(frame: &[u8]) -> Result<(), String> {
    check(frame, false)
}

/// `digits` × 10^`exp`, with one rounding at most.
fn scaled(digits: u32, exp: i32) -> f64 {
    kakou_plugin_sdk::proto::number::scale_pow10(f64::from(digits), exp)
}

/// The reading a validated frame stands for.
fn decode(frame: &[u8]) -> Reading {
    let (swa, swb, swc) = (frame[1], frame[2], frame[3]);
    let grams = swc & 0x01 != 0;
    let kg_unit = swb & 0x10 != 0;
    // Power of ten of the last digit, in the unit shown; grams shift it to kilograms.
    let exp = 2 - i32::from(swa & 0x07) - if grams { 3 } else { 0 };
    let to_kg = |digits: u32| {
        let v = scaled(digits, exp);
        if grams || kg_unit { v } else { v * KG_PER_LB }
    };
    let out_of_range = swb & 0x04 != 0;
    let motion = swb & 0x08 != 0;
    let weight = parse_field(&frame[4..10]).map_or(0.0, to_kg);
    let tare = parse_field(&frame[10..16]).map_or(0.0, to_kg);
    let mut reading = Reading::from(Weight {
        kg: if swb & 0x02 != 0 { -weight } else { weight },
        stable: !motion && !out_of_range,
        kind: if swb & 0x01 != 0 {
            WeightKind::Net
        } else {
            WeightKind::Gross
        },
        tare_kg: Some(tare),
        out_of_range,
    });
    if !grams && !kg_unit {
        reading = reading.with("unit", "lb");
    }
    if swc & 0x08 != 0 {
        reading = reading.with("print-request", "true");
    }
    reading
}

/// One terminal sending the standard continuous output.
pub struct ToledoContinuous {
    frames: Splitter,
    with_checksum: bool,
    strip_parity: bool,
    report: Report,
    last: Option<Reading>,
}

impl Driver for ToledoContinuous {
    fn describe() -> DriverDescription {
        DriverDescription {
            name: "toledo-continuous".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            device_classes: vec!["weighbridge".into()],
            summary: "Mettler Toledo standard continuous output (STX SWA SWB SWC weight tare CR checksum)"
                .into(),
            poll_interval_ms: None,
            settings: vec![
                SettingSpec::new(
                    "checksum",
                    Some("true"),
                    "`true`: 18-byte frames ending in the mod-128 checksum; `false`: 17 bytes, none",
                ),
                SettingSpec::new(
                    "strip-parity",
                    Some("true"),
                    "clear bit 7 of every byte (7E1 line read as 8 bits)",
                ),
                SettingSpec::new(
                    "report",
                    Some("change"),
                    "`change`: report a reading only when it differs from the last; `every`: all",
                ),
            ],
        }
    }

    fn open(config: &Config) -> Result<Self, String> {
        let with_checksum = config.get::<bool>("checksum", true)?;
        Ok(ToledoContinuous {
            frames: Splitter::new(FrameSpec::Fixed {
                start: STX,
                len: if with_checksum {
                    FRAME_LEN
                } else {
                    FRAME_LEN - 1
                },
                end: None,
            }),
            with_checksum,
            strip_parity: config.get::<bool>("strip-parity", true)?,
            report: Report::parse(config.text("report").unwrap_or("change"))?,
            last: None,
        })
    }

    fn feed(&mut self, data: &[u8]) -> FeedOutput {
        let mut out = FeedOutput::default();
        if self.strip_parity {
            let stripped: Vec<u8> = data.iter().map(|b| b & 0x7F).collect();
            self.frames.push(&stripped);
        } else {
            self.frames.push(data);
        }
        let validate = if self.with_checksum {
            check_with_checksum
        } else {
            check_without_checksum
        };
        while let Some(frame) = self.frames.next_frame(validate) {
            match frame {
                Frame::Ok(bytes) => {
                    let reading = decode(&bytes);
                    if self.report == Report::Change && self.last.as_ref() == Some(&reading) {
                        continue;
                    }
                    self.last = Some(reading.clone());
                    out.readings.push(reading);
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

kakou_plugin_sdk::export_driver!(ToledoContinuous);

#[cfg(test)]
mod tests {
    use super::*;
    use kakou_plugin_sdk::harness::{feed_split, open};
    use kakou_plugin_sdk::wire::toledo::{self, Output, Unit};

    /// The documented example: 5.67 kg, stable.
    const EXAMPLE: [u8; 18] = [
        0x02, 0x2C, 0x70, 0x60, 0x30, 0x30, 0x30, 0x35, 0x36, 0x37, 0x30, 0x30, 0x30, 0x30, 0x30,
        0x30, 0x0D, 0x23,
    ];

    fn weight(r: &Reading) -> &Weight {
        match &r.value {
            ReadingValue::Weight(w) => w,
            other => panic!("unexpected reading {other:?}"),
        }
    }

    fn kgs(out: &FeedOutput) -> Vec<(f64, bool)> {
        out.readings
            .iter()
            .map(|r| (weight(r).kg, weight(r).stable))
            .collect()
    }

    fn frame(o: Output) -> Vec<u8> {
        toledo::continuous_frame(&o)
    }

    #[test]
    fn documented_example_is_5_67_kg_stable() {
        let out = feed_split::<ToledoContinuous>(&[], &EXAMPLE);
        assert_eq!(out.readings.len(), 1);
        assert_eq!(
            weight(&out.readings[0]),
            &Weight {
                kg: 5.67,
                stable: true,
                kind: WeightKind::Gross,
                tare_kg: Some(0.0),
                out_of_range: false,
            }
        );
        assert!(out.readings[0].attributes.is_empty());
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn parity_bits_are_stripped_by_default() {
        let wire = toledo::even_parity(&EXAMPLE);
        assert_eq!(wire[0], 0x82);
        let out = feed_split::<ToledoContinuous>(&[], &wire);
        assert_eq!(kgs(&out), vec![(5.67, true)]);
        // Without stripping, 0x82 is no STX: nothing decodes, nothing is invented.
        let raw = open::<ToledoContinuous>(&[("strip-parity", "false")])
            .unwrap()
            .feed(&wire);
        assert!(raw.readings.is_empty());
        // A clean 8-bit line decodes either way.
        let clean = feed_split::<ToledoContinuous>(&[("strip-parity", "false")], &EXAMPLE);
        assert_eq!(kgs(&clean), vec![(5.67, true)]);
    }

    #[test]
    fn without_checksum() {
        let input = EXAMPLE[..17].repeat(2);
        let out =
            feed_split::<ToledoContinuous>(&[("checksum", "false"), ("report", "every")], &input);
        assert_eq!(kgs(&out), vec![(5.67, true), (5.67, true)]);
        assert!(out.rejected.is_empty());
        // 18-byte frames on a line set for 17: the checksum byte is noise before each STX.
        let out = feed_split::<ToledoContinuous>(&[("checksum", "false")], &EXAMPLE.repeat(2));
        assert_eq!(kgs(&out), vec![(5.67, true)]);
        assert_eq!(out.rejected.len(), 1);
    }

    #[test]
    fn net_tare_sign_motion_and_range() {
        let mut input = frame(Output {
            weight: 12_340.0,
            tare: 8_660.0,
            decimals: 0,
            net: true,
            ..Output::default()
        });
        input.extend(frame(Output {
            weight: -20.0,
            decimals: -1,
            motion: true,
            ..Output::default()
        }));
        input.extend(frame(Output {
            weight: 999_999.0,
            out_of_range: true,
            ..Output::default()
        }));
        let out = feed_split::<ToledoContinuous>(&[], &input);
        let w: Vec<&Weight> = out.readings.iter().map(weight).collect();
        assert_eq!(
            *w[0],
            Weight {
                kg: 12_340.0,
                stable: true,
                kind: WeightKind::Net,
                tare_kg: Some(8_660.0),
                out_of_range: false,
            }
        );
        assert_eq!(
            (w[1].kg, w[1].stable, w[1].kind),
            (-20.0, false, WeightKind::Gross)
        );
        assert_eq!((w[2].stable, w[2].out_of_range), (false, true));
    }

    #[test]
    fn out_of_range_with_a_non_numeric_weight_field() {
        let mut f = frame(Output {
            out_of_range: true,
            ..Output::default()
        });
        f[4..10].copy_from_slice(b"------");
        f[17] = checksum::sum_mod128_complement(&f[..17]);
        let out = feed_split::<ToledoContinuous>(&[], &f);
        assert_eq!(kgs(&out), vec![(0.0, false)]);
        assert!(weight(&out.readings[0]).out_of_range);
        // In range, the same field is an error.
        f[2] &= !0x04;
        f[17] = checksum::sum_mod128_complement(&f[..17]);
        let out = feed_split::<ToledoContinuous>(&[], &f);
        assert!(out.readings.is_empty());
        assert!(
            out.rejected[0].reason.contains("weight field"),
            "{:?}",
            out.rejected
        );
    }

    #[test]
    fn decimal_codes_and_blanked_zeros() {
        let cases: [(f64, i8, f64); 8] = [
            (1234.0 * 100.0, -2, 123_400.0),
            (12_340.0, -1, 12_340.0),
            (1234.0, 0, 1234.0),
            (123.4, 1, 123.4),
            (12.34, 2, 12.34),
            (1.234, 3, 1.234),
            (0.1234, 4, 0.1234),
            (0.01234, 5, 0.01234),
        ];
        for (value, decimals, kg) in cases {
            let f = frame(Output {
                weight: value,
                decimals,
                blank_leading_zeros: true,
                ..Output::default()
            });
            assert_eq!(i32::from(f[1] & 7), i32::from(decimals) + 2);
            let out = feed_split::<ToledoContinuous>(&[], &f);
            assert_eq!(kgs(&out), vec![(kg, true)], "decimals {decimals}");
        }
    }

    #[test]
    fn pounds_grams_and_print_request() {
        let lb = frame(Output {
            weight: 100.0,
            tare: 10.0,
            unit: Unit::Lb,
            print_request: true,
            ..Output::default()
        });
        let out = feed_split::<ToledoContinuous>(&[], &lb);
        let w = weight(&out.readings[0]);
        assert!((w.kg - 45.359_237).abs() < 1e-9);
        assert!((w.tare_kg.unwrap_or_default() - 4.535_923_7).abs() < 1e-9);
        assert_eq!(
            out.readings[0].attributes,
            vec![
                Setting::new("unit", "lb"),
                Setting::new("print-request", "true")
            ]
        );
        let g = frame(Output {
            weight: 1500.5,
            decimals: 1,
            unit: Unit::G,
            ..Output::default()
        });
        let out = feed_split::<ToledoContinuous>(&[], &g);
        assert_eq!(kgs(&out), vec![(1.5005, true)]);
        assert!(out.readings[0].attributes.is_empty());
    }

    #[test]
    fn report_change_and_every() {
        let moving = |kg: f64| {
            frame(Output {
                weight: kg,
                motion: true,
                ..Output::default()
            })
        };
        let settled = |kg: f64| {
            frame(Output {
                weight: kg,
                ..Output::default()
            })
        };
        let mut input = moving(1000.0);
        input.extend(moving(1000.0));
        input.extend(moving(2000.0));
        input.extend(settled(2000.0));
        input.extend(settled(2000.0));
        let out = feed_split::<ToledoContinuous>(&[], &input);
        assert_eq!(
            kgs(&out),
            vec![(1000.0, false), (2000.0, false), (2000.0, true)]
        );
        let every = feed_split::<ToledoContinuous>(&[("report", "every")], &input);
        assert_eq!(every.readings.len(), 5);
    }

    #[test]
    fn garbage_and_corrupt_frames_are_rejected_and_skipped() {
        let mut input = b"\xff\x00noise".to_vec();
        input.extend(EXAMPLE);
        let mut bad = EXAMPLE;
        bad[8] = b'7'; // weight digit changed: checksum no longer matches
        input.extend(bad);
        let mut no_cr = EXAMPLE;
        no_cr[16] = b' ';
        input.extend(no_cr);
        input.extend(b"\x02\x2C"); // a cut frame, then a good one
        let second = frame(Output {
            weight: 7.5,
            decimals: 2,
            ..Output::default()
        });
        input.extend(&second);
        let out = feed_split::<ToledoContinuous>(&[], &input);
        assert_eq!(kgs(&out), vec![(5.67, true), (7.5, true)]);
        let reasons: Vec<&str> = out.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].contains("noise"), "{reasons:?}");
        assert_eq!(reasons[1], "checksum 22 computed, frame says 23");
        assert_eq!(reasons[2], "byte 17 is 20, expected CR 0D");
        let dropped: u32 = out.rejected.iter().map(|r| r.bytes).sum();
        assert_eq!(dropped as usize, 7 + 18 + 18 + 2);
    }

    #[test]
    fn drain_returns_partial_frame() {
        let mut d = open::<ToledoContinuous>(&[]).unwrap();
        assert!(d.feed(&EXAMPLE[..7]).readings.is_empty());
        assert_eq!(d.drain(), EXAMPLE[..7].to_vec());
    }

    #[test]
    fn fixtures() {
        let out = feed_split::<ToledoContinuous>(&[], include_bytes!("../fixtures/frames.bin"));
        assert_eq!(kgs(&out), vec![(5.67, true)]);
        let out = feed_split::<ToledoContinuous>(&[], include_bytes!("../fixtures/capture.bin"));
        let w: Vec<(f64, bool, WeightKind, Option<f64>)> = out
            .readings
            .iter()
            .map(|r| {
                let w = weight(r);
                (w.kg, w.stable, w.kind, w.tare_kg)
            })
            .collect();
        let (g, n) = (WeightKind::Gross, WeightKind::Net);
        assert_eq!(
            w,
            vec![
                (0.0, true, g, Some(0.0)),
                (8_420.0, false, g, Some(0.0)),
                (14_960.0, false, g, Some(0.0)),
                (14_980.0, false, g, Some(0.0)),
                (14_980.0, true, g, Some(0.0)),
                (6_500.0, true, n, Some(8_480.0)),
                // The same weight again, with the operator's print request.
                (6_500.0, true, n, Some(8_480.0)),
            ]
        );
        assert_eq!(
            out.readings.last().map(|r| r.attributes.clone()),
            Some(vec![Setting::new("print-request", "true")])
        );
        assert_eq!(out.rejected.len(), 1, "{:?}", out.rejected);
    }

    #[test]
    fn bad_settings_are_refused() {
        for (key, value) in [("checksum", "maybe"), ("strip-parity", "1")] {
            let e = open::<ToledoContinuous>(&[(key, value)]).err().unwrap();
            assert!(e.starts_with(&format!("setting `{key}`")), "{e}");
        }
        assert!(
            open::<ToledoContinuous>(&[("report", "sometimes")])
                .err()
                .unwrap()
                .contains("`report`")
        );
        assert!(
            open::<ToledoContinuous>(&[("baud", "9600")])
                .err()
                .unwrap()
                .contains("unknown setting `baud`")
        );
    }
}
