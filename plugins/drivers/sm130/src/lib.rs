//! SonMicro SM130 13.56 MHz card reader driver (ISO 14443 A / Mifare), UART protocol.
//!
//! # Wire format
//!
//! Frames are `FF 00 Len Cmd Data CSUM` both ways: header `FF`, reserved `00`, `Len` the
//! number of bytes in `Cmd` and `Data`, `CSUM` the 8-bit sum of `Len` through `Data`.
//! Seek for Tag (`FF 00 01 82 83`) answers `L` (0x4C, seeking) or `U` (0x55, seeking but the RF
//! field is off) at once, then `82 TagType UID` when a card enters the field; that ends the
//! seek. Select Tag (`FF 00 01 83 84`) answers at once with `83 TagType UID`, `N` (0x4E, no
//! card) or `U` (RF field off). Tag types: 0x01 Mifare Ultralight (7-byte UID), 0x02 Mifare
//! Classic 1K, 0x03 Classic 4K (4-byte UIDs), 0xFF unknown.
//!
//! # Polling: what a gate needs
//!
//! A seek reports one card and stops, so "send Seek once" would read the first driver's card
//! and then nothing more. With `poll = seek` (default) the driver therefore keeps a seek armed:
//! `poll` sends Seek for Tag at start, again on the next poll after every card reported (or
//! any answer that ends the seek), and in any case every 20 polls (5 s at the 250 ms poll
//! interval) so that a reader that was reset, power-cycled or lost a command resumes by itself;
//! a seek sent while one is pending just restarts it, so no card is missed. A card left on the
//! reader is therefore reported about every 250 ms: every read is reported and the lane merges
//! repeats (the plugin has no clock). `poll = select` sends Select Tag on every poll instead
//! (simpler, one exchange per poll, `N` when there is no card); `poll = off` sends nothing, for
//! a reader driven by something else.
//!
//! # Readings
//!
//! - A [`Card`] for every tag response (to Seek or Select): UID in upper-case hex, in the byte
//!   order the module sends (`uid-order = reversed` flips it, for sites whose card register
//!   was filled from a reader that shows the other order); kind `Iso14443a` for the Mifare
//!   types, `Other` for unknown types; attribute `tag-type` (`mifare-ultralight`,
//!   `mifare-1k`, `mifare-4k`, `unknown`, or the hex code).
//! - A tag response whose UID is not 4 or 7 bytes is rejected with that reason.
//! - No reading for `L` (seek in progress), `N` (no card) or a frame without data (an echo of a
//!   command).
//! - A [`DeviceStatus`] warning `rf-off` for `U` (the antenna is switched off: no card can be
//!   read), a warning for any other status character, and `firmware` (level ok, the version
//!   text) for the answer to Reset or Get Firmware. Answers to other commands are ignored.

use kakou_plugin_sdk::prelude::*;
use kakou_plugin_sdk::proto::checksum::sum8;
use kakou_plugin_sdk::wire::sm130::{
    self as wire, CMD_FIRMWARE, CMD_RESET, CMD_SEEK, CMD_SELECT, STATUS_IN_PROGRESS, STATUS_NO_TAG,
    STATUS_RF_OFF,
};

/// How often the host calls `poll`.
const POLL_MS: u32 = 250;
/// Re-send a pending seek after this many polls (5 s).
const REARM_POLLS: u32 = 20;
/// Shortest frame: `FF 00 01 Cmd CSUM`.
const MIN_FRAME: usize = 5;
/// Longest frame: a length byte of 255 plus header, reserved, length and CSUM.
const MAX_FRAME: usize = 259;

/// What `poll` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poll {
    Seek,
    Select,
    Off,
}

/// One SM130 module.
pub struct Sm130 {
    frames: Splitter,
    poll: Poll,
    reversed: bool,
    /// A seek was sent and has not ended.
    seeking: bool,
    /// Polls since the last seek was sent.
    idle_polls: u32,
}

/// Checks a candidate frame: CSUM, then the UID length of a tag response.
fn validate(frame: &[u8]) -> Result<(), String> {
    let (body, csum) = frame.split_at(frame.len() - 1);
    let computed = sum8(&body[2..]);
    if computed != csum[0] {
        return Err(format!(
            "CSUM {computed:02X} computed, frame says {:02X}",
            csum[0]
        ));
    }
    if let [_, _, _, CMD_SEEK | CMD_SELECT, _tag_type, uid @ ..] = body
        && !uid.is_empty()
        && !matches!(uid.len(), 4 | 7)
    {
        return Err(format!(
            "tag response with a {}-byte UID; ISO 14443 A UIDs here are 4 or 7 bytes",
            uid.len()
        ));
    }
    Ok(())
}

