//! Impinj R2000 "0xA0" serial protocol driver (the protocol of many Chinese R2000 UHF reader
//! modules), for electronic licence plates.
//!
//! # Wire format
//!
//! Every frame is `A0 Len Addr Cmd Data Check`: `Len` counts the bytes after itself, `Check`
//! is the two's complement of the 8-bit sum of the bytes before it, so a good frame sums to
//! zero. The driver polls with the real-time inventory command `A0 04 Addr 89 Repeat Check`
//! (`A0 04 01 89 01 D1` by default). The reader answers with `Cmd` 0x89 frames:
//!
//! - a tag report per tag read, `Data = FreqAnt PC(2) EPC RSSI`: antenna in the low 2 bits of
//!   `FreqAnt` (0-based on the wire), frequency channel in its high 6 bits, the Gen2 PC word,
//!   the EPC, and the RSSI byte (about value − 129 dBm);
//! - a round summary, `Data = AntID ReadRate(2) TotalRead(4)` (7 bytes);
//! - or one error code when the command failed.
//!
//! # Readings
//!
//! - One [`Tag`] per tag report: EPC in upper-case hex (every byte between the PC word and the
//!   RSSI byte), antenna 1-based, `rssi_dbm` = RSSI byte − 129, attribute `pc` (the PC word in
//!   hex). With `antennas = 8`, bit 7 of the RSSI byte selects antennas 5 to 8 (as 8-port
//!   readers send it) and the signal is taken from the low 7 bits.
//! - No reading for the round summary: it says a round ended and how many reads it had, which
//!   the tag reports already told; a status every 100 ms would only bury real events.
//! - No reading for error code 0x36 (no tag to operate on), the R2000 way of saying "nothing
//!   in the field", nor for a frame identical to the poll command (our own command echoed by a
//!   half-duplex RS-485 adapter; with a `repeat` equal to an error code the echo would
//!   otherwise read as that error).
//! - A [`DeviceStatus`] for every other error code, named and explained: hardware and
//!   configuration errors (antenna missing, PLL, RF chip, parameter out of range, ...) are
//!   faults, per-round tag errors are warnings, 0x10 (success) is an `ack`.
//! - Frames for other commands (the driver sends none) produce nothing. A 0x89 frame with 0, 2
//!   or 3 data bytes fits none of the three layouts and is rejected with that reason.
//!
//! Every tag report is a reading: a standing truck produces a stream of identical tags, and
//! the plugin (no clock) leaves de-duplication to the lane. Real-time inventory works on the
//! reader's current work antenna; multi-antenna switching is configured on the reader.

use kakou_plugin_sdk::prelude::*;
use kakou_plugin_sdk::proto::checksum::{sum8, twos_complement};
use kakou_plugin_sdk::wire::impinj::{self as wire, CMD_REAL_TIME_INVENTORY, HEAD};

/// How often the host calls `poll`; `poll-ms` is a multiple of it.
const BASE_POLL_MS: u32 = 100;
/// Shortest frame: `A0 Len Addr Cmd Check`.
const MIN_FRAME: usize = 5;
/// Longest frame: a length byte of 255 plus head and itself.
const MAX_FRAME: usize = 257;
/// Data bytes of a round summary.
const SUMMARY_LEN: usize = 7;

/// One R2000 reader.
pub struct ImpinjR2000 {
    frames: Splitter,
    command: Vec<u8>,
    eight_ports: bool,
    /// Send the inventory every this many `poll` calls; 0 never.
    poll_every: u32,
    polls: u32,
}

/// Checks a candidate frame: check byte, then the layout of an inventory reply.
fn validate(frame: &[u8]) -> Result<(), String> {
    if sum8(frame) != 0 {
        let (body, check) = frame.split_at(frame.len() - 1);
        return Err(format!(
            "check byte {:02X} computed, frame says {:02X}",
            twos_complement(body),
            check[0]
        ));
    }
    let data = &frame[4..frame.len() - 1];
    if frame[3] == CMD_REAL_TIME_INVENTORY && matches!(data.len(), 0 | 2 | 3) {
        return Err(format!(
            "real-time inventory reply with {} data bytes is neither an error code (1 byte), \
             a tag report (4 or more) nor a round summary (7)",
            data.len()
        ));
    }
    Ok(())
}

