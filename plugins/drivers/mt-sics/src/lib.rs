//! Mettler Toledo MT-SICS driver (balances and weighing terminals, command/response, CR LF).
//!
//! `poll()` sends `SI\r\n` (weight now, stable or not) or, with `command = "S"`, `S\r\n` (the
//! next stable weight). The host polls every 200 ms: `describe()` cannot see the settings, so
//! the interval is fixed rather than a setting. Answers, one per CR LF line:
//!
//! - `S S <weight> <unit>`: a stable `Weight`; `S D <weight> <unit>`: moving (`stable =
//!   false`). Units g, kg, t and mg are converted to kilograms exactly; lb and oz are converted
//!   too and the reading carries `unit=lb` / `unit=oz`. Other units (pieces, carats, …) are
//!   not masses: the line is rejected with the reason.
//! - `S +` / `S -`: over / under the weighing range: a `Weight` with `out_of_range = true`,
//!   `kg = 0`, and the attribute `range=over` / `range=under` (the lane must not use it, but
//!   the balance works).
//! - `S I`: understood but not executable now (busy, or no stable weight in time): a
//!   `DeviceStatus` warning, code `busy`.
//! - `ES`, `ET`, `EL`: syntax, transmission and logical errors: `DeviceStatus` faults with codes
//!   `syntax-error`, `transmission-error`, `logical-error`.
//!
//! Anything else is rejected with the reason. Noise glued in front of an `S …` answer on the
//! same line is reported as noise and the answer decoded; an error answer is only recognised
//! as the whole line, so noise that happens to end in `ET` does not raise a fault. A balance
//! polled five times a second repeats itself: with `report = "change"` (default) a reading
//! equal to the last one reported is not repeated; `every` reports all.

use kakou_plugin_sdk::prelude::*;
use kakou_plugin_sdk::proto::Report;
use kakou_plugin_sdk::proto::number::scale_pow10;

/// Interval at which the host calls `poll()`.
pub const POLL_INTERVAL_MS: u32 = 200;
/// Longest line looked at.
const MAX_LINE: usize = 64;

/// Multiplier to kilograms, as a power of ten where exact, and whether the unit is noted.
enum Scale {
    /// × 10^n.
    Pow10(i32),
    /// × factor, reading marked with the unit.
    Factor(f64, &'static str),
}

fn unit_scale(unit: &str) -> Option<Scale> {
    Some(match unit {
        "kg" => Scale::Pow10(0),
        "g" => Scale::Pow10(-3),
        "mg" => Scale::Pow10(-6),
        "t" => Scale::Pow10(3),
        "lb" => Scale::Factor(0.453_592_37, "lb"),
        "oz" => Scale::Factor(0.028_349_523_125, "oz"),
        _ => return None,
    })
}

/// Kilograms from a weight text and its unit.
fn kilograms(value: &str, unit: &str) -> Result<(f64, Option<&'static str>), String> {
    let bad = || format!("weight {value:?} is not a number");
    let (negative, digits) = match value.as_bytes().split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, value.as_bytes()),
    };
    let mut mantissa = 0u64;
    let mut count = 0u32;
    let mut decimals: Option<i32> = None;
    for &c in digits {
        match c {
            b'0'..=b'9' if count < 18 => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                count += 1;
                if let Some(d) = decimals.as_mut() {
                    *d += 1;
                }
            }
            b'.' if decimals.is_none() => decimals = Some(0),
            _ => return Err(bad()),
        }
    }
    if count == 0 {
        return Err(bad());
    }
    let scale = unit_scale(unit)
        .ok_or_else(|| format!("unit {unit:?} is not a mass unit (g, kg, t, mg, lb, oz)"))?;
    let m = mantissa as f64;
    let decimals = decimals.unwrap_or(0);
    let (kg, note) = match scale {
        Scale::Pow10(p) => (scale_pow10(m, p - decimals), None),
        Scale::Factor(f, name) => (m / 10f64.powi(decimals) * f, Some(name)),
    };
    Ok((if negative { -kg } else { kg }, note))
}

fn status(level: StatusLevel, code: &str, message: &str) -> Reading {
    DeviceStatus {
        level,
        code: code.into(),
        message: message.into(),
    }
    .into()
}