fn tag_type_name(tag_type: u8) -> String {
    match tag_type {
        wire::TAG_ULTRALIGHT => "mifare-ultralight".into(),
        wire::TAG_MIFARE_1K => "mifare-1k".into(),
        wire::TAG_MIFARE_4K => "mifare-4k".into(),
        wire::TAG_UNKNOWN => "unknown".into(),
        other => format!("0x{other:02X}"),
    }
}

impl Sm130 {
    /// Readings of one validated frame; updates the seek state.
    fn decode(&mut self, frame: &[u8], out: &mut Vec<Reading>) {
        let cmd = frame[3];
        let data = &frame[4..frame.len() - 1];
        match (cmd, data) {
            (CMD_SEEK | CMD_SELECT, []) => {}
            (CMD_SEEK | CMD_SELECT, [status]) => {
                let status = *status;
                match status {
                    STATUS_IN_PROGRESS | STATUS_NO_TAG => {}
                    STATUS_RF_OFF => out.push(
                        DeviceStatus {
                            level: StatusLevel::Warning,
                            code: "rf-off".into(),
                            message: "the RF field is off: no card can be read".into(),
                        }
                        .into(),
                    ),
                    other => out.push(
                        DeviceStatus {
                            level: StatusLevel::Warning,
                            code: "unexpected-status".into(),
                            message: format!(
                                "status 0x{other:02X} ({:?}) to command 0x{cmd:02X}",
                                char::from(other)
                            ),
                        }
                        .into(),
                    ),
                }
                // 'L' and 'U' leave a seek running; anything else ends it.
                if cmd == CMD_SEEK && !matches!(status, STATUS_IN_PROGRESS | STATUS_RF_OFF) {
                    self.seeking = false;
                }
            }
            (CMD_SEEK | CMD_SELECT, [tag_type, uid @ ..]) => {
                let mut uid = uid.to_vec();
                if self.reversed {
                    uid.reverse();
                }
                let kind = match *tag_type {
                    wire::TAG_ULTRALIGHT | wire::TAG_MIFARE_1K | wire::TAG_MIFARE_4K => {
                        CardKind::Iso14443a
                    }
                    _ => CardKind::Other,
                };
                out.push(
                    Reading::from(Card {
                        uid: uid.iter().map(|b| format!("{b:02X}")).collect(),
                        kind,
                    })
                    .with("tag-type", tag_type_name(*tag_type)),
                );
                if cmd == CMD_SEEK {
                    self.seeking = false;
                }
            }
            (CMD_RESET | CMD_FIRMWARE, _) => {
                // After a reset the module has forgotten any seek.
                self.seeking = false;
                if !data.is_empty() {
                    out.push(
                        DeviceStatus {
                            level: StatusLevel::Ok,
                            code: "firmware".into(),
                            message: String::from_utf8_lossy(data).trim().to_string(),
                        }
                        .into(),
                    );
                }
            }
            _ => {}
        }
    }
}

impl Driver for Sm130 {
    fn describe() -> DriverDescription {
        DriverDescription {
            name: "sm130".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            device_classes: vec!["card-reader".into()],
            summary: "SonMicro SM130 13.56 MHz Mifare card readers (FF 00 Len Cmd Data CSUM)"
                .into(),
            poll_interval_ms: Some(POLL_MS),
            settings: vec![
                SettingSpec::new(
                    "poll",
                    Some("seek"),
                    "seek: keep a Seek for Tag armed (re-sent after each card and every 5 s); \
                     select: send Select Tag every poll; off: send nothing",
                ),
                SettingSpec::new(
                    "uid-order",
                    Some("as-sent"),
                    "as-sent: UID bytes in the order the module sends them; reversed: flipped",
                ),
            ],
        }
    }

