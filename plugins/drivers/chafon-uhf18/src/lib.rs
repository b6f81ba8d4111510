//! Chafon UHFReader18-family UHF RFID reader driver (electronic licence plates), for both
//! inventory layouts of the family: the UHFReader18's and the UHFReader288 / CF-RU5102's.
//!
//! # Wire format
//!
//! Every frame is `Len Adr Cmd Data CRC-LSB CRC-MSB`: `Len` counts the bytes after itself,
//! the CRC is CRC-16/MCRF4XX over `Len` through `Data`, low byte first. Replies carry a status
//! byte after the command: `Len Adr reCmd Status Data CRC`. There is no sync byte, so the
//! splitter treats any byte as a possible length and lets the CRC decide.
//!
//! The driver polls with the inventory command (`04 00 01 DB 4B` for address 0). The reply
//! (`reCmd` 0x01) has status 0x01 (done), 0x02 (scan time ran out), 0x03 (more frames follow)
//! or 0x04 (reader buffer full), then the tag list. Status 0xFB means no tag. A reader
//! switched to scan (active) mode sends tags unasked as `reCmd` 0xEE, status 0x00; set
//! `poll-ms = 0` for such a reader.
//!
//! # Layouts (`layout`)
//!
//! The two halves of the family list tags differently, inside the same frame:
//!
//! | `layout` | inventory data | scan-mode data |
//! |---|---|---|
//! | `uhf18` | `Num (EPCLen EPC)…` | `EPC` |
//! | `uhfreader288` | `Ant Num (EPCLen EPC RSSI)…` | `Ant EPCLen EPC RSSI` |
//!
//! `Ant` is a bit mask (0x01 antenna 1, 0x02 antenna 2, 0x04 antenna 3, 0x08 antenna 4); the
//! top bit of a UHFReader288 `EPCLen` says the block holds the EPC followed by the 12-byte TID
//! (FastID), the other seven bits its length.
//!
//! `layout = "auto"` (the default) tells them apart by length: a frame whose tag list adds up
//! in one layout only is read in that layout, and from then on the decoder keeps that layout
//! (one decoder serves one reader). A frame that adds up in both (for example a UHFReader288
//! `Ant = 01, Num = 00` closing frame, which is also a UHFReader18 list of one empty EPC) is
//! read in the layout already seen; before one is seen it is read when both readings give the
//! same EPCs, and rejected otherwise, with a reason that says to set `layout`. Scan-mode
//! frames are told apart by parity (EPCs are whole 16-bit words, so a UHFReader18 scan frame
//! has an even data length and a UHFReader288 one an odd length) until a layout is known.
//! Set `layout` explicitly when the reader's model is known: then frames of the other layout
//! are rejected with the reason.
//!
//! # Readings
//!
//! - One [`Tag`] per EPC, EPC in upper-case hex. UHFReader18 tags carry antenna 0 (the reader
//!   reports none); UHFReader288 tags carry the antenna (1 to 4; the lowest antenna when the
//!   mask names several, all of them in the `antennas` attribute) and the raw RSSI byte in the
//!   attribute `rssi` (0 to 255, larger is stronger). `rssi_dbm` stays empty: the protocol
//!   gives that byte no unit, and a made-up dBm figure would mislead whoever compares readers.
//!   A FastID block's TID is in the attribute `tid`. Tags read in scan mode carry the
//!   attribute `mode = scan`.
//! - No reading for a no-tag reply (status 0xFB, or an inventory listing zero tags), for the
//!   "more data" status 0x03 (its tags are reported; the next frame continues the list, the
//!   last one has status 0x01), or for a frame without status byte (`Len` 4): that is a host
//!   command, e.g. our own inventory echoed by an RS-485 adapter.
//! - A [`DeviceStatus`] for every other status, with the code explained (`status` and
//!   `command` attributes in hex): scan-time overflow and buffer full are warnings sent along
//!   with the tags they list; command, length, parameter and antenna errors are faults (the
//!   reader refuses to inventory); tag-access errors are warnings; status 0x00 to a command
//!   other than inventory is an `ack`.
//! - An inventory reply whose EPC list does not add up (tag count and lengths against the data
//!   length) is rejected with the reason, although its CRC is right: its EPCs cannot be trusted.
//!
//! Every read is reported: the reader answers each poll (every 100 ms by default) with every
//! tag in the field, so a truck standing at the antenna yields a stream of identical tags. The
//! plugin has no clock and keeps no time-based de-duplication; the lane merges repeats.
//!
//! The reply's address is not checked against `address`: a driver instance serves one reader,
//! and a reader polled at the broadcast address 0xFF answers with its own address.

use kakou_plugin_sdk::prelude::*;
use kakou_plugin_sdk::proto::crc::crc16_mcrf4xx;
use kakou_plugin_sdk::wire::chafon::{self as wire, CMD_INVENTORY, CMD_SCAN_OUTPUT};

/// How often the host calls `poll`; `poll-ms` is a multiple of it.
const BASE_POLL_MS: u32 = 100;
/// Shortest frame: `Len Adr Cmd CRC CRC` (a command without data).
const MIN_FRAME: usize = 5;
/// Longest frame: a length byte of 255 plus itself.
const MAX_FRAME: usize = 256;

/// One Chafon UHFReader18-family reader.
pub struct ChafonUhf18 {
    frames: Splitter,
    inventory: Vec<u8>,
    /// Send the inventory every this many `poll` calls; 0 never.
    poll_every: u32,
    polls: u32,
    /// The layout setting.
    layout: LayoutSetting,
    /// With `layout = auto`: the layout this reader was seen to use.
    seen: Option<Layout>,
}