/// Level, code and explanation of an R2000 error code.
fn explain(code: u8) -> (StatusLevel, &'static str, &'static str) {
    use StatusLevel::{Fault, Ok, Warning};
    match code {
        0x10 => (Ok, "ack", "command succeeded"),
        0x11 => (Warning, "command-fail", "command failed"),
        0x20 => (Fault, "mcu-reset-error", "CPU reset error"),
        0x21 => (Fault, "cw-on-error", "cannot turn on the carrier wave"),
        0x22 => (Fault, "antenna-missing", "antenna not connected"),
        0x23 => (Fault, "write-flash-error", "flash write error"),
        0x24 => (Fault, "read-flash-error", "flash read error"),
        0x25 => (
            Fault,
            "set-output-power-error",
            "cannot set the output power",
        ),
        0x31 => (Warning, "tag-inventory-error", "error during inventory"),
        0x32 => (Warning, "tag-read-error", "error reading a tag"),
        0x33 => (Warning, "tag-write-error", "error writing a tag"),
        0x34 => (Warning, "tag-lock-error", "error locking a tag"),
        0x35 => (Warning, "tag-kill-error", "error killing a tag"),
        0x36 => (Ok, "no-tag", "no tag to operate on"),
        0x37 => (Warning, "access-fail", "tag inventoried but access failed"),
        0x38 => (Warning, "buffer-empty", "tag buffer is empty"),
        0x3C => (Warning, "nxp-command-fail", "NXP custom command failed"),
        0x40 => (
            Warning,
            "access-or-password-error",
            "access failed or wrong password",
        ),
        0x41 => (Fault, "parameter-invalid", "invalid parameter"),
        0x42 => (Fault, "word-count-too-long", "word count too long"),
        0x43 => (Fault, "membank-out-of-range", "memory bank out of range"),
        0x44 => (
            Fault,
            "lock-region-out-of-range",
            "lock region out of range",
        ),
        0x45 => (Fault, "lock-type-out-of-range", "lock type out of range"),
        0x46 => (Fault, "invalid-reader-address", "invalid reader address"),
        0x47 => (Fault, "antenna-id-out-of-range", "antenna id out of range"),
        0x48 => (
            Fault,
            "output-power-out-of-range",
            "output power out of range",
        ),
        0x49 => (
            Fault,
            "frequency-region-out-of-range",
            "frequency region out of range",
        ),
        0x4A => (Fault, "baud-rate-out-of-range", "baud rate out of range"),
        0x4B => (
            Fault,
            "beeper-mode-out-of-range",
            "beeper mode out of range",
        ),
        0x4C => (Fault, "epc-match-too-long", "EPC match too long"),
        0x4D => (Fault, "epc-match-length-error", "EPC match length wrong"),
        0x4E => (Fault, "invalid-epc-match-mode", "invalid EPC match mode"),
        0x4F => (Fault, "invalid-frequency-range", "invalid frequency range"),
        0x50 => (Warning, "no-rn16", "no RN16 received from the tag"),
        0x51 => (Fault, "invalid-drm-mode", "invalid DRM mode"),
        0x52 => (Fault, "pll-lock-fail", "PLL cannot lock"),
        0x53 => (Fault, "rf-chip-no-response", "no response from the RF chip"),
        0x54 => (
            Fault,
            "output-power-not-reached",
            "cannot reach the desired output power",
        ),
        0x55 => (
            Fault,
            "copyright-authentication-fail",
            "firmware copyright authentication failed",
        ),
        0x56 => (
            Fault,
            "spectrum-regulation-error",
            "spectrum regulation wrong",
        ),
        0x57 => (Warning, "output-power-too-low", "output power too low"),
        0xEE => (
            Fault,
            "return-loss-error",
            "cannot measure the RF port return loss",
        ),
        _ => (Fault, "unknown-error", "error code not in the R2000 table"),
    }
}

impl ImpinjR2000 {
    /// Readings of one validated frame.
    fn decode(&self, frame: &[u8], out: &mut Vec<Reading>) {
        if frame == self.command.as_slice() || frame[3] != CMD_REAL_TIME_INVENTORY {
            return;
        }
        let data = &frame[4..frame.len() - 1];
        match data {
            [code] => {
                let (level, name, text) = explain(*code);
                if *code != wire::ERR_NO_TAG {
                    out.push(
                        Reading::from(DeviceStatus {
                            level,
                            code: name.into(),
                            message: format!("error code 0x{code:02X}: {text}"),
                        })
                        .with("error-code", format!("0x{code:02X}")),
                    );
                }
            }
            _ if data.len() == SUMMARY_LEN => {}
            [freq_ant, pc_hi, pc_lo, epc @ .., rssi] => {
                if epc.is_empty() {
                    return;
                }
                let group = self.eight_ports && rssi & 0x80 != 0;
                let raw = if self.eight_ports { rssi & 0x7F } else { *rssi };
                let antenna = (freq_ant & 0x03) + 1 + if group { 4 } else { 0 };
                out.push(
                    Reading::from(Tag {
                        epc: epc.iter().map(|b| format!("{b:02X}")).collect(),
                        antenna,
                        rssi_dbm: Some(i16::from(raw) - 129),
                    })
                    .with("pc", format!("{pc_hi:02X}{pc_lo:02X}")),
                );
            }
            // Rejected by `validate`.
            _ => {}
        }
    }
}