    fn open(config: &Config) -> Result<Self, String> {
        let poll = match config.text("poll").map(str::trim) {
            None | Some("seek") => Poll::Seek,
            Some("select") => Poll::Select,
            Some("off") => Poll::Off,
            Some(other) => {
                return Err(format!(
                    "setting `poll`: {other:?} is not one of seek, select, off"
                ));
            }
        };
        let reversed = match config.text("uid-order").map(str::trim) {
            None | Some("as-sent") => false,
            Some("reversed") => true,
            Some(other) => {
                return Err(format!(
                    "setting `uid-order`: {other:?} is not one of as-sent, reversed"
                ));
            }
        };
        Ok(Sm130 {
            frames: Splitter::new(FrameSpec::LengthPrefixed {
                sync: vec![0xFF, 0x00],
                len_offset: 2,
                len_adjust: 4,
                min_len: MIN_FRAME,
                max_len: MAX_FRAME,
            }),
            poll,
            reversed,
            seeking: false,
            idle_polls: 0,
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
        match self.poll {
            Poll::Off => None,
            Poll::Select => Some(wire::select_command()),
            Poll::Seek => {
                self.idle_polls += 1;
                if self.seeking && self.idle_polls < REARM_POLLS {
                    return None;
                }
                self.seeking = true;
                self.idle_polls = 0;
                Some(wire::seek_command())
            }
        }
    }
}

kakou_plugin_sdk::export_driver!(Sm130);

#[cfg(test)]
mod tests {
    use super::*;
    use kakou_plugin_sdk::harness::{feed_split, open};
    use kakou_plugin_sdk::wire::sm130::{
        firmware_response, frame, seek_command, select_command, status_response, tag_response,
    };

    /// Seek for Tag, as documented: `FF 00 01 82 83`.
    const SEEK: [u8; 5] = [0xFF, 0x00, 0x01, 0x82, 0x83];
    /// A Mifare 1K found by a seek: UID 04 A2 2B 91.
    const FOUND: [u8; 10] = [0xFF, 0x00, 0x06, 0x82, 0x02, 0x04, 0xA2, 0x2B, 0x91, 0xEC];
    const UL_UID: [u8; 7] = [0x04, 0x5F, 0x3E, 0x20, 0x3F, 0x0E, 0xAE];

    fn cards(out: &FeedOutput) -> Vec<(String, CardKind)> {
        out.readings
            .iter()
            .filter_map(|r| match &r.value {
                ReadingValue::Card(c) => Some((c.uid.clone(), c.kind)),
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

    #[test]
    fn documented_frames() {
        assert_eq!(seek_command(), SEEK);
        assert_eq!(
            tag_response(CMD_SEEK, 0x02, &[0x04, 0xA2, 0x2B, 0x91]),
            FOUND
        );
        let out = feed_split::<Sm130>(&[], &FOUND);
        assert_eq!(cards(&out), [("04A22B91".to_string(), CardKind::Iso14443a)]);
        assert!(
            out.readings[0]
                .attributes
                .contains(&Setting::new("tag-type", "mifare-1k"))
        );
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn tag_types_and_uid_lengths() {
        let mut input = tag_response(CMD_SELECT, 0x01, &UL_UID);
        input.extend(tag_response(CMD_SEEK, 0x03, &[1, 2, 3, 4]));
        input.extend(tag_response(CMD_SEEK, 0xFF, &[9, 8, 7, 6]));
        let out = feed_split::<Sm130>(&[], &input);
        assert_eq!(
            cards(&out),
            [
                ("045F3E203F0EAE".to_string(), CardKind::Iso14443a),
                ("01020304".to_string(), CardKind::Iso14443a),
                ("09080706".to_string(), CardKind::Other),
            ]
        );
        assert!(
            out.readings[2]
                .attributes
                .contains(&Setting::new("tag-type", "unknown"))
        );
        let reversed = feed_split::<Sm130>(&[("uid-order", "reversed")], &FOUND);
        assert_eq!(
            cards(&reversed),
            [("912BA204".to_string(), CardKind::Iso14443a)]
        );
    }

    #[test]
    fn status_answers() {
        let mut input = SEEK.to_vec(); // echo: nothing
        input.extend(status_response(CMD_SEEK, b'L'));
        input.extend(status_response(CMD_SELECT, b'N'));
        input.extend(status_response(CMD_SEEK, b'U'));
        input.extend(status_response(CMD_SEEK, b'X'));
        input.extend(firmware_response("UM 2.8"));
        input.extend(frame(0x90, &[0x4C])); // antenna power answer: ignored
        let out = feed_split::<Sm130>(&[], &input);
        assert_eq!(
            statuses(&out),
            [
                (StatusLevel::Warning, "rf-off".into()),
                (StatusLevel::Warning, "unexpected-status".into()),
                (StatusLevel::Ok, "firmware".into()),
            ]
        );
        let ReadingValue::Status(fw) = &out.readings[2].value else {
            panic!()
        };
        assert_eq!(fw.message, "UM 2.8");
        assert!(cards(&out).is_empty());
    }

    #[test]
    fn seek_is_kept_armed() {
        let mut d = open::<Sm130>(&[]).unwrap();
        assert_eq!(Sm130::describe().poll_interval_ms, Some(250));
        assert_eq!(d.poll(), Some(SEEK.to_vec()));
        // Seeking: the module answers 'L' and waits for a card.
        d.feed(&status_response(CMD_SEEK, b'L'));
        assert_eq!(d.poll(), None);
        assert_eq!(d.poll(), None);
        // A card ends the seek: the next poll re-arms it.
        assert_eq!(cards(&d.feed(&FOUND)).len(), 1);
        assert_eq!(d.poll(), Some(SEEK.to_vec()));
        // 'U' keeps the seek running.
        d.feed(&status_response(CMD_SEEK, b'U'));
        assert_eq!(d.poll(), None);
        // Without any answer the seek is re-sent every 20 polls (keep-alive).
        let mut d = open::<Sm130>(&[]).unwrap();
        let sent: Vec<usize> = (0..45).filter(|_| d.poll().is_some()).collect();
        assert_eq!(sent, [0, 20, 40]);
        // A reset answer means the module forgot the seek.
        let mut d = open::<Sm130>(&[]).unwrap();
        d.poll();
        d.feed(&frame(CMD_RESET, b"UM 2.8"));
        assert_eq!(d.poll(), Some(SEEK.to_vec()));
    }

    #[test]
    fn select_and_off_polling() {
        let mut d = open::<Sm130>(&[("poll", "select")]).unwrap();
        assert_eq!(d.poll(), Some(select_command()));
        assert_eq!(d.poll(), Some(select_command()));
        let mut d = open::<Sm130>(&[("poll", "off")]).unwrap();
        assert_eq!(d.poll(), None);
    }

    #[test]
    fn multi_frame_stream_with_every_split() {
        let mut input = SEEK.to_vec();
        input.extend(status_response(CMD_SEEK, b'L'));
        input.extend(FOUND);
        input.extend(&SEEK);
        input.extend(status_response(CMD_SEEK, b'L'));
        input.extend(tag_response(CMD_SEEK, 0x01, &UL_UID));
        let out = feed_split::<Sm130>(&[], &input);
        assert_eq!(
            cards(&out),
            [
                ("04A22B91".to_string(), CardKind::Iso14443a),
                ("045F3E203F0EAE".to_string(), CardKind::Iso14443a)
            ]
        );
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn garbage_and_corrupt_frames_are_rejected_and_skipped() {
        let mut bad = FOUND;
        bad[9] ^= 0x01;
        let mut input = vec![0xFF, 0xFF, 0x01];
        input.extend(FOUND);
        input.extend(bad);
        input.extend(tag_response(CMD_SEEK, 0x02, &[1, 2, 3, 4, 5])); // 5-byte UID
        input.extend([0xFF, 0x00, 0x00]); // impossible length
        input.extend(tag_response(CMD_SELECT, 0x02, &[0xDE, 0xAD, 0xBE, 0xEF]));
        input.push(0xFF); // may begin the next frame
        let out = feed_split::<Sm130>(&[], &input);
        assert_eq!(
            cards(&out),
            [
                ("04A22B91".to_string(), CardKind::Iso14443a),
                ("DEADBEEF".to_string(), CardKind::Iso14443a)
            ]
        );
        let reasons: Vec<&str> = out.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].contains("noise"), "{reasons:?}");
        assert_eq!(reasons[1], "CSUM EC computed, frame says ED");
        assert!(reasons[2].contains("5-byte UID"), "{reasons:?}");
        assert!(reasons[3].contains("frame length"), "{reasons:?}");
        let dropped: u32 = out.rejected.iter().map(|r| r.bytes).sum();
        assert_eq!(dropped, 3 + 10 + 11 + 3);
        let mut d = open::<Sm130>(&[]).unwrap();
        let out = d.feed(&input);
        let dropped: usize = out.rejected.iter().map(|r| r.bytes as usize).sum();
        assert_eq!(dropped + 10 + 10 + d.drain().len(), input.len());
    }

    #[test]
    fn drain_returns_partial_frame() {
        let mut d = open::<Sm130>(&[]).unwrap();
        assert!(d.feed(&FOUND[..6]).readings.is_empty());
        assert_eq!(d.drain(), FOUND[..6].to_vec());
    }

    #[test]
    fn bad_settings_are_refused() {
        let err = |s: &[(&str, &str)]| open::<Sm130>(s).err().unwrap();
        assert!(err(&[("poll", "always")]).contains("`poll`"));
        assert!(err(&[("uid-order", "lsb")]).contains("`uid-order`"));
        assert!(err(&[("baud", "19200")]).contains("unknown setting `baud`"));
    }

    #[test]
    fn fixture_is_the_documented_stream() {
        let fixture = include_bytes!("../fixtures/frames.bin");
        let mut expected = SEEK.to_vec();
        expected.extend(status_response(CMD_SEEK, b'L'));
        expected.extend(FOUND);
        expected.extend(&SEEK);
        expected.extend(status_response(CMD_SEEK, b'L'));
        expected.extend(tag_response(CMD_SEEK, 0x01, &UL_UID));
        expected.extend(&SEEK);
        expected.extend(status_response(CMD_SEEK, b'U'));
        assert_eq!(fixture.to_vec(), expected);
        let out = feed_split::<Sm130>(&[], fixture);
        assert_eq!(out.readings.len(), 3);
    }
}
