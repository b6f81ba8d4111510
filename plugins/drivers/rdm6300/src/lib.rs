//! RDM6300-style 125 kHz EM4100 card reader driver.
//!
//! # Wire format
//!
//! The reader sends, unasked, one 14-byte frame per read: `STX(02)`, ten ASCII hex digits (the
//! five ID bytes: a version/customer byte, then the 32-bit card number), two ASCII hex digits
//! of checksum, `ETX(03)`. The checksum is the XOR of the five ID bytes (`check = xor`,
//! default); some clones send their 8-bit sum instead (`check = sum`). Hex digits of either
//! case are accepted.
//!
//! # Readings
//!
//! A [`Card`] per valid frame: `uid` = the ten hex digits in upper case (version byte + card
//! number), kind `Em4100`, with the attributes
//!
//! - `card-number`: the last four ID bytes in decimal, ten digits with leading zeros: the
//!   number printed on most cards and key fobs;
//! - `wiegand26`: the Wiegand-26 form also printed on many cards, `FFF,NNNNN` (third ID byte,
//!   then the last two ID bytes as one number).
//!
//! The reader repeats the frame for as long as the card stays in the field; every frame is
//! reported (the plugin has no clock) and the lane merges repeats. The reader cannot be asked
//! anything: no poll.

use kakou_plugin_sdk::prelude::*;
use kakou_plugin_sdk::proto::checksum::{decode_hex, parse_hex_pair, sum8, xor};
use kakou_plugin_sdk::wire::rdm6300::FRAME_LEN;

const STX: u8 = 0x02;
const ETX: u8 = 0x03;

/// How the checksum is formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Xor,
    Sum,
}

impl Check {
    fn of(self, id: &[u8]) -> u8 {
        match self {
            Check::Xor => xor(id),
            Check::Sum => sum8(id),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Check::Xor => "XOR",
            Check::Sum => "sum",
        }
    }
}

/// One RDM6300-style reader.
pub struct Rdm6300 {
    frames: Splitter,
    check: Check,
}

/// The five ID bytes of a frame, or why it is not one.
fn id_of(frame: &[u8], check: Check) -> Result<Vec<u8>, String> {
    let id = decode_hex(&frame[1..11]).ok_or_else(|| {
        format!(
            "card ID {:?} is not ten hex digits",
            String::from_utf8_lossy(&frame[1..11])
        )
    })?;
    let sent = parse_hex_pair(frame[11], frame[12]).ok_or_else(|| {
        format!(
            "checksum bytes {:02X} {:02X} are not hex digits",
            frame[11], frame[12]
        )
    })?;
    let computed = check.of(&id);
    if sent != computed {
        return Err(format!(
            "checksum ({}) {computed:02X} computed, frame says {sent:02X}",
            check.name()
        ));
    }
    Ok(id)
}

fn card_reading(id: &[u8]) -> Reading {
    let number = u32::from_be_bytes([id[1], id[2], id[3], id[4]]);
    let low = u16::from_be_bytes([id[3], id[4]]);
    Reading::from(Card {
        uid: id.iter().map(|b| format!("{b:02X}")).collect(),
        kind: CardKind::Em4100,
    })
    .with("card-number", format!("{number:010}"))
    .with("wiegand26", format!("{:03},{low:05}", id[2]))
}

impl Driver for Rdm6300 {
    fn describe() -> DriverDescription {
        DriverDescription {
            name: "rdm6300".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            device_classes: vec!["card-reader".into()],
            summary: "RDM6300-style 125 kHz EM4100 card readers (STX 10 hex 2 hex ETX)".into(),
            poll_interval_ms: None,
            settings: vec![SettingSpec::new(
                "check",
                Some("xor"),
                "checksum of the five ID bytes: xor (RDM6300) or sum (8-bit sum, some clones)",
            )],
        }
    }

    fn open(config: &Config) -> Result<Self, String> {
        let check = match config.text("check").map(str::trim) {
            None | Some("xor") => Check::Xor,
            Some("sum") => Check::Sum,
            Some(other) => {
                return Err(format!("setting `check`: {other:?} is not one of xor, sum"));
            }
        };
        Ok(Rdm6300 {
            frames: Splitter::new(FrameSpec::Fixed {
                start: STX,
                len: FRAME_LEN,
                end: Some(ETX),
            }),
            check,
        })
    }

