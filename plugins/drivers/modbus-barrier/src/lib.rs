//! Barrier driven by a Modbus RTU relay board: write single coil out, echoes and exceptions in.
//!
//! # Commands (`encode`)
//!
//! Every command is one write single coil request, `Slave 05 Addr(hi, lo) Value(hi, lo)
//! CRC(lo, hi)`, CRC-16/MODBUS over the first six bytes:
//!
//! - `Open`: value `FF00` on coil `coil` of slave `slave` (`01 05 00 00 FF 00 8C 3A` with the
//!   defaults). When `pulse-ms` is above 0 the barrier controller wants a momentary contact,
//!   and `Open` is sent as `Pulse(pulse-ms)` instead (this needs `pulse-mode = device`, see below).
//! - `Close`: value `0000` on the same coil.
//! - `Pulse(ms)`: the relay on, then off again after `ms`. A driver has no clock and `encode`
//!   returns one byte string, so the off half cannot come from the driver. `pulse-mode` says
//!   who times it:
//!   - `host` (default): `Pulse(ms)` returns the **ON frame only**, exactly what `Open`
//!     returns; the host must send `encode(Close)` itself `ms` milliseconds later. The
//!     `lcus-relay` driver uses the same contract.
//!   - `device`: for boards with timed relays (the Waveshare "Modbus RTU Relay" layout, common
//!     on Chinese relay boards), `Pulse(ms)` is a "flash on" write single coil to address
//!     `0x0200 + coil` whose value is the delay in units of 100 ms, `ms` rounded **up** (1 to
//!     0x7FFF units, i.e. up to 3 276 700 ms); the board turns the relay off by itself and
//!     the host sends nothing more. Only coils 0 to 255 can be flashed this way.
//! - `Pulse(0)`, `Display` and `Custom` are refused with a message.
//!
//! # Replies (`feed`)
//!
//! Modbus RTU frames are delimited by line silence, which a driver fed byte chunks cannot see,
//! so replies are framed by their shape and CRC. A reply starts with any slave byte followed
//! by function `05` (the echo of a write single coil, 8 bytes) or `85` (its exception reply,
//! `Slave 85 Code CRC`, 5 bytes); nothing else is expected on a barrier's link. The SDK's
//! `FrameSpec` cannot express "length decided by the function code" (fixed frames need a start
//! byte, length-prefixed frames need a length byte), so this crate has its own small framer
//! with the splitter's guarantees: output independent of chunking, every byte accounted for
//! (accepted + rejected + buffered = received), noise reported with a reason. A candidate whose
//! CRC fails is dropped up to the next position where a reply could start; when that position
//! could be the candidate's last byte, the framer waits for one more byte before deciding, so a
//! corrupted reply on an otherwise quiet link is reported when the next byte arrives.
//!
//! Valid frames become [`DeviceStatus`] readings with attributes `slave`, `coil`, `state`:
//!
//! - echo of our coil: level `ok`, code `ack`, message `coil 0 on` / `coil 0 off`
//!   (`pulse-mode = device`: also `coil 0 flash on for 700 ms` for the flash address);
//! - echo of another coil on our slave: level `warning`, code `ack-other-coil` (another
//!   master or a wiring mix-up);
//! - exception: level `fault` (`warning` for 05 acknowledge and 06 busy), code naming the
//!   exception (`illegal-data-address`, …), message explaining it, attribute `exception`.
//!
//! Rejected with a reason: replies from another slave address, CRC failures, echoes whose
//! value is neither `FF00` nor `0000` (nor a flash delay in device mode), and noise. On
//! RS-485 adapters that echo their own transmission, the request comes back identical to the
//! slave's echo and is reported as an acknowledgement too; use an adapter without local echo.

use kakou_plugin_sdk::prelude::*;
use kakou_plugin_sdk::proto::crc::{append_crc16_le, crc16_modbus};

const WRITE_SINGLE_COIL: u8 = 0x05;
const WRITE_SINGLE_COIL_EXCEPTION: u8 = 0x85;
const ECHO_LEN: usize = 8;
const EXCEPTION_LEN: usize = 5;
const COIL_ON: u16 = 0xFF00;
const COIL_OFF: u16 = 0x0000;
const FLASH_ON_BASE: u16 = 0x0200;
const FLASH_OFF_BASE: u16 = 0x0400;
const MAX_FLASH_UNITS: u32 = 0x7FFF;
/// Noise is reported at the latest after this many bytes, so a flood cannot grow the buffer.
const NOISE_REPORT_LIMIT: usize = 256;