/// How a reader lists the tags of an inventory reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `Num (EPCLen EPC)…`.
    Uhf18,
    /// `Ant Num (EPCLen EPC RSSI)…`.
    Reader288,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Uhf18 => "uhf18",
            Layout::Reader288 => "uhfreader288",
        }
    }
}

/// The `layout` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LayoutSetting {
    Auto,
    Fixed(Layout),
}

/// One tag of an inventory reply.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry<'a> {
    epc: &'a [u8],
    /// The TID of a UHFReader288 FastID block.
    tid: Option<&'a [u8]>,
    /// The UHFReader288's raw RSSI byte.
    rssi: Option<u8>,
}

/// The tags of one inventory reply.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Inventory<'a> {
    /// The UHFReader288's antenna mask.
    antennas: Option<u8>,
    entries: Vec<Entry<'a>>,
}

impl Inventory<'_> {
    /// The EPCs that will become readings (empty EPCs are skipped).
    fn epcs(&self) -> Vec<&[u8]> {
        self.entries
            .iter()
            .map(|e| e.epc)
            .filter(|e| !e.is_empty())
            .collect()
    }
}

/// Length of a FastID block's TID.
const TID_LEN: usize = 12;

/// A UHFReader18 inventory reply's data: count, then (length in bytes, EPC) per tag.
fn parse_uhf18(data: &[u8]) -> Result<Inventory<'_>, String> {
    let Some((&count, mut rest)) = data.split_first() else {
        return Err("inventory reply without a tag count".into());
    };
    let mut entries = Vec::with_capacity(usize::from(count));
    for i in 0..count {
        let Some((&len, tail)) = rest.split_first() else {
            return Err(format!(
                "inventory reply announces {count} tags but its data ends after {i}"
            ));
        };
        let len = usize::from(len);
        if tail.len() < len {
            return Err(format!(
                "inventory reply: EPC {} announces {len} bytes, only {} follow",
                i + 1,
                tail.len()
            ));
        }
        entries.push(Entry {
            epc: &tail[..len],
            tid: None,
            rssi: None,
        });
        rest = &tail[len..];
    }
    if !rest.is_empty() {
        return Err(format!(
            "inventory reply: {} stray bytes after the {count} announced tags",
            rest.len()
        ));
    }
    Ok(Inventory {
        antennas: None,
        entries,
    })
}

/// A UHFReader288 inventory reply's data: antenna mask, count, then (length byte, EPC, RSSI)
/// per tag, the length byte's top bit flagging EPC + TID.
fn parse_288(data: &[u8]) -> Result<Inventory<'_>, String> {
    let [antennas, count, tags @ ..] = data else {
        return Err("inventory reply without antenna and tag count".into());
    };
    let (antennas, count, mut rest) = (*antennas, *count, tags);
    let mut entries = Vec::with_capacity(usize::from(count));
    for i in 0..count {
        let Some((&len_byte, tail)) = rest.split_first() else {
            return Err(format!(
                "inventory reply announces {count} tags but its data ends after {i}"
            ));
        };
        let len = usize::from(len_byte & 0x7F);
        let fast_id = len_byte & 0x80 != 0;
        if tail.len() < len + 1 {
            return Err(format!(
                "inventory reply: tag {} announces {len} bytes and an RSSI byte, only {} follow",
                i + 1,
                tail.len()
            ));
        }
        let block = &tail[..len];
        let (epc, tid) = if fast_id {
            if len < TID_LEN {
                return Err(format!(
                    "inventory reply: tag {} is flagged EPC + TID but holds only {len} bytes, \
                     less than the {TID_LEN}-byte TID",
                    i + 1
                ));
            }
            let (epc, tid) = block.split_at(len - TID_LEN);
            (epc, Some(tid))
        } else {
            (block, None)
        };
        entries.push(Entry {
            epc,
            tid,
            rssi: Some(tail[len]),
        });
        rest = &tail[len + 1..];
    }
    if !rest.is_empty() {
        return Err(format!(
            "inventory reply: {} stray bytes after the {count} announced tags",
            rest.len()
        ));
    }
    Ok(Inventory {
        antennas: Some(antennas),
        entries,
    })
}

fn parse(layout: Layout, data: &[u8]) -> Result<Inventory<'_>, String> {
    match layout {
        Layout::Uhf18 => parse_uhf18(data),
        Layout::Reader288 => parse_288(data),
    }
}

/// The layout an inventory reply's data is read in, and its tags: see the crate docs
/// ("Layouts"). `seen` is the layout this reader was seen to use; the flag says whether this
/// frame alone tells the layout (so that it may be kept for the frames after it).
fn read_inventory(
    setting: LayoutSetting,
    seen: Option<Layout>,
    data: &[u8],
) -> Result<(Layout, Inventory<'_>, bool), String> {
    if let LayoutSetting::Fixed(layout) = setting {
        return parse(layout, data)
            .map(|inv| (layout, inv, true))
            .map_err(|e| format!("{e} (layout {})", layout.name()));
    }
    match (parse_uhf18(data), parse_288(data)) {
        (Ok(a), Err(_)) => Ok((Layout::Uhf18, a, true)),
        (Err(_), Ok(b)) => Ok((Layout::Reader288, b, true)),
        (Err(a), Err(b)) => Err(format!(
            "neither layout adds up: as uhf18, {a}; as uhfreader288, {b}"
        )),
        (Ok(a), Ok(b)) => match seen {
            Some(Layout::Uhf18) => Ok((Layout::Uhf18, a, false)),
            Some(Layout::Reader288) => Ok((Layout::Reader288, b, false)),
            None if a.epcs() == b.epcs() => Ok((Layout::Uhf18, a, false)),
            None => Err(format!(
                "inventory reply adds up both as uhf18 ({} tags) and as uhfreader288 ({} tags), \
                 and no earlier frame told the layouts apart: set the device's `layout` to \
                 \"uhf18\" or \"uhfreader288\"",
                a.epcs().len(),
                b.epcs().len()
            )),
        },
    }
}

