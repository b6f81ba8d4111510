//! Barrier driven by an LCUS-type USB relay board (LC Technology LCUS-1/2/4/8, CH340 serial,
//! 9600 8N1).
//!
//! # Commands (`encode`)
//!
//! A command is 4 bytes, `A0 Relay State Sum`: relay `01`..`08`, state `01` on / `00` off, and
//! `Sum` the 8-bit sum of the first three bytes. `A0 01 01 A2` turns relay 1 on, `A0 01 00 A1`
//! turns it off, `A0 02 01 A3` turns relay 2 on.
//!
//! - `Open`: relay `relay` on. `Close`: relay `relay` off.
//! - `Pulse(ms)`: the boards have no timer and a driver has no clock, so `Pulse(ms)` returns
//!   the **ON frame only** (the same bytes as `Open`) and the host must send `encode(Close)`
//!   itself `ms` milliseconds later. This is the same contract as `modbus-barrier` with
//!   `pulse-mode = host`. `Pulse(0)` is refused.
//! - `Custom { name: "status" }`: the status query, the single byte `FF`.
//! - `Display` and other custom commands are refused with a message.
//!
//! # Replies (`feed`)
//!
//! The boards never answer commands. Multi-channel boards answer the status query `FF` with
//! one 10-byte text line per relay, `CH1: ON \r\n` or `CH1: OFF\r\n`; each line becomes a
//! [`DeviceStatus`] (level `ok`, code `relay-on` / `relay-off`, message `relay 1 on`,
//! attributes `relay`, `state`, and `barrier = true` on the line of the relay this driver
//! switches). Lines are framed by their `CH` start and `\n` end with the SDK splitter; a line
//! that is not `CHn: ON` / `CHn: OFF` is rejected with the line in the reason.
//!
//! Anything else is noise and is reported as such: some 8-channel firmware answers the
//! status query with raw bytes (`01`/`00`, one per relay), which cannot be told from line
//! noise and is not decoded. The splitter reports a run of noise when the next `CH` arrives
//! (or when its 64 KiB buffer overflows), so noise on an otherwise silent board stays
//! buffered until then; `drain` hands it back.
//!
//! With `status-query = true` the driver asks for the status on every poll (every 2 s), so the
//! host sees the relay's real state after each command; by default it never polls.
//!
//! Its manifest declares `sends = "never"`: the host cannot learn from silence whether a
//! board is there, so the device is online while its port is open and takes the commands
//! written to it, and offline when a write fails or the port goes. A site that sets
//! `status-query = true` should give the device `sends = "on-event"`, so that an unanswered
//! status query takes it offline.

use kakou_plugin_sdk::prelude::*;
use kakou_plugin_sdk::proto::checksum::sum8;

const START: u8 = 0xA0;
const STATUS_QUERY: u8 = 0xFF;
const MAX_LINE: usize = 16;
const POLL_MS: u32 = 2000;

/// Relay number and state from a status line `CHn: ON \r\n` / `CHn: OFF\r\n`.
fn parse_line(frame: &[u8]) -> Result<(u8, bool), String> {
    let bad = || {
        format!(
            "status line {:?} is neither `CHn: ON` nor `CHn: OFF`",
            String::from_utf8_lossy(frame)
        )
    };
    let line = frame.strip_suffix(b"\n").ok_or_else(bad)?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line.strip_prefix(b"CH").ok_or_else(bad)?;
    let colon = rest.iter().position(|b| *b == b':').ok_or_else(bad)?;
    let digits = &rest[..colon];
    if digits.is_empty() || digits.len() > 2 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let relay = digits.iter().fold(0u8, |acc, d| acc * 10 + (d - b'0'));
    if relay == 0 {
        return Err(format!(
            "status line names relay 0 (relays count from 1): {}",
            bad()
        ));
    }
    let state = rest[colon + 1..].trim_ascii();
    let on = if state.eq_ignore_ascii_case(b"ON") {
        true
    } else if state.eq_ignore_ascii_case(b"OFF") {
        false
    } else {
        return Err(bad());
    };
    Ok((relay, on))
}

/// A barrier on one relay of an LCUS USB relay board.
pub struct LcusRelay {
    relay: u8,
    status_query: bool,
    lines: Splitter,
}

impl LcusRelay {
    fn command(&self, on: bool) -> Vec<u8> {
        let head = [START, self.relay, u8::from(on)];
        let mut frame = head.to_vec();
        frame.push(sum8(&head));
        frame
    }
}