/// Who times the off half of a pulse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PulseMode {
    /// The host sends `Close` after the pulse length.
    Host,
    /// The board's timed relay ("flash on") turns the relay off.
    Device,
}

/// Total length of a reply whose function code is `function`, if it is one this driver expects.
fn reply_len(function: u8) -> Option<usize> {
    match function {
        WRITE_SINGLE_COIL => Some(ECHO_LEN),
        WRITE_SINGLE_COIL_EXCEPTION => Some(EXCEPTION_LEN),
        _ => None,
    }
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{n} bytes")
    }
}

/// One result of the reply framer.
#[derive(Debug)]
enum Cut {
    /// A frame whose CRC checks.
    Frame(Vec<u8>),
    /// Bytes dropped, and why.
    Dropped(Rejected),
}

/// Frames Modbus RTU replies to write single coil by function code and CRC.
///
/// `buf[..noise]` has been examined and starts no reply; it is reported as one run of noise
/// when the next candidate shows up (or when it reaches [`NOISE_REPORT_LIMIT`]). Every decision
/// depends only on bytes already received, never on how many arrived at once, so the frames
/// that come out do not depend on chunking.
#[derive(Debug, Default)]
struct RtuReplies {
    buf: Vec<u8>,
    noise: usize,
}

impl RtuReplies {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    fn drop_front(&mut self, bytes: usize, reason: String) -> Cut {
        self.buf.drain(..bytes);
        self.noise = 0;
        Cut::Dropped(Rejected {
            reason,
            bytes: u32::try_from(bytes).unwrap_or(u32::MAX),
        })
    }

    fn drop_noise(&mut self) -> Cut {
        let n = self.noise;
        self.drop_front(
            n,
            format!(
                "{} of noise: no reply starts there (a reply is a slave address followed by \
                 function 05 or 85)",
                plural(n)
            ),
        )
    }

    fn next(&mut self) -> Option<Cut> {
        loop {
            if self.noise >= NOISE_REPORT_LIMIT {
                return Some(self.drop_noise());
            }
            let function = *self.buf.get(self.noise + 1)?;
            let Some(len) = reply_len(function) else {
                self.noise += 1;
                continue;
            };
            if self.noise > 0 {
                return Some(self.drop_noise());
            }
            if self.buf.len() < len {
                return None;
            }
            let computed = crc16_modbus(&self.buf[..len - 2]);
            let sent = u16::from_le_bytes([self.buf[len - 2], self.buf[len - 1]]);
            if computed == sent {
                let frame = self.buf.drain(..len).collect();
                return Some(Cut::Frame(frame));
            }
            // Drop up to the next position inside the candidate where a reply could start.
            let inside = (1..len - 1).find(|&j| reply_len(self.buf[j + 1]).is_some());
            let skip = match inside {
                Some(j) => j,
                // The last byte starts a reply if the byte after it is a function code.
                None => match reply_len(*self.buf.get(len)?) {
                    Some(_) => len - 1,
                    None => len,
                },
            };
            let what = if function == WRITE_SINGLE_COIL {
                "write single coil echo"
            } else {
                "exception reply"
            };
            let reason = if skip == len {
                format!(
                    "{what} from slave {}: CRC {computed:04X} computed, frame says {sent:04X}",
                    self.buf[0]
                )
            } else {
                format!(
                    "{} dropped: a {what} starting here fails its CRC ({computed:04X} computed, \
                     frame says {sent:04X})",
                    plural(skip)
                )
            };
            return Some(self.drop_front(skip, reason));
        }
    }

    fn drain(&mut self) -> Vec<u8> {
        self.noise = 0;
        std::mem::take(&mut self.buf)
    }
}