/// Whether a scan-mode frame's data is in the UHFReader288 layout `Ant EPCLen EPC RSSI`.
fn scan_is_288(setting: LayoutSetting, seen: Option<Layout>, data: &[u8]) -> bool {
    let fits = match data {
        [_, len, rest @ ..] => rest.len() == usize::from(len & 0x7F) + 1,
        _ => false,
    };
    match (setting, seen) {
        (LayoutSetting::Fixed(l), _) | (LayoutSetting::Auto, Some(l)) => l == Layout::Reader288,
        // EPCs are whole words: a UHFReader18 scan frame's data length is even.
        (LayoutSetting::Auto, None) => fits && data.len() % 2 == 1,
    }
}

/// Inventory statuses whose data is a tag list.
fn lists_tags(status: u8) -> bool {
    matches!(status, 0x01..=0x04)
}

/// Checks a candidate frame: CRC, then the tag list of an inventory reply; returns the layout
/// the frame alone shows the reader to use, if it does.
fn validate(
    frame: &[u8],
    setting: LayoutSetting,
    seen: Option<Layout>,
) -> Result<Option<Layout>, String> {
    let (body, crc) = frame.split_at(frame.len() - 2);
    let sent = u16::from_le_bytes([crc[0], crc[1]]);
    let computed = crc16_mcrf4xx(body);
    if sent != computed {
        return Err(format!(
            "CRC {computed:04X} computed, frame says {sent:04X}"
        ));
    }
    match body {
        [_, _, CMD_INVENTORY, status, data @ ..] if lists_tags(*status) => {
            read_inventory(setting, seen, data).map(|(l, _, decisive)| decisive.then_some(l))
        }
        [_, _, CMD_SCAN_OUTPUT, wire::STATUS_SUCCESS, data @ ..]
            if scan_is_288(setting, seen, data) =>
        {
            parse_288(&scan_as_inventory(data))
                .map(|_| None)
                .map_err(|e| format!("scan-mode frame, layout uhfreader288: {e}"))
        }
        _ => Ok(None),
    }
}

/// A UHFReader288 scan-mode frame's data `Ant EPCLen EPC RSSI` as the one-tag inventory data
/// `Ant 01 EPCLen EPC RSSI`.
fn scan_as_inventory(data: &[u8]) -> Vec<u8> {
    let mut listed = Vec::with_capacity(data.len() + 1);
    if let Some((ant, rest)) = data.split_first() {
        listed.extend([*ant, 1]);
        listed.extend_from_slice(rest);
    }
    listed
}

/// Level, code and explanation of a reply status.
fn explain(status: u8) -> (StatusLevel, &'static str, &'static str) {
    use StatusLevel::{Fault, Ok, Warning};
    match status {
        0x00 => (Ok, "ack", "command executed"),
        0x01 => (
            Ok,
            "inventory-done",
            "inventory finished within the scan time",
        ),
        0x02 => (
            Warning,
            "scan-time-overflow",
            "inventory scan time ran out before every tag in the field was read",
        ),
        0x03 => (Ok, "more-data", "more tags follow in the next frame"),
        0x04 => (
            Warning,
            "buffer-full",
            "more tags than the reader can store: some were not reported",
        ),
        0x05 => (
            Warning,
            "access-password-error",
            "tag access password is wrong",
        ),
        0x09 => (Warning, "kill-password-error", "tag kill password is wrong"),
        0x0A => (
            Warning,
            "kill-password-zero",
            "kill password cannot be zero",
        ),
        0x0B => (
            Warning,
            "tag-unsupported",
            "tag does not support the command",
        ),
        0x0C => (
            Warning,
            "access-password-zero",
            "access password cannot be zero for this command",
        ),
        0x0D => (
            Warning,
            "tag-protected",
            "tag is protected and cannot be set again",
        ),
        0x0E => (
            Warning,
            "tag-unprotected",
            "tag is not protected; nothing to reset",
        ),
        0x10 => (
            Warning,
            "locked-bytes",
            "some bytes are locked: write failed",
        ),
        0x11 => (Warning, "cannot-lock", "tag cannot be locked"),
        0x12 => (Warning, "already-locked", "tag is already locked"),
        0x13 => (
            Fault,
            "parameter-save-failed",
            "reader could not save its parameters",
        ),
        0x14 => (
            Warning,
            "cannot-adjust",
            "reader cannot make the adjustment",
        ),
        0x15 => (Ok, "inventory-6b-done", "ISO 18000-6B inventory finished"),
        0x16 => (
            Warning,
            "scan-time-overflow-6b",
            "ISO 18000-6B inventory scan time ran out",
        ),
        0x17 => (Ok, "more-data-6b", "more ISO 18000-6B tags follow"),
        0x18 => (
            Warning,
            "buffer-full-6b",
            "too many ISO 18000-6B tags to store",
        ),
        0x19 => (
            Warning,
            "unsupported-or-zero-password",
            "command not supported, or the access password cannot be zero",
        ),
        0xF8 => (
            Fault,
            "antenna-error",
            "antenna error detected: the antenna may be disconnected",
        ),
        0xF9 => (
            Fault,
            "command-error",
            "reader failed to execute the command",
        ),
        0xFA => (
            Warning,
            "poor-communication",
            "a tag is present but communication with it is too poor",
        ),
        0xFB => (Ok, "no-tag", "no tag in the field"),
        0xFC => (Warning, "tag-error", "the tag returned an error code"),
        0xFD => (
            Fault,
            "length-error",
            "reader says the command length is wrong",
        ),
        0xFE => (Fault, "illegal-command", "reader does not know the command"),
        0xFF => (
            Fault,
            "parameter-error",
            "reader refuses the command's parameters",
        ),
        _ => (
            Warning,
            "unknown-status",
            "status not in the UHFReader18 table",
        ),
    }
}