/// Decodes one answer (CR LF removed).
fn parse_answer(text: &[u8]) -> Result<Reading, String> {
    let unknown = || format!("unrecognised answer \"{}\"", text.escape_ascii());
    let text = std::str::from_utf8(text).map_err(|_| unknown())?;
    let tokens: Vec<&str> = text.split_ascii_whitespace().collect();
    Ok(match tokens.as_slice() {
        ["S", kind @ ("S" | "D"), value, unit] => {
            let (kg, note) = kilograms(value, unit)?;
            let reading = Reading::from(Weight {
                kg,
                stable: *kind == "S",
                ..Default::default()
            });
            match note {
                Some(unit) => reading.with("unit", unit),
                None => reading,
            }
        }
        ["S", "S" | "D", ..] => {
            return Err(format!(
                "weight answer \"{}\" is not `S S|D <weight> <unit>`",
                text.escape_default()
            ));
        }
        ["S", range @ ("+" | "-")] => Reading::from(Weight {
            out_of_range: true,
            ..Default::default()
        })
        .with("range", if *range == "+" { "over" } else { "under" }),
        ["S", "I"] => status(
            StatusLevel::Warning,
            "busy",
            "S I: command understood but not executable now (busy, or no stable weight in time)",
        ),
        ["ES"] => status(
            StatusLevel::Fault,
            "syntax-error",
            "ES: the balance did not understand the command",
        ),
        ["ET"] => status(
            StatusLevel::Fault,
            "transmission-error",
            "ET: the balance received a garbled command (parity, overrun)",
        ),
        ["EL"] => status(
            StatusLevel::Fault,
            "logical-error",
            "EL: the balance cannot execute the command",
        ),
        _ => return Err(unknown()),
    })
}

/// Where the answer begins in a line (CR LF removed): 0, or after noise glued in front of an
/// `S …` answer. The error explains why the whole line is not an answer.
fn locate(text: &[u8]) -> Result<(usize, Reading), String> {
    match parse_answer(text) {
        Ok(reading) => Ok((0, reading)),
        Err(reason) => (1..text.len())
            .filter(|&i| text[i..].starts_with(b"S "))
            .find_map(|i| parse_answer(&text[i..]).ok().map(|r| (i, r)))
            .ok_or(reason),
    }
}

fn body(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r\n").unwrap_or(line)
}

fn validate(line: &[u8]) -> Result<(), String> {
    locate(body(line)).map(|_| ())
}

/// One MT-SICS balance or terminal.
pub struct MtSics {
    frames: Splitter,
    command: &'static [u8],
    report: Report,
    last: Option<Reading>,
}