/// Name (used as the status code) and explanation of a Modbus exception code.
fn exception_text(code: u8) -> (&'static str, &'static str) {
    match code {
        0x01 => (
            "illegal-function",
            "illegal function: the slave does not support write single coil",
        ),
        0x02 => (
            "illegal-data-address",
            "illegal data address: the slave has no such coil",
        ),
        0x03 => (
            "illegal-data-value",
            "illegal data value: the slave refused the value written",
        ),
        0x04 => (
            "slave-device-failure",
            "slave device failure: the slave failed while switching the relay",
        ),
        0x05 => (
            "acknowledge",
            "acknowledge: the slave accepted the request and is still carrying it out",
        ),
        0x06 => (
            "slave-device-busy",
            "slave device busy: the slave is processing another command, send again later",
        ),
        0x07 => (
            "negative-acknowledge",
            "negative acknowledge: the slave cannot carry the request out",
        ),
        0x08 => (
            "memory-parity-error",
            "memory parity error: the slave found corrupt memory",
        ),
        0x0A => (
            "gateway-path-unavailable",
            "gateway path unavailable: a gateway could not route the request",
        ),
        0x0B => (
            "gateway-target-failed",
            "gateway target device failed to respond",
        ),
        _ => ("exception", "unknown exception code"),
    }
}

/// A barrier on one coil of a Modbus RTU relay board.
pub struct ModbusBarrier {
    slave: u8,
    coil: u16,
    pulse_mode: PulseMode,
    pulse_ms: u32,
    replies: RtuReplies,
}

impl ModbusBarrier {
    /// A write single coil request with `value` at `address`.
    fn request(&self, address: u16, value: u16) -> Vec<u8> {
        let mut frame = vec![self.slave, WRITE_SINGLE_COIL];
        frame.extend_from_slice(&address.to_be_bytes());
        frame.extend_from_slice(&value.to_be_bytes());
        let crc = crc16_modbus(&frame);
        append_crc16_le(&mut frame, crc);
        frame
    }

    fn pulse(&self, ms: u32) -> Result<Vec<u8>, String> {
        if ms == 0 {
            return Err("Pulse(0): a pulse needs a length above 0 ms".into());
        }
        match self.pulse_mode {
            PulseMode::Host => Ok(self.request(self.coil, COIL_ON)),
            PulseMode::Device => {
                let units = ms.div_ceil(100);
                if units > MAX_FLASH_UNITS {
                    return Err(format!(
                        "Pulse({ms}): the board's timed relay counts at most {} ms",
                        MAX_FLASH_UNITS * 100
                    ));
                }
                Ok(self.request(FLASH_ON_BASE + self.coil, units as u16))
            }
        }
    }

    /// The reading for a frame whose CRC checks, or why it is rejected.
    fn decode(&self, frame: &[u8]) -> Result<Reading, String> {
        let slave = frame[0];
        if slave != self.slave {
            return Err(format!(
                "reply from slave {slave}, but this driver drives slave {}",
                self.slave
            ));
        }
        if frame[1] == WRITE_SINGLE_COIL_EXCEPTION {
            let code = frame[2];
            let (name, text) = exception_text(code);
            let level = if matches!(code, 0x05 | 0x06) {
                StatusLevel::Warning
            } else {
                StatusLevel::Fault
            };
            let status = DeviceStatus {
                level,
                code: name.into(),
                message: format!(
                    "slave {slave} refused write single coil {}: exception {code:02X} {text}",
                    self.coil
                ),
            };
            return Ok(Reading::from(status)
                .with("slave", slave)
                .with("coil", self.coil)
                .with("exception", format!("{code:02X}")));
        }
        let address = u16::from_be_bytes([frame[2], frame[3]]);
        let value = u16::from_be_bytes([frame[4], frame[5]]);
        let device = self.pulse_mode == PulseMode::Device;
        let (coil, state, delay) = match value {
            _ if device && (FLASH_ON_BASE..FLASH_ON_BASE + 0x100).contains(&address) => (
                address - FLASH_ON_BASE,
                "flash-on",
                Some(u32::from(value) * 100),
            ),
            _ if device && (FLASH_OFF_BASE..FLASH_OFF_BASE + 0x100).contains(&address) => (
                address - FLASH_OFF_BASE,
                "flash-off",
                Some(u32::from(value) * 100),
            ),
            COIL_ON => (address, "on", None),
            COIL_OFF => (address, "off", None),
            _ => {
                return Err(format!(
                    "echo for coil {address} carries value {value:04X}, neither FF00 (on) nor \
                     0000 (off)"
                ));
            }
        };
        let mut message = format!("coil {coil} {}", state.replace('-', " "));
        if let Some(ms) = delay {
            message.push_str(&format!(" for {ms} ms"));
        }
        let status = if coil == self.coil {
            DeviceStatus {
                level: StatusLevel::Ok,
                code: "ack".into(),
                message,
            }
        } else {
            DeviceStatus {
                level: StatusLevel::Warning,
                code: "ack-other-coil".into(),
                message: format!("{message} (this driver drives coil {})", self.coil),
            }
        };
        let mut reading = Reading::from(status)
            .with("slave", slave)
            .with("coil", coil)
            .with("state", state);
        if let Some(ms) = delay {
            reading = reading.with("delay-ms", ms);
        }
        Ok(reading)
    }
}