/// The status reading for `status` in reply to `cmd`.
fn status_reading(cmd: u8, status: u8, data: &[u8]) -> Reading {
    let (level, code, text) = explain(status);
    let mut message = format!("status 0x{status:02X} to command 0x{cmd:02X}: {text}");
    if status == 0xFC
        && let Some(tag_code) = data.first()
    {
        message.push_str(&format!(" (tag error code 0x{tag_code:02X})"));
    }
    Reading::from(DeviceStatus {
        level,
        code: code.into(),
        message,
    })
    .with("status", format!("0x{status:02X}"))
    .with("command", format!("0x{cmd:02X}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The tag reading of one inventory entry; `antennas` is the UHFReader288's antenna mask.
fn tag(entry: &Entry<'_>, antennas: Option<u8>) -> Reading {
    let antenna = match antennas {
        // Bit 0 is antenna 1; a mask naming several gives the lowest.
        Some(mask) if mask != 0 => mask.trailing_zeros() as u8 + 1,
        _ => 0,
    };
    let mut reading = Reading::from(Tag {
        epc: hex(entry.epc),
        antenna,
        rssi_dbm: None,
    });
    if let Some(mask) = antennas
        && mask.count_ones() > 1
    {
        let list: Vec<String> = (0..8)
            .filter(|bit| mask & (1 << bit) != 0)
            .map(|bit| (bit + 1).to_string())
            .collect();
        reading = reading.with("antennas", list.join(","));
    }
    if let Some(rssi) = entry.rssi {
        reading = reading.with("rssi", rssi.to_string());
    }
    if let Some(tid) = entry.tid {
        reading = reading.with("tid", hex(tid));
    }
    reading
}

impl ChafonUhf18 {
    /// Readings of one validated frame.
    fn decode(&self, frame: &[u8], out: &mut Vec<Reading>) {
        // `Len Adr reCmd Status Data CRC CRC`; a frame without status byte is a command.
        let [_, _, cmd, status, data @ .., _, _] = frame else {
            return;
        };
        let (cmd, status) = (*cmd, *status);
        match (cmd, status) {
            (CMD_INVENTORY, s) if lists_tags(s) => {
                // Validated: the list adds up in the layout chosen again here.
                if let Ok((_, inventory, _)) = read_inventory(self.layout, self.seen, data) {
                    out.extend(
                        inventory
                            .entries
                            .iter()
                            .filter(|e| !e.epc.is_empty())
                            .map(|e| tag(e, inventory.antennas)),
                    );
                }
                if matches!(s, 0x02 | 0x04) {
                    out.push(status_reading(cmd, s, data));
                }
            }
            (CMD_INVENTORY, wire::STATUS_NO_TAG) => {}
            (CMD_SCAN_OUTPUT, wire::STATUS_SUCCESS) => {
                let reading = if scan_is_288(self.layout, self.seen, data) {
                    // Validated: `Ant EPCLen EPC RSSI`, read as a one-tag inventory.
                    let listed = scan_as_inventory(data);
                    parse_288(&listed).ok().and_then(|inv| {
                        inv.entries
                            .first()
                            .filter(|e| !e.epc.is_empty())
                            .map(|e| tag(e, inv.antennas))
                    })
                } else {
                    (!data.is_empty()).then(|| {
                        tag(
                            &Entry {
                                epc: data,
                                tid: None,
                                rssi: None,
                            },
                            None,
                        )
                    })
                };
                if let Some(r) = reading {
                    out.push(r.with("mode", "scan"));
                }
            }
            (CMD_SCAN_OUTPUT, 0xEE) => out.push(
                Reading::from(DeviceStatus {
                    level: StatusLevel::Warning,
                    code: "eas-alarm".into(),
                    message: "scan mode: EAS alarm".into(),
                })
                .with("status", "0xEE")
                .with("command", "0xEE"),
            ),
            _ => out.push(status_reading(cmd, status, data)),
        }
    }
}

impl Driver for ChafonUhf18 {
    fn describe() -> DriverDescription {
        DriverDescription {
            name: "chafon-uhf18".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            device_classes: vec!["rfid".into()],
            summary: "Chafon UHFReader18-family UHF RFID readers: polled EPC inventory".into(),
            poll_interval_ms: Some(BASE_POLL_MS),
            settings: vec![
                SettingSpec::new(
                    "address",
                    Some("0"),
                    "reader address, 0 to 254, or 255 (0xFF) to broadcast; decimal or 0x hex",
                ),
                SettingSpec::new(
                    "layout",
                    Some("auto"),
                    "inventory layout: \"uhf18\" (UHFReader18: Num, EPCLen EPC per tag), \
                     \"uhfreader288\" (UHFReader288 / CF-RU5102: Ant, Num, EPCLen EPC RSSI per \
                     tag) or \"auto\" (told apart by length, then kept)",
                ),
                SettingSpec::new(
                    "poll-ms",
                    Some("100"),
                    "inventory interval in ms, rounded up to a multiple of 100; 0 = never \
                     (reader in scan mode)",
                ),
            ],
        }
    }

    fn open(config: &Config) -> Result<Self, String> {
        let address = config.byte("address", 0)?;
        let poll_ms: u32 = config.get("poll-ms", BASE_POLL_MS)?;
        if (1..BASE_POLL_MS).contains(&poll_ms) {
            return Err(format!(
                "setting `poll-ms`: {poll_ms} is below the {BASE_POLL_MS} ms the host polls at; \
                 use 0 to stop polling"
            ));
        }
        let layout = match config.text("layout").unwrap_or("auto") {
            "auto" => LayoutSetting::Auto,
            "uhf18" => LayoutSetting::Fixed(Layout::Uhf18),
            "uhfreader288" => LayoutSetting::Fixed(Layout::Reader288),
            other => {
                return Err(format!(
                    "setting `layout`: {other:?} is not a layout; expected \"uhf18\", \
                     \"uhfreader288\" or \"auto\""
                ));
            }
        };
        Ok(ChafonUhf18 {
            frames: Splitter::new(FrameSpec::LengthPrefixed {
                sync: vec![],
                len_offset: 0,
                len_adjust: 1,
                min_len: MIN_FRAME,
                max_len: MAX_FRAME,
            }),
            inventory: wire::inventory_command(address),
            poll_every: poll_ms.div_ceil(BASE_POLL_MS),
            polls: 0,
            layout,
            seen: None,
        })
    }

    fn feed(&mut self, data: &[u8]) -> FeedOutput {
        let mut out = FeedOutput::default();
        self.frames.push(data);
        let setting = self.layout;
        loop {
            let seen = &mut self.seen;
            let Some(frame) = self.frames.next_frame(|f| {
                let shown = validate(f, setting, *seen)?;
                if shown.is_some() {
                    *seen = shown;
                }
                Ok(())
            }) else {
                break;
            };
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
        due.then(|| self.inventory.clone())
    }
}

kakou_plugin_sdk::export_driver!(ChafonUhf18);

#[cfg(test)]
mod tests {
    use super::*;
    use kakou_plugin_sdk::harness::{feed_split, open};
    use kakou_plugin_sdk::wire::chafon::{
        inventory_command, inventory_reply, inventory_reply_288, no_tag_reply, reply,
    };

    /// The documented inventory command.
    const INVENTORY: [u8; 5] = [0x04, 0x00, 0x01, 0xDB, 0x4B];

    const EPC_A: [u8; 12] = [
        0xE2, 0x00, 0x00, 0x17, 0x22, 0x0B, 0x01, 0x23, 0x18, 0x60, 0x4B, 0x5A,
    ];
    const EPC_B: [u8; 12] = [
        0x30, 0x08, 0x33, 0xB2, 0xDD, 0xD9, 0x01, 0x40, 0x00, 0x00, 0x00, 0x07,
    ];

    fn epcs(out: &FeedOutput) -> Vec<String> {
        out.readings
            .iter()
            .filter_map(|r| match &r.value {
                ReadingValue::Tag(t) => {
                    assert_eq!((t.antenna, t.rssi_dbm), (0, None));
                    Some(t.epc.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// EPC, antenna and the `rssi` attribute of every tag reading.
    fn tags_288(out: &FeedOutput) -> Vec<(String, u8, Option<String>)> {
        out.readings
            .iter()
            .filter_map(|r| match &r.value {
                ReadingValue::Tag(t) => {
                    assert_eq!(t.rssi_dbm, None, "no unit for the RSSI byte: no dBm");
                    let rssi = r
                        .attributes
                        .iter()
                        .find(|a| a.key == "rssi")
                        .map(|a| a.value.clone());
                    Some((t.epc.clone(), t.antenna, rssi))
                }
                _ => None,
            })
            .collect()
    }

    fn t(epc: &str, antenna: u8, rssi: u8) -> (String, u8, Option<String>) {
        (epc.into(), antenna, Some(rssi.to_string()))
    }

    const A: &str = "E2000017220B012318604B5A";
    const B: &str = "300833B2DDD9014000000007";
    const EPC_C: [u8; 4] = [0x00, 0x32, 0x30, 0x38];

    /// A UHFReader288 answer in three frames: two tags on antenna 1 (status 0x03), one on
    /// antenna 3 (status 0x03), then the closing frame with no tag (status 0x01).
    fn reader288_answer() -> Vec<u8> {
        let mut input = inventory_reply_288(0, 0x03, 0x01, &[(EPC_A, 0x6B), (EPC_B, 0x40)]);
        input.extend(inventory_reply_288(0, 0x03, 0x04, &[(EPC_C, 0x6D)]));
        input.extend(inventory_reply_288::<[u8; 12]>(0, 0x01, 0x01, &[]));
        input
    }

    #[test]
    fn uhfreader288_multi_frame_answer_with_antenna_and_rssi() {
        for layout in ["auto", "uhfreader288"] {
            let mut input = INVENTORY.to_vec();
            input.extend(reader288_answer());
            let out = feed_split::<ChafonUhf18>(&[("layout", layout)], &input);
            assert_eq!(
                tags_288(&out),
                [t(A, 1, 0x6B), t(B, 1, 0x40), t("00323038", 3, 0x6D)],
                "{layout}"
            );
            assert_eq!(out.readings.len(), 3, "no status reading for 0x03 or 0x01");
            assert!(out.rejected.is_empty(), "{layout}: {:?}", out.rejected);
        }
    }

    #[test]
    fn uhfreader288_last_frame_can_carry_tags() {
        let mut input = inventory_reply_288(0, 0x03, 0x02, &[(EPC_A, 80)]);
        input.extend(inventory_reply_288(
            0,
            0x01,
            0x08,
            &[(EPC_B, 81), (EPC_A, 82)],
        ));
        let out = feed_split::<ChafonUhf18>(&[], &input);
        assert_eq!(tags_288(&out), [t(A, 2, 80), t(B, 4, 81), t(A, 4, 82)]);
    }

    #[test]
    fn uhfreader288_several_antennas_fast_id_and_scan_mode() {
        let mut data = vec![0x05, 1, 0x80 | 24];
        data.extend(EPC_A);
        data.extend(EPC_B); // the TID
        data.push(0x55);
        let mut input = reply(0, 0x01, 0x01, &data);
        input.extend(reply(
            0,
            0xEE,
            0x00,
            &[
                0x02, 12, 0xE2, 0, 0, 0x17, 0x22, 0x0B, 1, 0x23, 0x18, 0x60, 0x4B, 0x5A, 0x47,
            ],
        ));
        let out = feed_split::<ChafonUhf18>(&[], &input);
        assert_eq!(tags_288(&out), [t(A, 1, 0x55), t(A, 2, 0x47)]);
        let first = &out.readings[0].attributes;
        assert!(
            first.contains(&Setting::new("antennas", "1,3")),
            "{first:?}"
        );
        assert!(first.contains(&Setting::new("tid", B)), "{first:?}");
        assert!(
            out.readings[1]
                .attributes
                .contains(&Setting::new("mode", "scan"))
        );
    }

    #[test]
    fn bad_crc_in_a_uhfreader288_answer_costs_that_frame_only() {
        let mut corrupt = inventory_reply_288(0, 0x03, 0x01, &[(EPC_B, 0x40)]);
        let n = corrupt.len();
        corrupt[n - 1] ^= 0xFF;
        let mut input = inventory_reply_288(0, 0x03, 0x01, &[(EPC_A, 0x6B)]);
        input.extend(&corrupt);
        input.extend(inventory_reply_288(0, 0x01, 0x01, &[(EPC_C, 0x6D)]));
        let out = feed_split::<ChafonUhf18>(&[], &input);
        assert_eq!(tags_288(&out), [t(A, 1, 0x6B), t("00323038", 1, 0x6D)]);
        assert_eq!(out.rejected.len(), 1, "{:?}", out.rejected);
        assert!(out.rejected[0].reason.contains("CRC"), "{:?}", out.rejected);
        assert_eq!(out.rejected[0].bytes as usize, corrupt.len());
    }

    #[test]
    fn a_fixed_layout_rejects_the_other_one_with_the_reason() {
        let reader18 = inventory_reply(0, 0x01, &[EPC_A]);
        let reader288 = inventory_reply_288(0, 0x01, 0x01, &[(EPC_B, 0x40)]);
        let mut input = reader18.clone();
        input.extend(&reader288);
        // A rejected run is reported when the next frame starts.
        input.extend(no_tag_reply(0));

        let out = feed_split::<ChafonUhf18>(&[("layout", "uhf18")], &input);
        assert_eq!(epcs(&out), [A]);
        assert_eq!(out.rejected.len(), 1);
        assert!(
            out.rejected[0].reason.contains("(layout uhf18)"),
            "{:?}",
            out.rejected
        );

        let out = feed_split::<ChafonUhf18>(&[("layout", "uhfreader288")], &input);
        assert_eq!(tags_288(&out), [t(B, 1, 0x40)]);
        assert_eq!(out.rejected.len(), 1);
        assert!(
            out.rejected[0].reason.contains("(layout uhfreader288)"),
            "{:?}",
            out.rejected
        );

        // Auto reads both: each frame adds up in one layout only.
        let out = feed_split::<ChafonUhf18>(&[], &input);
        assert_eq!(out.readings.len(), 2);
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn auto_layout_keeps_what_it_saw_and_refuses_to_guess() {
        // The UHFReader288 closing frame `Ant 01, Num 00` is also a UHFReader18 list of one
        // empty EPC: no tag either way, so it is read without knowing the layout.
        let (layout, inventory, decisive) =
            read_inventory(LayoutSetting::Auto, None, &[0x01, 0x00]).unwrap();
        assert_eq!(
            (layout, inventory.epcs().len(), decisive),
            (Layout::Uhf18, 0, false)
        );

        // `02 01 02 02 AA BB` adds up both ways with different tags: as UHFReader18, EPCs
        // `02` and `AABB`; as UHFReader288, antenna 2, EPC `02AA`, RSSI 0xBB.
        let double = reply(0, 0x01, 0x01, &[0x02, 0x01, 0x02, 0x02, 0xAA, 0xBB]);
        // A rejected run is reported when the next frame starts.
        let out = feed_split::<ChafonUhf18>(&[], &[double.clone(), no_tag_reply(0)].concat());
        assert!(out.readings.is_empty());
        assert_eq!(out.rejected.len(), 1);
        assert!(
            out.rejected[0]
                .reason
                .contains("set the device's `layout` to \"uhf18\" or \"uhfreader288\""),
            "{:?}",
            out.rejected
        );

        // After a frame only one layout explains, the same bytes are read in that layout.
        let mut after_288 = inventory_reply_288(0, 0x01, 0x01, &[(EPC_A, 0x6B)]);
        after_288.extend(&double);
        let out = feed_split::<ChafonUhf18>(&[], &after_288);
        assert_eq!(tags_288(&out), [t(A, 1, 0x6B), t("02AA", 2, 0xBB)]);
        let mut after_18 = inventory_reply(0, 0x01, &[EPC_A]);
        after_18.extend(&double);
        let out = feed_split::<ChafonUhf18>(&[], &after_18);
        assert_eq!(epcs(&out), [A, "02", "AABB"]);
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn bad_layout_setting_is_refused() {
        let e = open::<ChafonUhf18>(&[("layout", "288")]).err().unwrap();
        assert!(
            e.contains("`layout`") && e.contains("\"uhfreader288\""),
            "{e}"
        );
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
    fn poll_sends_the_documented_inventory_command() {
        let mut d = open::<ChafonUhf18>(&[]).unwrap();
        assert_eq!(ChafonUhf18::describe().poll_interval_ms, Some(100));
        assert_eq!(d.poll(), Some(INVENTORY.to_vec()));
        assert_eq!(d.poll(), Some(INVENTORY.to_vec()));
        let mut d = open::<ChafonUhf18>(&[("address", "0x05")]).unwrap();
        assert_eq!(d.poll(), Some(inventory_command(5)));
        let mut d = open::<ChafonUhf18>(&[("address", "255"), ("poll-ms", "250")]).unwrap();
        let polls: Vec<bool> = (0..7).map(|_| d.poll().is_some()).collect();
        assert_eq!(polls, [true, false, false, true, false, false, true]);
        assert_eq!(inventory_command(255)[1], 0xFF);
        let mut off = open::<ChafonUhf18>(&[("poll-ms", "0")]).unwrap();
        assert!((0..5).all(|_| off.poll().is_none()));
    }

    #[test]
    fn command_echo_is_silent() {
        let out = feed_split::<ChafonUhf18>(&[], &INVENTORY);
        assert!(out.readings.is_empty() && out.rejected.is_empty());
    }

    #[test]
    fn inventory_reply_gives_one_tag_per_epc() {
        let f = inventory_reply(0, 0x01, &[EPC_A, EPC_B]);
        let out = feed_split::<ChafonUhf18>(&[], &f);
        assert_eq!(
            epcs(&out),
            ["E2000017220B012318604B5A", "300833B2DDD9014000000007"]
        );
        assert_eq!(out.readings.len(), 2);
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn no_tag_replies_give_nothing() {
        let mut input = no_tag_reply(0);
        input.extend(inventory_reply::<[u8; 12]>(0, 0x01, &[]));
        input.extend(reply(0, 0x01, 0xFB, &[0x00]));
        let out = feed_split::<ChafonUhf18>(&[], &input);
        assert!(out.readings.is_empty() && out.rejected.is_empty());
    }

    #[test]
    fn overflow_and_more_data_statuses() {
        let mut input = inventory_reply(0, 0x03, &[EPC_A]);
        input.extend(inventory_reply(0, 0x02, &[EPC_B]));
        input.extend(inventory_reply(0, 0x04, &[EPC_A]));
        let out = feed_split::<ChafonUhf18>(&[], &input);
        assert_eq!(
            epcs(&out),
            [
                "E2000017220B012318604B5A",
                "300833B2DDD9014000000007",
                "E2000017220B012318604B5A"
            ]
        );
        assert_eq!(
            statuses(&out),
            [
                (StatusLevel::Warning, "scan-time-overflow".to_string()),
                (StatusLevel::Warning, "buffer-full".to_string())
            ]
        );
        let s = &out.readings[2];
        assert!(matches!(&s.value, ReadingValue::Status(st) if st.message.contains("0x02")));
        assert!(s.attributes.contains(&Setting::new("status", "0x02")));
    }

    #[test]
    fn error_statuses_are_explained() {
        let mut input = reply(0, 0x01, 0xFE, &[]);
        input.extend(reply(0, 0x01, 0xFF, &[]));
        input.extend(reply(0, 0x00, 0xFD, &[]));
        input.extend(reply(0, 0x01, 0xFA, &[]));
        input.extend(reply(0, 0x02, 0xFC, &[0x0B]));
        input.extend(reply(0, 0x24, 0x00, &[]));
        input.extend(reply(0, 0x01, 0x77, &[]));
        let out = feed_split::<ChafonUhf18>(&[], &input);
        let s = |l, c: &str| (l, c.to_string());
        assert_eq!(
            statuses(&out),
            [
                s(StatusLevel::Fault, "illegal-command"),
                s(StatusLevel::Fault, "parameter-error"),
                s(StatusLevel::Fault, "length-error"),
                s(StatusLevel::Warning, "poor-communication"),
                s(StatusLevel::Warning, "tag-error"),
                s(StatusLevel::Ok, "ack"),
                s(StatusLevel::Warning, "unknown-status"),
            ]
        );
        let ReadingValue::Status(tag_err) = &out.readings[4].value else {
            panic!("{:?}", out.readings[4]);
        };
        assert!(
            tag_err.message.contains("tag error code 0x0B"),
            "{tag_err:?}"
        );
    }

    #[test]
    fn scan_mode_output() {
        let mut input = wire::scan_output(0, &EPC_B);
        input.extend(reply(0, 0xEE, 0xEE, &[]));
        let out = feed_split::<ChafonUhf18>(&[("poll-ms", "0")], &input);
        assert_eq!(epcs(&out), ["300833B2DDD9014000000007"]);
        assert!(
            out.readings[0]
                .attributes
                .contains(&Setting::new("mode", "scan"))
        );
        assert_eq!(
            statuses(&out),
            [(StatusLevel::Warning, "eas-alarm".to_string())]
        );
    }

    #[test]
    fn multi_frame_stream_with_every_split() {
        let mut input = INVENTORY.to_vec();
        input.extend(no_tag_reply(0));
        input.extend(&INVENTORY);
        input.extend(inventory_reply(0, 0x01, &[EPC_A]));
        input.extend(&INVENTORY);
        input.extend(inventory_reply(0, 0x01, &[EPC_A, EPC_B]));
        let out = feed_split::<ChafonUhf18>(&[], &input);
        assert_eq!(
            epcs(&out),
            [
                "E2000017220B012318604B5A",
                "E2000017220B012318604B5A",
                "300833B2DDD9014000000007"
            ]
        );
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn garbage_and_corrupt_frames_are_rejected_and_skipped() {
        let good = inventory_reply(0, 0x01, &[EPC_A]);
        let mut corrupt = inventory_reply(0, 0x01, &[EPC_B]);
        corrupt[9] ^= 0x40;
        let mut input = vec![0xEE, 0x99, 0x00];
        input.extend(&good);
        input.extend([0x13, 0x37]);
        input.extend(&corrupt);
        input.extend(&good);
        input.push(0x30); // a stray length byte: the final no-tag reply must still come out
        input.extend(no_tag_reply(0));
        let out = feed_split::<ChafonUhf18>(&[], &input);
        assert_eq!(
            epcs(&out),
            ["E2000017220B012318604B5A", "E2000017220B012318604B5A"]
        );
        assert_eq!(out.rejected.len(), 3, "{:?}", out.rejected);
        assert!(
            out.rejected[1].reason.contains("CRC") && out.rejected[1].reason.contains("computed"),
            "{:?}",
            out.rejected
        );
        let dropped: u32 = out.rejected.iter().map(|r| r.bytes).sum();
        assert_eq!(dropped as usize, 3 + 2 + corrupt.len() + 1);

        // Byte accounting: decoded + rejected + buffered = fed.
        let mut d = open::<ChafonUhf18>(&[]).unwrap();
        let mut partial = input.clone();
        partial.extend(&good[..7]);
        let out = d.feed(&partial);
        let dropped: usize = out.rejected.iter().map(|r| r.bytes as usize).sum();
        let decoded = 2 * good.len() + no_tag_reply(0).len();
        assert_eq!(decoded + dropped + d.drain().len(), partial.len());
    }

    #[test]
    fn inconsistent_epc_list_is_rejected_with_its_reason() {
        // CRC right, but the tag count announces two EPCs and only one is there.
        let mut data = vec![2, 12];
        data.extend(EPC_A);
        let bad = reply(0, 0x01, 0x01, &data);
        let mut input = bad.clone();
        input.extend(inventory_reply(0, 0x01, &[EPC_B]));
        let out = feed_split::<ChafonUhf18>(&[], &input);
        assert_eq!(epcs(&out), ["300833B2DDD9014000000007"]);
        assert_eq!(out.rejected.len(), 1);
        assert_eq!(out.rejected[0].bytes as usize, bad.len());
        assert!(
            out.rejected[0]
                .reason
                .contains("announces 2 tags but its data ends after 1"),
            "{:?}",
            out.rejected
        );
        assert_eq!(
            parse_uhf18(&[1, 2, 0xAA, 0xBB, 0xCC]),
            Err("inventory reply: 1 stray bytes after the 1 announced tags".into())
        );
        assert!(
            parse_uhf18(&[1, 5, 0xAA])
                .unwrap_err()
                .contains("announces 5 bytes")
        );
        assert!(parse_uhf18(&[]).is_err());
    }

    #[test]
    fn drain_returns_partial_frame() {
        let f = inventory_reply(0, 0x01, &[EPC_A]);
        let mut d = open::<ChafonUhf18>(&[]).unwrap();
        assert!(d.feed(&f[..8]).readings.is_empty());
        assert_eq!(d.drain(), f[..8].to_vec());
    }

    #[test]
    fn bad_settings_are_refused() {
        let err = |s: &[(&str, &str)]| open::<ChafonUhf18>(s).err().unwrap();
        assert!(err(&[("address", "300")]).contains("`address`"));
        assert!(err(&[("address", "0xGG")]).contains("`address`"));
        assert!(err(&[("poll-ms", "fast")]).contains("`poll-ms`"));
        assert!(err(&[("poll-ms", "50")]).contains("`poll-ms`"));
        assert!(err(&[("dedupe-ms", "500")]).contains("unknown setting `dedupe-ms`"));
    }

    #[test]
    fn fixture_is_the_documented_stream() {
        let fixture = include_bytes!("../fixtures/frames.bin");
        let mut expected = INVENTORY.to_vec();
        expected.extend(no_tag_reply(0));
        expected.extend(&INVENTORY);
        expected.extend(inventory_reply(0, 0x01, &[EPC_A, EPC_B]));
        expected.extend(&INVENTORY);
        expected.extend(inventory_reply(0, 0x02, &[EPC_A]));
        expected.extend(&INVENTORY);
        expected.extend(reply(0, 0x01, 0xFE, &[]));
        assert_eq!(fixture.to_vec(), expected);
        let out = feed_split::<ChafonUhf18>(&[], fixture);
        assert_eq!(out.readings.len(), 5);
    }
}