impl Driver for ImpinjR2000 {
    fn describe() -> DriverDescription {
        DriverDescription {
            name: "impinj-r2000".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            device_classes: vec!["rfid".into()],
            summary: "Impinj R2000 modules, 0xA0 protocol: polled real-time inventory".into(),
            poll_interval_ms: Some(BASE_POLL_MS),
            settings: vec![
                SettingSpec::new(
                    "address",
                    Some("1"),
                    "reader address, 0 to 254, or 255 (0xFF) for any reader; decimal or 0x hex",
                ),
                SettingSpec::new(
                    "repeat",
                    Some("1"),
                    "inventory rounds per command (1 to 255; 255 = reader's fastest mode)",
                ),
                SettingSpec::new(
                    "poll-ms",
                    Some("100"),
                    "inventory interval in ms, rounded up to a multiple of 100; 0 = never",
                ),
                SettingSpec::new(
                    "antennas",
                    Some("4"),
                    "antenna ports: 4, or 8 (bit 7 of the RSSI byte selects antennas 5 to 8)",
                ),
            ],
        }
    }

    fn open(config: &Config) -> Result<Self, String> {
        let address = config.byte("address", 1)?;
        let repeat = config.byte("repeat", 1)?;
        if repeat == 0 {
            return Err("setting `repeat`: 0 rounds; use 1 to 255".into());
        }
        let poll_ms: u32 = config.get("poll-ms", BASE_POLL_MS)?;
        if (1..BASE_POLL_MS).contains(&poll_ms) {
            return Err(format!(
                "setting `poll-ms`: {poll_ms} is below the {BASE_POLL_MS} ms the host polls at; \
                 use 0 to stop polling"
            ));
        }
        let eight_ports = match config.get::<u8>("antennas", 4)? {
            4 => false,
            8 => true,
            n => return Err(format!("setting `antennas`: {n} ports; use 4 or 8")),
        };
        Ok(ImpinjR2000 {
            frames: Splitter::new(FrameSpec::LengthPrefixed {
                sync: vec![HEAD],
                len_offset: 1,
                len_adjust: 2,
                min_len: MIN_FRAME,
                max_len: MAX_FRAME,
            }),
            command: wire::real_time_inventory(address, repeat),
            eight_ports,
            poll_every: poll_ms.div_ceil(BASE_POLL_MS),
            polls: 0,
        })
    }

    fn feed(&mut self, data: &[u8]) -> FeedOutput {
        let mut out = FeedOutput::default();
        self.frames.push(data);
        while let Some(frame) = self.frames.next_frame(validate) {
            match frame {
                Frame::Ok(bytes) => self.decode(&bytes, &mut out.readings),
                Frame::Rejected(r) => out.rejected.push(r.into()),
            }
        }
        out
    }

    fn drain(&mut self) -> Vec<u8> {
        self.frames.drain()
    }

    fn poll(&mut self) -> Option<Vec<u8>> {
        if self.poll_every == 0 {
            return None;
        }
        let due = self.polls.is_multiple_of(self.poll_every);
        self.polls = (self.polls + 1) % self.poll_every;
        due.then(|| self.command.clone())
    }
}

kakou_plugin_sdk::export_driver!(ImpinjR2000);

#[cfg(test)]
mod tests {
    use super::*;
    use kakou_plugin_sdk::harness::{feed_split, open};
    use kakou_plugin_sdk::wire::impinj::{
        error_reply, frame, pc_for_epc, real_time_inventory, round_summary, tag_report,
    };

    /// The documented real-time inventory command.
    const INVENTORY: [u8; 6] = [0xA0, 0x04, 0x01, 0x89, 0x01, 0xD1];

    const EPC_A: [u8; 12] = [
        0xE2, 0x00, 0x00, 0x17, 0x22, 0x0B, 0x01, 0x23, 0x18, 0x60, 0x4B, 0x5A,
    ];
    const EPC_B: [u8; 12] = [
        0x30, 0x08, 0x33, 0xB2, 0xDD, 0xD9, 0x01, 0x40, 0x00, 0x00, 0x00, 0x07,
    ];