impl Driver for LcusRelay {
    fn describe() -> DriverDescription {
        DriverDescription {
            name: "lcus-relay".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            device_classes: vec!["barrier".into()],
            summary: "LCUS USB relay boards (A0 relay state sum); Pulse(ms) returns the ON frame \
                      and the host sends Close after ms; decodes `CHn: ON|OFF` status lines"
                .into(),
            poll_interval_ms: Some(POLL_MS),
            settings: vec![
                SettingSpec::new(
                    "relay",
                    Some("1"),
                    "relay (channel) that drives the barrier, 1 to 8",
                ),
                SettingSpec::new(
                    "status-query",
                    Some("false"),
                    "true: send the status query FF on every poll (multi-channel boards answer \
                     with CHn: ON|OFF lines)",
                ),
            ],
        }
    }

    fn open(config: &Config) -> Result<Self, String> {
        let relay: u8 = config.get("relay", 1)?;
        if !(1..=8).contains(&relay) {
            return Err(format!(
                "setting `relay`: {relay} is out of range; LCUS boards have relays 1 to 8"
            ));
        }
        let status_query: bool = config.get("status-query", false)?;
        Ok(LcusRelay {
            relay,
            status_query,
            lines: Splitter::new(FrameSpec::Delimited {
                start: Some(b"CH".to_vec()),
                end: b"\n".to_vec(),
                max_len: MAX_LINE,
            }),
        })
    }

    fn feed(&mut self, data: &[u8]) -> FeedOutput {
        let mut out = FeedOutput::default();
        self.lines.push(data);
        while let Some(frame) = self.lines.next_frame(|f| parse_line(f).map(|_| ())) {
            match frame {
                Frame::Ok(bytes) => {
                    let Ok((relay, on)) = parse_line(&bytes) else {
                        continue; // validated above
                    };
                    let state = if on { "on" } else { "off" };
                    let mut reading = Reading::from(DeviceStatus {
                        level: StatusLevel::Ok,
                        code: format!("relay-{state}"),
                        message: format!("relay {relay} {state}"),
                    })
                    .with("relay", relay)
                    .with("state", state);
                    if relay == self.relay {
                        reading = reading.with("barrier", true);
                    }
                    out.readings.push(reading);
                }
                Frame::Rejected(r) => out.rejected.push(r.into()),
            }
        }
        out
    }

    fn drain(&mut self) -> Vec<u8> {
        self.lines.drain()
    }

    fn poll(&mut self) -> Option<Vec<u8>> {
        self.status_query.then(|| vec![STATUS_QUERY])
    }

    fn encode(&mut self, command: &Command) -> Result<Vec<u8>, String> {
        match command {
            Command::Open => Ok(self.command(true)),
            Command::Close => Ok(self.command(false)),
            Command::Pulse(0) => Err("Pulse(0): a pulse needs a length above 0 ms".into()),
            // The host sends Close after `ms`: the board has no timer.
            Command::Pulse(_) => Ok(self.command(true)),
            Command::Custom(c) if c.name == "status" => Ok(vec![STATUS_QUERY]),
            other => Err(format!(
                "lcus-relay switches a relay: it takes Open, Close, Pulse and Custom \"status\", \
                 not {other:?}"
            )),
        }
    }
}

kakou_plugin_sdk::export_driver!(LcusRelay);

#[cfg(test)]
mod tests {
    use super::*;
    use kakou_plugin_sdk::harness::{feed_split, open};
    use kakou_plugin_sdk::wire::lcus as wire;

    fn states(out: &FeedOutput) -> Vec<(u8, bool)> {
        out.readings
            .iter()
            .map(|r| match &r.value {
                ReadingValue::Status(s) => {
                    let relay = r
                        .attributes
                        .iter()
                        .find(|a| a.key == "relay")
                        .map(|a| a.value.parse().unwrap())
                        .unwrap();
                    assert_eq!(s.level, StatusLevel::Ok);
                    (relay, s.code == "relay-on")
                }
                other => panic!("unexpected reading {other:?}"),
            })
            .collect()
    }

    #[test]
    fn documented_commands() {
        let capture = include_bytes!("../fixtures/commands.bin");
        assert_eq!(capture, &[0xA0, 0x01, 0x01, 0xA2, 0xA0, 0x01, 0x00, 0xA1]);
        let mut d = open::<LcusRelay>(&[]).unwrap();
        assert_eq!(d.encode(&Command::Open).unwrap(), capture[..4]);
        assert_eq!(d.encode(&Command::Close).unwrap(), capture[4..]);
        assert_eq!(d.encode(&Command::Open).unwrap(), wire::command(1, true));
    }