impl Driver for ModbusBarrier {
    fn describe() -> DriverDescription {
        DriverDescription {
            name: "modbus-barrier".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            device_classes: vec!["barrier".into()],
            summary: "Barrier on a Modbus RTU relay (write single coil); Pulse(ms) returns the ON \
                      frame and the host sends Close after ms (pulse-mode=host), or uses the \
                      board's timed relay (pulse-mode=device)"
                .into(),
            poll_interval_ms: None,
            settings: vec![
                SettingSpec::new(
                    "slave",
                    Some("1"),
                    "Modbus slave address of the relay board, 1 to 255",
                ),
                SettingSpec::new(
                    "coil",
                    Some("0"),
                    "coil (relay) that drives the barrier, 0-based",
                ),
                SettingSpec::new(
                    "pulse-mode",
                    Some("host"),
                    "who ends a Pulse: host (ON frame only, the host sends Close after ms) or \
                     device (the board's timed relay, write to 0x0200 + coil, 100 ms units)",
                ),
                SettingSpec::new(
                    "pulse-ms",
                    Some("0"),
                    "0: Open latches the relay on; above 0: Open is a pulse of this length \
                     (needs pulse-mode = device)",
                ),
            ],
        }
    }

    fn open(config: &Config) -> Result<Self, String> {
        let slave: u8 = config.get("slave", 1)?;
        if slave == 0 {
            return Err(
                "setting `slave`: 0 is the broadcast address, which never answers; use the \
                 board's address (1 to 255)"
                    .into(),
            );
        }
        let coil: u16 = config.get("coil", 0)?;
        let pulse_mode = match config.text("pulse-mode").unwrap_or("host").trim() {
            "host" => PulseMode::Host,
            "device" => PulseMode::Device,
            other => {
                return Err(format!(
                    "setting `pulse-mode`: {other:?} is neither \"host\" nor \"device\""
                ));
            }
        };
        let pulse_ms: u32 = config.get("pulse-ms", 0)?;
        if pulse_mode == PulseMode::Device && coil > 0xFF {
            return Err(format!(
                "setting `coil`: {coil} cannot be flashed (pulse-mode = device addresses coils 0 \
                 to 255 at 0x0200 + coil)"
            ));
        }
        if pulse_ms > 0 && pulse_mode == PulseMode::Host {
            return Err(format!(
                "setting `pulse-ms`: {pulse_ms} makes Open a pulse, which needs pulse-mode = \
                 device; with pulse-mode = host the host cannot know that Open must be followed \
                 by Close (send Pulse({pulse_ms}) instead)"
            ));
        }
        if pulse_ms.div_ceil(100) > MAX_FLASH_UNITS {
            return Err(format!(
                "setting `pulse-ms`: {pulse_ms} is longer than the board's timed relay counts \
                 ({} ms)",
                MAX_FLASH_UNITS * 100
            ));
        }
        Ok(ModbusBarrier {
            slave,
            coil,
            pulse_mode,
            pulse_ms,
            replies: RtuReplies::default(),
        })
    }

    fn feed(&mut self, data: &[u8]) -> FeedOutput {
        let mut out = FeedOutput::default();
        self.replies.push(data);
        while let Some(cut) = self.replies.next() {
            match cut {
                Cut::Frame(frame) => match self.decode(&frame) {
                    Ok(reading) => out.readings.push(reading),
                    Err(reason) => out.rejected.push(Rejected {
                        reason,
                        bytes: frame.len() as u32,
                    }),
                },
                Cut::Dropped(r) => out.rejected.push(r),
            }
        }
        out
    }

    fn drain(&mut self) -> Vec<u8> {
        self.replies.drain()
    }