impl Driver for MtSics {
    fn describe() -> DriverDescription {
        DriverDescription {
            name: "mt-sics".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            device_classes: vec!["weighbridge".into()],
            summary: "Mettler Toledo MT-SICS balances and terminals, polled with SI or S".into(),
            poll_interval_ms: Some(POLL_INTERVAL_MS),
            settings: vec![
                SettingSpec::new(
                    "command",
                    Some("SI"),
                    "`SI`: weight now, stable or moving; `S`: the next stable weight only",
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
        let command: &'static [u8] = match config.text("command").unwrap_or("SI").trim() {
            "SI" => b"SI\r\n",
            "S" => b"S\r\n",
            other => {
                return Err(format!(
                    "setting `command`: expected `SI` or `S`, got {other:?}"
                ));
            }
        };
        Ok(MtSics {
            frames: Splitter::new(FrameSpec::Delimited {
                start: None,
                end: b"\r\n".to_vec(),
                max_len: MAX_LINE,
            }),
            command,
            report: Report::parse(config.text("report").unwrap_or("change"))?,
            last: None,
        })
    }

    fn feed(&mut self, data: &[u8]) -> FeedOutput {
        let mut out = FeedOutput::default();
        self.frames.push(data);
        while let Some(frame) = self.frames.next_frame(validate) {
            match frame {
                Frame::Ok(line) => {
                    // `validate` accepted the line, so `locate` finds the answer again.
                    let Ok((noise, reading)) = locate(body(&line)) else {
                        continue;
                    };
                    if noise > 0 {
                        out.rejected.push(Rejected {
                            reason: format!(
                                "{noise} bytes of noise before an answer: \"{}\"",
                                line[..noise].escape_ascii()
                            ),
                            bytes: noise as u32,
                        });
                    }
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

    fn poll(&mut self) -> Option<Vec<u8>> {
        Some(self.command.to_vec())
    }
}

kakou_plugin_sdk::export_driver!(MtSics);

#[cfg(test)]
mod tests {
    use super::*;
    use kakou_plugin_sdk::harness::{feed_split, open};
    use kakou_plugin_sdk::wire::mt_sics;

    /// (kg, stable, out of range) of a weight reading.
    fn w(r: &Reading) -> (f64, bool, bool) {
        match &r.value {
            ReadingValue::Weight(w) => (w.kg, w.stable, w.out_of_range),
            other => panic!("expected a weight, got {other:?}"),
        }
    }

    /// (level, code) of a status reading.
    fn s(r: &Reading) -> (StatusLevel, &str) {
        match &r.value {
            ReadingValue::Status(s) => (s.level, s.code.as_str()),
            other => panic!("expected a status, got {other:?}"),
        }
    }

    #[test]
    fn poll_sends_the_configured_command() {
        let mut d = open::<MtSics>(&[]).unwrap();
        assert_eq!(d.poll(), Some(mt_sics::SI.to_vec()));
        assert_eq!(d.poll(), Some(b"SI\r\n".to_vec()));
        let mut d = open::<MtSics>(&[("command", "S")]).unwrap();
        assert_eq!(d.poll(), Some(mt_sics::S.to_vec()));
        assert_eq!(MtSics::describe().poll_interval_ms, Some(200));
    }

    #[test]
    fn documented_answers() {
        // SI → S S <weight> <unit> stable, S D … moving, S + / S - over / under load.
        let mut input = mt_sics::weight(100.0, 2, "g", true);
        input.extend(mt_sics::weight(12.5, 1, "kg", false));
        input.extend(mt_sics::overload());
        input.extend(mt_sics::underload());
        let out = feed_split::<MtSics>(&[], &input);
        let got: Vec<(f64, bool, bool)> = out.readings.iter().map(w).collect();
        assert_eq!(
            got,
            vec![
                (0.1, true, false),
                (12.5, false, false),
                (0.0, false, true),
                (0.0, false, true)
            ]
        );
        assert_eq!(
            out.readings[2].attributes,
            vec![Setting::new("range", "over")]
        );
        assert_eq!(
            out.readings[3].attributes,
            vec![Setting::new("range", "under")]
        );
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    }

    #[test]
    fn units_are_converted_to_kilograms() {
        let cases: [(&[u8], f64); 7] = [
            (b"S S     100.00 g\r\n", 0.1),
            (b"S S      2.345 kg\r\n", 2.345),
            (b"S S     12.340 t\r\n", 12_340.0),
            (b"S S    -0.0125 t\r\n", -12.5),
            (b"S S       1500 mg\r\n", 0.0015),
            (b"S S +7 kg\r\n", 7.0),
            (b"S D     -3.50 kg\r\n", -3.5),
        ];
        for (line, kg) in cases {
            let out = feed_split::<MtSics>(&[], line);
            assert_eq!(w(&out.readings[0]).0, kg, "{}", line.escape_ascii());
            assert!(out.readings[0].attributes.is_empty());
        }
        let out = feed_split::<MtSics>(&[], b"S S      10.00 lb\r\n");
        assert!((w(&out.readings[0]).0 - 4.535_923_7).abs() < 1e-12);
        assert_eq!(out.readings[0].attributes, vec![Setting::new("unit", "lb")]);
        let out = feed_split::<MtSics>(&[], b"S S         16 oz\r\n");
        assert!((w(&out.readings[0]).0 - 0.453_592_37).abs() < 1e-12);
    }

    #[test]
    fn busy_and_errors_are_device_status() {
        let mut input = mt_sics::busy();
        input.extend(mt_sics::error(mt_sics::Error::Syntax));
        input.extend(mt_sics::error(mt_sics::Error::Transmission));
        input.extend(mt_sics::error(mt_sics::Error::Logical));
        let out = feed_split::<MtSics>(&[], &input);
        let got: Vec<(StatusLevel, &str)> = out.readings.iter().map(s).collect();
        assert_eq!(
            got,
            vec![
                (StatusLevel::Warning, "busy"),
                (StatusLevel::Fault, "syntax-error"),
                (StatusLevel::Fault, "transmission-error"),
                (StatusLevel::Fault, "logical-error"),
            ]
        );
    }

    #[test]
    fn report_change_and_every() {
        let mut input = Vec::new();
        for (value, stable) in [(0.0, true), (0.0, true), (1.2, false), (2.5, false)] {
            input.extend(mt_sics::weight(value, 3, "kg", stable));
        }
        input.extend(mt_sics::weight(2.5, 3, "kg", true).repeat(3));
        input.extend(mt_sics::busy().repeat(2));
        input.extend(mt_sics::weight(2.5, 3, "kg", true));
        let out = feed_split::<MtSics>(&[], &input);
        assert_eq!(out.readings.len(), 6);
        assert_eq!(w(&out.readings[0]), (0.0, true, false));
        assert_eq!(w(&out.readings[3]), (2.5, true, false));
        assert_eq!(s(&out.readings[4]), (StatusLevel::Warning, "busy"));
        // Equal to an earlier weight, but not to the last reading (the status): reported.
        assert_eq!(w(&out.readings[5]), (2.5, true, false));
        let every = feed_split::<MtSics>(&[("report", "every")], &input);
        assert_eq!(every.readings.len(), 10);
    }

    #[test]
    fn garbage_and_bad_lines_are_rejected_and_skipped() {
        let mut input = b"0 g\r\n".to_vec(); // tail of an answer from before the port opened
        input.extend(b"\xff\x00noise"); // glued to the next answer
        input.extend(mt_sics::weight(1.0, 2, "kg", true));
        input.extend(b"S S      1.00 pcs\r\n"); // not a mass
        input.extend(b"S S      1.0x kg\r\n"); // not a number
        input.extend(b"S S\r\n"); // no weight
        input.extend(b"garbage SET\r\n"); // ends in ET: not a fault
        input.extend(b"I4 A \"B021002593\"\r\n"); // an answer to another command
        input.extend(vec![b'x'; 80]); // overlong
        input.extend(b"\r\n");
        input.extend(mt_sics::weight(2.0, 2, "kg", true));
        let out = feed_split::<MtSics>(&[], &input);
        let got: Vec<(f64, bool, bool)> = out.readings.iter().map(w).collect();
        assert_eq!(got, vec![(1.0, true, false), (2.0, true, false)]);
        let reasons: Vec<&str> = out.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 8, "{reasons:?}");
        assert!(
            reasons[0].starts_with("unrecognised answer \"0 g\""),
            "{reasons:?}"
        );
        assert!(
            reasons[1].starts_with("7 bytes of noise before an answer"),
            "{reasons:?}"
        );
        assert!(
            reasons[2].starts_with("unit \"pcs\" is not a mass unit"),
            "{reasons:?}"
        );
        assert!(
            reasons[3].starts_with("weight \"1.0x\" is not a number"),
            "{reasons:?}"
        );
        assert!(
            reasons[4].contains("is not `S S|D <weight> <unit>`"),
            "{reasons:?}"
        );
        assert!(reasons[5].starts_with("unrecognised answer"), "{reasons:?}");
        assert!(reasons[6].starts_with("unrecognised answer"), "{reasons:?}");
        assert!(
            reasons[7].contains("exceeds the maximum of 64"),
            "{reasons:?}"
        );
        let dropped: u32 = out.rejected.iter().map(|r| r.bytes).sum();
        let expected = 5 + 7 + 19 + 18 + 5 + 13 + 19 + 82;
        assert_eq!(dropped as usize, expected);
    }

    #[test]
    fn drain_returns_partial_line() {
        let mut d = open::<MtSics>(&[]).unwrap();
        assert!(d.feed(b"S S    1").readings.is_empty());
        assert_eq!(d.drain(), b"S S    1".to_vec());
    }

    #[test]
    fn fixture_capture() {
        let out = feed_split::<MtSics>(&[], include_bytes!("../fixtures/capture.bin"));
        let kinds: Vec<String> = out
            .readings
            .iter()
            .map(|r| match &r.value {
                ReadingValue::Weight(w) if w.out_of_range => "overload".to_string(),
                ReadingValue::Weight(w) => format!("{} {}", w.kg, w.stable),
                ReadingValue::Status(s) => s.code.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "0 true",
                "8420 false",
                "14960 false",
                "14980 false",
                "busy",
                "14980 true",
                "overload",
                "14980 true",
                "syntax-error",
            ]
        );
        assert_eq!(out.rejected.len(), 1, "{:?}", out.rejected);
        let out = feed_split::<MtSics>(&[], include_bytes!("../fixtures/frames.bin"));
        let got: Vec<(f64, bool, bool)> = out.readings.iter().map(w).collect();
        assert_eq!(
            got,
            vec![
                (0.1, true, false),
                (0.10002, false, false),
                (0.0, false, true),
                (0.0, false, true)
            ]
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let e = open::<MtSics>(&[("command", "SIR")]).err().unwrap();
        assert_eq!(e, "setting `command`: expected `SI` or `S`, got \"SIR\"");
        assert!(
            open::<MtSics>(&[("report", "often")])
                .err()
                .unwrap()
                .contains("`report`")
        );
        assert!(
            open::<MtSics>(&[("poll-ms", "500")])
                .err()
                .unwrap()
                .contains("unknown setting `poll-ms`")
        );
    }
}