    #[test]
    fn other_relay_and_pulse_contract() {
        let mut d = open::<LcusRelay>(&[("relay", "2")]).unwrap();
        assert_eq!(d.encode(&Command::Open).unwrap(), [0xA0, 0x02, 0x01, 0xA3]);
        assert_eq!(d.encode(&Command::Close).unwrap(), [0xA0, 0x02, 0x00, 0xA2]);
        // Pulse: the ON frame only; the host sends Close after the pulse length.
        assert_eq!(
            d.encode(&Command::Pulse(800)).unwrap(),
            [0xA0, 0x02, 0x01, 0xA3]
        );
        assert!(
            d.encode(&Command::Pulse(0))
                .unwrap_err()
                .contains("Pulse(0)")
        );
        let status = Command::Custom(CustomCommand {
            name: "status".into(),
            args: vec![],
        });
        assert_eq!(d.encode(&status).unwrap(), [0xFF]);
        let e = d.encode(&Command::Display("x".into())).unwrap_err();
        assert!(e.contains("Open, Close, Pulse"), "{e}");
        let mut d = open::<LcusRelay>(&[("relay", "8")]).unwrap();
        assert_eq!(d.encode(&Command::Open).unwrap(), wire::command(8, true));
    }

    #[test]
    fn status_reply_fixture_decodes() {
        let capture = include_bytes!("../fixtures/status.bin");
        let mut expected = wire::status_reply(&[true, false, false, false]);
        expected.extend(wire::status_reply(&[false, false, true, false]));
        assert_eq!(capture.as_slice(), expected.as_slice());
        let out = feed_split::<LcusRelay>(&[], capture);
        assert_eq!(
            states(&out),
            vec![
                (1, true),
                (2, false),
                (3, false),
                (4, false),
                (1, false),
                (2, false),
                (3, true),
                (4, false)
            ]
        );
        assert!(out.rejected.is_empty());
        let first = &out.readings[0];
        assert!(
            first
                .attributes
                .iter()
                .any(|a| a.key == "barrier" && a.value == "true")
        );
        assert!(
            !out.readings[1]
                .attributes
                .iter()
                .any(|a| a.key == "barrier")
        );
        match &first.value {
            ReadingValue::Status(s) => assert_eq!(s.message, "relay 1 on"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn noise_and_bad_lines_are_rejected() {
        let mut input = vec![0x01, 0x00, 0x00, 0x01]; // a binary status answer
        input.extend(wire::status_line(1, true));
        input.extend(b"CH2: MAYBE\r\n");
        input.extend(b"\xA0\x01\x01\xA2"); // our own command echoed back
        input.extend(b"CH3: O");
        input.extend(wire::status_line(4, false)); // a good line inside a broken one
        let out = feed_split::<LcusRelay>(&[], &input);
        assert_eq!(states(&out), vec![(1, true), (4, false)]);
        let reasons: Vec<&str> = out.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].contains("noise"), "{reasons:?}");
        assert!(reasons[1].contains("CH2: MAYBE"), "{reasons:?}");
        assert!(reasons[2].contains("noise"), "{reasons:?}");
        let dropped: u32 = out.rejected.iter().map(|r| r.bytes).sum();
        assert_eq!(dropped as usize + 20, input.len());
    }

    #[test]
    fn noise_on_a_silent_board_waits_for_the_next_line() {
        let mut d = open::<LcusRelay>(&[]).unwrap();
        let out = d.feed(&[0x55; 200]);
        assert!(out.rejected.is_empty() && out.readings.is_empty());
        let out = d.feed(&wire::status_line(1, false));
        assert_eq!(states(&out), vec![(1, false)]);
        assert_eq!(out.rejected.len(), 1);
        assert_eq!(out.rejected[0].bytes, 200);
        assert!(d.drain().is_empty());
    }

    #[test]
    fn poll_only_when_asked() {
        let mut d = open::<LcusRelay>(&[]).unwrap();
        assert_eq!(d.poll(), None);
        let mut d = open::<LcusRelay>(&[("status-query", "true")]).unwrap();
        assert_eq!(d.poll(), Some(vec![0xFF]));
        assert_eq!(LcusRelay::describe().poll_interval_ms, Some(2000));
    }

    #[test]
    fn drain_returns_partial_line() {
        let mut d = open::<LcusRelay>(&[]).unwrap();
        assert!(d.feed(b"CH1: O").readings.is_empty());
        assert_eq!(d.drain(), b"CH1: O".to_vec());
    }

    #[test]
    fn bad_settings_are_refused() {
        let err = |s: &[(&str, &str)]| open::<LcusRelay>(s).err().unwrap();
        assert!(err(&[("relay", "0")]).contains("`relay`"));
        assert!(err(&[("relay", "9")]).contains("`relay`"));
        assert!(err(&[("relay", "one")]).contains("`relay`"));
        assert!(err(&[("status-query", "yes")]).contains("`status-query`"));
        assert!(err(&[("slave", "1")]).contains("unknown setting `slave`"));
    }
}