    fn tags(out: &FeedOutput) -> Vec<(String, u8, Option<i16>)> {
        out.readings
            .iter()
            .filter_map(|r| match &r.value {
                ReadingValue::Tag(t) => Some((t.epc.clone(), t.antenna, t.rssi_dbm)),
                _ => None,
            })
            .collect()
    }

    fn statuses(out: &FeedOutput) -> Vec<(StatusLevel, String)> {
        out.readings
            .iter()
            .filter_map(|r| match &r.value {
                ReadingValue::Status(s) => Some((s.level, s.code.clone())),
                _ => None,
            })
            .collect()
    }

    fn t(epc: &str, antenna: u8, rssi: i16) -> (String, u8, Option<i16>) {
        (epc.to_string(), antenna, Some(rssi))
    }

    #[test]
    fn poll_sends_the_documented_command() {
        let mut d = open::<ImpinjR2000>(&[]).unwrap();
        assert_eq!(d.poll(), Some(INVENTORY.to_vec()));
        assert_eq!(d.poll(), Some(INVENTORY.to_vec()));
        let mut d =
            open::<ImpinjR2000>(&[("address", "0xFF"), ("repeat", "5"), ("poll-ms", "200")])
                .unwrap();
        assert_eq!(d.poll(), Some(real_time_inventory(0xFF, 5)));
        assert_eq!(d.poll(), None);
        assert!(d.poll().is_some());
        let mut off = open::<ImpinjR2000>(&[("poll-ms", "0")]).unwrap();
        assert!((0..4).all(|_| off.poll().is_none()));
    }