    fn encode(&mut self, command: &Command) -> Result<Vec<u8>, String> {
        match command {
            Command::Open if self.pulse_ms > 0 => self.pulse(self.pulse_ms),
            Command::Open => Ok(self.request(self.coil, COIL_ON)),
            Command::Close => Ok(self.request(self.coil, COIL_OFF)),
            Command::Pulse(ms) => self.pulse(*ms),
            other => Err(format!(
                "modbus-barrier switches a relay: it takes Open, Close and Pulse, not {other:?}"
            )),
        }
    }
}

kakou_plugin_sdk::export_driver!(ModbusBarrier);

#[cfg(test)]
mod tests {
    use super::*;
    use kakou_plugin_sdk::harness::{feed_chunks, feed_split, open};
    use kakou_plugin_sdk::wire::modbus as wire;

    /// The documented request (and its echo): coil 0 of slave 1 on.
    const COIL0_ON: [u8; 8] = [0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A];

    fn statuses(out: &FeedOutput) -> Vec<(StatusLevel, String, String)> {
        out.readings
            .iter()
            .map(|r| match &r.value {
                ReadingValue::Status(s) => (s.level, s.code.clone(), s.message.clone()),
                other => panic!("unexpected reading {other:?}"),
            })
            .collect()
    }

    fn attr<'a>(r: &'a Reading, key: &str) -> Option<&'a str> {
        r.attributes
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.value.as_str())
    }

    fn dropped(out: &FeedOutput) -> usize {
        out.rejected.iter().map(|r| r.bytes as usize).sum()
    }

    #[test]
    fn documented_echo_is_an_ack() {
        assert_eq!(wire::write_single_coil(1, 0, true), COIL0_ON);
        let out = feed_split::<ModbusBarrier>(&[], &COIL0_ON);
        assert_eq!(
            statuses(&out),
            vec![(StatusLevel::Ok, "ack".into(), "coil 0 on".into())]
        );
        assert!(out.rejected.is_empty());
        let r = &out.readings[0];
        assert_eq!(attr(r, "slave"), Some("1"));
        assert_eq!(attr(r, "coil"), Some("0"));
        assert_eq!(attr(r, "state"), Some("on"));
    }

    #[test]
    fn fixture_capture_decodes() {
        let capture = include_bytes!("../fixtures/frames.bin");
        let mut expected = COIL0_ON.to_vec();
        expected.extend(wire::echo(&wire::write_single_coil(1, 0, false)));
        expected.extend(wire::exception(
            1,
            wire::WRITE_SINGLE_COIL,
            wire::ILLEGAL_DATA_ADDRESS,
        ));
        assert_eq!(capture.as_slice(), expected.as_slice());
        let out = feed_split::<ModbusBarrier>(&[], capture);
        assert_eq!(
            statuses(&out),
            vec![
                (StatusLevel::Ok, "ack".into(), "coil 0 on".into()),
                (StatusLevel::Ok, "ack".into(), "coil 0 off".into()),
                (
                    StatusLevel::Fault,
                    "illegal-data-address".into(),
                    "slave 1 refused write single coil 0: exception 02 illegal data address: the \
                     slave has no such coil"
                        .into()
                ),
            ]
        );
        assert_eq!(attr(&out.readings[2], "exception"), Some("02"));
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn stream_of_replies_on_another_slave_and_coil() {
        let settings = [("slave", "7"), ("coil", "3")];
        let mut input = wire::write_single_coil(7, 3, true);
        input.extend(wire::exception(
            7,
            wire::WRITE_SINGLE_COIL,
            wire::SLAVE_DEVICE_BUSY,
        ));
        input.extend(wire::write_single_coil(7, 2, false));
        input.extend(wire::write_single_coil(7, 3, false));
        let out = feed_split::<ModbusBarrier>(&settings, &input);
        let got = statuses(&out);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0], (StatusLevel::Ok, "ack".into(), "coil 3 on".into()));
        assert_eq!(got[1].0, StatusLevel::Warning);
        assert_eq!(got[1].1, "slave-device-busy");
        assert_eq!(
            got[2],
            (
                StatusLevel::Warning,
                "ack-other-coil".into(),
                "coil 2 off (this driver drives coil 3)".into()
            )
        );
        assert_eq!(got[3], (StatusLevel::Ok, "ack".into(), "coil 3 off".into()));
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn other_slave_and_bad_values_are_rejected_with_reasons() {
        let mut input = wire::write_single_coil(2, 0, true);
        input.extend(wire::write_single_coil_value(1, 0, 0x1234));
        input.extend(COIL0_ON);
        let out = feed_split::<ModbusBarrier>(&[], &input);
        assert_eq!(statuses(&out).len(), 1);
        assert_eq!(out.rejected.len(), 2, "{:?}", out.rejected);
        assert_eq!(
            out.rejected[0].reason,
            "reply from slave 2, but this driver drives slave 1"
        );
        assert!(
            out.rejected[1].reason.contains("value 1234"),
            "{:?}",
            out.rejected
        );
        assert_eq!(dropped(&out), 16);
    }

    #[test]
    fn garbage_and_corruption_are_skipped_and_accounted_for() {
        let mut input = b"\x00\xff\x13noise".to_vec(); // before
        input.extend(COIL0_ON);
        input.extend([0x42, 0x42]); // between
        let mut bad = wire::write_single_coil(1, 0, false);
        bad[7] ^= 0x01; // corrupted CRC
        input.extend(&bad);
        let mut split = COIL0_ON.to_vec();
        split.insert(4, 0x99); // garbage inside a frame
        input.extend(&split);
        input.extend(wire::exception(
            1,
            wire::WRITE_SINGLE_COIL,
            wire::ILLEGAL_FUNCTION,
        ));
        let out = feed_split::<ModbusBarrier>(&[], &input);
        let codes: Vec<String> = statuses(&out).into_iter().map(|s| s.1).collect();
        assert_eq!(codes, ["ack", "illegal-function"]);
        let reasons: Vec<&str> = out.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert!(reasons[0].contains("8 bytes of noise"), "{reasons:?}");
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("CRC") && r.contains("frame says")),
            "{reasons:?}"
        );
        let accepted = 8 + 5;
        let mut d = open::<ModbusBarrier>(&[]).unwrap();
        let whole = d.feed(&input);
        assert_eq!(dropped(&whole) + accepted + d.drain().len(), input.len());
        // Byte-by-byte feeding accounts for the same bytes.
        let mut d = open::<ModbusBarrier>(&[]).unwrap();
        let bytewise = feed_chunks(&mut d, &input, 1);
        assert_eq!(dropped(&bytewise) + accepted + d.drain().len(), input.len());
    }

    #[test]
    fn corrupted_reply_is_reported_with_the_crc() {
        let mut bad = COIL0_ON;
        bad[7] = 0x00;
        let mut input = bad.to_vec();
        input.extend(COIL0_ON);
        let out = feed_split::<ModbusBarrier>(&[], &input);
        assert_eq!(statuses(&out).len(), 1);
        assert_eq!(
            out.rejected[0].reason,
            "write single coil echo from slave 1: CRC 3A8C computed, frame says 008C"
        );
        assert_eq!(out.rejected[0].bytes, 8);
    }

    #[test]
    fn a_reply_hidden_in_a_truncated_one_is_found() {
        // A reply that lost its last byte, then a good one: the good one still decodes.
        let mut input = COIL0_ON[..7].to_vec();
        input.extend(COIL0_ON);
        let out = feed_split::<ModbusBarrier>(&[], &input);
        assert_eq!(statuses(&out).len(), 1);
        assert_eq!(dropped(&out), 7);
    }

    #[test]
    fn flood_of_noise_is_reported_in_bounded_runs() {
        let input = vec![0x11u8; 1000];
        let mut d = open::<ModbusBarrier>(&[]).unwrap();
        let out = d.feed(&input);
        assert!(out.readings.is_empty());
        assert!(
            out.rejected
                .iter()
                .all(|r| r.bytes as usize <= NOISE_REPORT_LIMIT)
        );
        assert_eq!(dropped(&out) + d.drain().len(), 1000);
    }

    #[test]
    fn drain_returns_partial_reply() {
        let mut d = open::<ModbusBarrier>(&[]).unwrap();
        assert!(d.feed(&COIL0_ON[..5]).readings.is_empty());
        assert_eq!(d.drain(), COIL0_ON[..5].to_vec());
        assert!(d.feed(&COIL0_ON[5..]).readings.is_empty());
    }

    #[test]
    fn encode_open_close_and_host_pulse() {
        let mut d = open::<ModbusBarrier>(&[]).unwrap();
        assert_eq!(d.encode(&Command::Open).unwrap(), COIL0_ON);
        assert_eq!(
            d.encode(&Command::Close).unwrap(),
            [0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0xCD, 0xCA]
        );
        // Host-timed pulse: the ON frame only; the host sends Close after the pulse.
        assert_eq!(d.encode(&Command::Pulse(500)).unwrap(), COIL0_ON);
        assert!(
            d.encode(&Command::Pulse(0))
                .unwrap_err()
                .contains("Pulse(0)")
        );
        let e = d.encode(&Command::Display("hello".into())).unwrap_err();
        assert!(e.contains("Open, Close and Pulse"), "{e}");

        let mut d = open::<ModbusBarrier>(&[("slave", "255"), ("coil", "513")]).unwrap();
        assert_eq!(
            d.encode(&Command::Open).unwrap(),
            wire::write_single_coil(255, 513, true)
        );
    }

    #[test]
    fn encode_device_pulse_uses_the_timed_relay() {
        let mut d = open::<ModbusBarrier>(&[("pulse-mode", "device")]).unwrap();
        // 700 ms: the vendor example `01 05 02 00 00 07 8D B0`.
        assert_eq!(
            d.encode(&Command::Pulse(700)).unwrap(),
            [0x01, 0x05, 0x02, 0x00, 0x00, 0x07, 0x8D, 0xB0]
        );
        // Rounded up to 100 ms units.
        assert_eq!(
            d.encode(&Command::Pulse(650)).unwrap(),
            wire::flash_on(1, 0, 7)
        );
        assert_eq!(
            d.encode(&Command::Pulse(1)).unwrap(),
            wire::flash_on(1, 0, 1)
        );
        assert!(d.encode(&Command::Pulse(5_000_000)).is_err());
        // Open still latches when pulse-ms is 0.
        assert_eq!(d.encode(&Command::Open).unwrap(), COIL0_ON);

        let mut d = open::<ModbusBarrier>(&[
            ("pulse-mode", "device"),
            ("pulse-ms", "1000"),
            ("coil", "2"),
        ])
        .unwrap();
        assert_eq!(d.encode(&Command::Open).unwrap(), wire::flash_on(1, 2, 10));
        assert_eq!(
            d.encode(&Command::Close).unwrap(),
            wire::write_single_coil(1, 2, false)
        );
    }

    #[test]
    fn device_mode_decodes_flash_echoes() {
        let mut input = wire::echo(&wire::flash_on(1, 0, 7));
        input.extend(wire::echo(&wire::flash_off(1, 0, 2)));
        let out = feed_split::<ModbusBarrier>(&[("pulse-mode", "device")], &input);
        assert_eq!(
            statuses(&out),
            vec![
                (
                    StatusLevel::Ok,
                    "ack".into(),
                    "coil 0 flash on for 700 ms".into()
                ),
                (
                    StatusLevel::Ok,
                    "ack".into(),
                    "coil 0 flash off for 200 ms".into()
                ),
            ]
        );
        assert_eq!(attr(&out.readings[0], "delay-ms"), Some("700"));
        // In host mode the same echo is not an on/off value and is rejected.
        let host = feed_split::<ModbusBarrier>(&[], &input);
        assert!(host.readings.is_empty());
        assert_eq!(host.rejected.len(), 2);
    }

    #[test]
    fn bad_settings_are_refused() {
        let err = |s: &[(&str, &str)]| open::<ModbusBarrier>(s).err().unwrap();
        assert!(err(&[("slave", "0")]).contains("`slave`"));
        assert!(err(&[("slave", "256")]).contains("`slave`"));
        assert!(err(&[("coil", "-1")]).contains("`coil`"));
        assert!(err(&[("pulse-mode", "timer")]).contains("`pulse-mode`"));
        assert!(err(&[("pulse-ms", "500")]).contains("pulse-mode = device"));
        assert!(err(&[("pulse-mode", "device"), ("coil", "300")]).contains("`coil`"));
        assert!(err(&[("pulse-mode", "device"), ("pulse-ms", "4000000")]).contains("`pulse-ms`"));
        assert!(err(&[("baud", "9600")]).contains("unknown setting `baud`"));
    }
}