    fn feed(&mut self, data: &[u8]) -> FeedOutput {
        let mut out = FeedOutput::default();
        let check = self.check;
        self.frames.push(data);
        while let Some(frame) = self.frames.next_frame(|f| id_of(f, check).map(|_| ())) {
            match frame {
                Frame::Ok(bytes) => {
                    // Validated just above.
                    if let Ok(id) = id_of(&bytes, check) {
                        out.readings.push(card_reading(&id));
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

kakou_plugin_sdk::export_driver!(Rdm6300);

#[cfg(test)]
mod tests {
    use super::*;
    use kakou_plugin_sdk::harness::{feed_split, open};
    use kakou_plugin_sdk::wire::rdm6300::{card_id, frame, frame_with_sum};

    /// `02 "62E3086CED" "08" 03`: the XOR of 62 E3 08 6C ED is 08.
    const EXAMPLE: &[u8; 14] = b"\x0262E3086CED08\x03";

    fn cards(out: &FeedOutput) -> Vec<String> {
        out.readings
            .iter()
            .map(|r| match &r.value {
                ReadingValue::Card(c) => {
                    assert_eq!(c.kind, CardKind::Em4100);
                    c.uid.clone()
                }
                other => panic!("unexpected reading {other:?}"),
            })
            .collect()
    }

    fn attr<'a>(r: &'a Reading, key: &str) -> &'a str {
        r.attributes
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.value.as_str())
            .unwrap()
    }

    #[test]
    fn documented_example() {
        assert_eq!(&frame([0x62, 0xE3, 0x08, 0x6C, 0xED]), EXAMPLE);
        let out = feed_split::<Rdm6300>(&[], EXAMPLE);
        assert_eq!(cards(&out), ["62E3086CED"]);
        assert_eq!(attr(&out.readings[0], "card-number"), "3808980205");
        assert_eq!(attr(&out.readings[0], "wiegand26"), "008,27885");
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn printed_number_and_lower_case() {
        let f = frame(card_id(0x01, 6_084_517));
        let out = feed_split::<Rdm6300>(&[], &f);
        assert_eq!(cards(&out), ["01005CD7A5"]);
        assert_eq!(attr(&out.readings[0], "card-number"), "0006084517");
        assert_eq!(attr(&out.readings[0], "wiegand26"), "092,55205");
        let lower = b"\x0262e3086ced08\x03";
        assert_eq!(cards(&feed_split::<Rdm6300>(&[], lower)), ["62E3086CED"]);
    }

    #[test]
    fn repeats_are_all_reported() {
        let input = EXAMPLE.repeat(3);
        let out = feed_split::<Rdm6300>(&[], &input);
        assert_eq!(cards(&out), ["62E3086CED"; 3]);
    }

    #[test]
    fn sum_checksum_clones() {
        let id = card_id(0x0A, 0x00C0_FFEE);
        let summed = frame_with_sum(id);
        let out = feed_split::<Rdm6300>(&[("check", "sum")], &summed);
        assert_eq!(cards(&out), ["0A00C0FFEE"]);
        // With the default the sum frame is refused, and vice versa.
        let out = feed_split::<Rdm6300>(&[], &summed);
        assert!(out.readings.is_empty());
        assert!(out.rejected[0].reason.starts_with("checksum (XOR)"));
        let out = feed_split::<Rdm6300>(&[("check", "sum")], EXAMPLE);
        assert!(out.readings.is_empty());
        assert!(out.rejected[0].reason.starts_with("checksum (sum)"));
    }

    #[test]
    fn multi_frame_stream_with_every_split() {
        let mut input = EXAMPLE.to_vec();
        input.extend(EXAMPLE);
        input.extend(frame(card_id(0x01, 6_084_517)));
        input.extend(frame(card_id(0x01, 6_084_517)));
        input.extend(EXAMPLE);
        let out = feed_split::<Rdm6300>(&[], &input);
        assert_eq!(
            cards(&out),
            [
                "62E3086CED",
                "62E3086CED",
                "01005CD7A5",
                "01005CD7A5",
                "62E3086CED"
            ]
        );
    }

    #[test]
    fn garbage_and_corrupt_frames_are_rejected_and_skipped() {
        let mut bad = *EXAMPLE;
        bad[12] = b'9';
        let mut not_hex = *EXAMPLE;
        not_hex[4] = b'Z';
        let mut no_etx = *EXAMPLE;
        no_etx[13] = b'\r';
        let mut input = b"\xff\x00noise".to_vec();
        input.extend(EXAMPLE);
        input.extend(bad);
        input.extend(not_hex);
        input.extend(no_etx);
        input.extend(EXAMPLE);
        input.extend(&EXAMPLE[..6]); // unfinished
        let out = feed_split::<Rdm6300>(&[], &input);
        assert_eq!(cards(&out), ["62E3086CED", "62E3086CED"]);
        let reasons: Vec<&str> = out.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "7 bytes of noise before frame start",
                "checksum (XOR) 08 computed, frame says 09",
                "card ID \"62EZ086CED\" is not ten hex digits",
                "missing end marker: expected 0x03, found 0x0D",
            ]
        );
        let dropped: u32 = out.rejected.iter().map(|r| r.bytes).sum();
        assert_eq!(dropped, 7 + 14 + 14 + 14);
        let mut d = open::<Rdm6300>(&[]).unwrap();
        let out = d.feed(&input);
        let dropped: usize = out.rejected.iter().map(|r| r.bytes as usize).sum();
        assert_eq!(dropped + 2 * 14 + d.drain().len(), input.len());
    }

    #[test]
    fn drain_returns_partial_frame() {
        let mut d = open::<Rdm6300>(&[]).unwrap();
        assert!(d.feed(&EXAMPLE[..9]).readings.is_empty());
        assert_eq!(d.drain(), EXAMPLE[..9].to_vec());
        assert!(d.poll().is_none());
    }

    #[test]
    fn bad_settings_are_refused() {
        let err = |s: &[(&str, &str)]| open::<Rdm6300>(s).err().unwrap();
        assert!(err(&[("check", "crc")]).contains("`check`"));
        assert!(err(&[("dedupe-ms", "500")]).contains("unknown setting `dedupe-ms`"));
    }

    #[test]
    fn fixture_is_a_card_held_then_another() {
        let fixture = include_bytes!("../fixtures/frames.bin");
        let mut expected = EXAMPLE.repeat(3);
        expected.extend(frame(card_id(0x01, 6_084_517)).repeat(2));
        assert_eq!(fixture.to_vec(), expected);
        let out = feed_split::<Rdm6300>(&[], fixture);
        assert_eq!(out.readings.len(), 5);
    }
}