    #[test]
    fn tag_reports_decode_antenna_rssi_and_pc() {
        let mut input = tag_report(1, 1, pc_for_epc(12), &EPC_A, -58);
        input.extend(tag_report(1, 4, 0x3000, &EPC_B, -70));
        let out = feed_split::<ImpinjR2000>(&[], &input);
        assert_eq!(
            tags(&out),
            [
                t("E2000017220B012318604B5A", 1, -58),
                t("300833B2DDD9014000000007", 4, -70)
            ]
        );
        assert!(
            out.readings[0]
                .attributes
                .contains(&Setting::new("pc", "3000"))
        );
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn eight_port_readers_use_the_rssi_high_bit() {
        let input = tag_report(1, 6, 0x3000, &EPC_A, -60);
        let eight = feed_split::<ImpinjR2000>(&[("antennas", "8")], &input);
        assert_eq!(tags(&eight), [t("E2000017220B012318604B5A", 6, -60)]);
        let four = feed_split::<ImpinjR2000>(&[], &input);
        assert_eq!(
            tags(&four),
            [t("E2000017220B012318604B5A", 2, 128 + 69 - 129)]
        );
    }

    #[test]
    fn summary_no_tag_and_echo_give_nothing() {
        let mut input = INVENTORY.to_vec();
        input.extend(round_summary(1, 1, 120, 0));
        input.extend(error_reply(1, 0x89, 0x36));
        input.extend(tag_report(1, 1, 0x0000, &[], -60)); // empty EPC
        input.extend(frame(1, 0x74, &[0x10])); // another command's ack
        let out = feed_split::<ImpinjR2000>(&[], &input);
        assert!(out.readings.is_empty(), "{:?}", out.readings);
        assert!(out.rejected.is_empty());
        // The echo is recognised by content: another repeat count is not our command.
        let mut other = open::<ImpinjR2000>(&[("repeat", "2")]).unwrap();
        let out = other.feed(&INVENTORY);
        assert_eq!(
            statuses(&out),
            [(StatusLevel::Fault, "unknown-error".into())]
        );
    }

    #[test]
    fn error_replies_become_statuses() {
        let mut input = error_reply(1, 0x89, 0x22);
        input.extend(error_reply(1, 0x89, 0x31));
        input.extend(error_reply(1, 0x89, 0x10));
        let out = feed_split::<ImpinjR2000>(&[], &input);
        assert_eq!(
            statuses(&out),
            [
                (StatusLevel::Fault, "antenna-missing".into()),
                (StatusLevel::Warning, "tag-inventory-error".into()),
                (StatusLevel::Ok, "ack".into())
            ]
        );
        let ReadingValue::Status(s) = &out.readings[0].value else {
            panic!()
        };
        assert_eq!(s.message, "error code 0x22: antenna not connected");
        assert!(
            out.readings[0]
                .attributes
                .contains(&Setting::new("error-code", "0x22"))
        );
    }

    #[test]
    fn multi_frame_stream_with_every_split() {
        let mut input = INVENTORY.to_vec();
        input.extend(tag_report(1, 1, 0x3000, &EPC_A, -55));
        input.extend(tag_report(1, 1, 0x3000, &EPC_B, -61));
        input.extend(tag_report(1, 1, 0x3000, &EPC_A, -54));
        input.extend(round_summary(1, 1, 45, 3));
        input.extend(&INVENTORY);
        input.extend(round_summary(1, 1, 0, 0));
        let out = feed_split::<ImpinjR2000>(&[], &input);
        assert_eq!(
            tags(&out),
            [
                t("E2000017220B012318604B5A", 1, -55),
                t("300833B2DDD9014000000007", 1, -61),
                t("E2000017220B012318604B5A", 1, -54)
            ]
        );
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn garbage_and_corrupt_frames_are_rejected_and_skipped() {
        let good = tag_report(1, 2, 0x3000, &EPC_A, -60);
        let mut bad = tag_report(1, 2, 0x3000, &EPC_B, -60);
        bad[8] ^= 0x21;
        let mut input = vec![0x11, 0x22, 0x33];
        input.extend(&good);
        input.extend(&bad);
        input.extend([0xA0, 0x02]); // impossible length
        input.extend(frame(1, 0x89, &[0x00, 0x30])); // checksum right, layout wrong
        input.extend(&good);
        input.extend([0xA0, 0x0A]); // stray sync: the final reply must still come out
        input.extend(error_reply(1, 0x89, 0x22));
        let out = feed_split::<ImpinjR2000>(&[], &input);
        assert_eq!(
            tags(&out),
            [
                t("E2000017220B012318604B5A", 2, -60),
                t("E2000017220B012318604B5A", 2, -60)
            ]
        );
        assert_eq!(
            statuses(&out),
            [(StatusLevel::Fault, "antenna-missing".into())]
        );
        let reasons: Vec<&str> = out.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(out.rejected.len(), 5, "{reasons:?}");
        assert!(reasons[0].contains("noise"), "{reasons:?}");
        assert!(reasons[1].starts_with("check byte"), "{reasons:?}");
        assert!(reasons[1].contains("computed, frame says"), "{reasons:?}");
        assert!(reasons[2].contains("frame length"), "{reasons:?}");
        assert!(
            reasons[3].contains("2 data bytes is neither"),
            "{reasons:?}"
        );
        assert!(reasons[4].contains("truncated"), "{reasons:?}");
        let dropped: u32 = out.rejected.iter().map(|r| r.bytes).sum();
        assert_eq!(dropped as usize, 3 + bad.len() + 2 + 7 + 2);
    }

    #[test]
    fn drain_returns_partial_frame() {
        let f = tag_report(1, 1, 0x3000, &EPC_A, -60);
        let mut d = open::<ImpinjR2000>(&[]).unwrap();
        assert!(d.feed(&f[..9]).readings.is_empty());
        assert_eq!(d.drain(), f[..9].to_vec());
    }

    #[test]
    fn bad_settings_are_refused() {
        let err = |s: &[(&str, &str)]| open::<ImpinjR2000>(s).err().unwrap();
        assert!(err(&[("address", "256")]).contains("`address`"));
        assert!(err(&[("repeat", "0")]).contains("`repeat`"));
        assert!(err(&[("repeat", "many")]).contains("`repeat`"));
        assert!(err(&[("poll-ms", "20")]).contains("`poll-ms`"));
        assert!(err(&[("antennas", "2")]).contains("`antennas`"));
        assert!(err(&[("session", "1")]).contains("unknown setting `session`"));
    }

    #[test]
    fn fixture_is_the_documented_stream() {
        let fixture = include_bytes!("../fixtures/frames.bin");
        let mut expected = INVENTORY.to_vec();
        expected.extend(tag_report(1, 1, 0x3000, &EPC_A, -58));
        expected.extend(tag_report(1, 2, 0x3000, &EPC_B, -66));
        expected.extend(round_summary(1, 1, 40, 2));
        expected.extend(&INVENTORY);
        expected.extend(error_reply(1, 0x89, 0x22));
        assert_eq!(fixture.to_vec(), expected);
        let out = feed_split::<ImpinjR2000>(&[], fixture);
        assert_eq!(out.readings.len(), 3);
    }
}
