//! Chafon UHFReader18 family (and its many clones): UHF RFID readers for electronic plates.
//!
//! Frames are `Len Adr Cmd Data CRC-LSB CRC-MSB`, where `Len` counts the bytes after itself
//! and the CRC is CRC-16/MCRF4XX over `Len` through `Data`, sent low byte first. Replies put a
//! status byte after the command: `Len Adr reCmd Status Data CRC-LSB CRC-MSB`.
//!
//! The inventory command (`Cmd` 0x01) is `04 00 01 DB 4B` for address 0. Its reply carries
//! status 0x01 (done), 0x02 (scan time ran out), 0x03 (more frames follow) or 0x04 (reader
//! buffer full), then the tag count and, per tag, the EPC length in bytes and the EPC. A reader
//! that sees no tag answers status 0xFB ("no tag operable") without data. In scan mode the
//! reader sends each tag unasked as `reCmd` 0xEE, status 0x00, data = the EPC.
//!
//! The UHFReader288 / CF-RU5102 family frames the same way but lays out the inventory data
//! differently: an antenna byte (bit mask: 0x01 antenna 1, 0x02 antenna 2, 0x04 antenna 3,
//! 0x08 antenna 4) before the tag count, and an RSSI byte after each EPC
//! (`Ant Num (EPCLen EPC RSSI)…`); [`inventory_reply_288`] builds such a reply.

use crate::proto::crc::{append_crc16_le, crc16_mcrf4xx};

/// Inventory (EPC C1G2 multi-tag) command code.
pub const CMD_INVENTORY: u8 = 0x01;
/// `reCmd` of the frames a reader in scan (active) mode sends unasked.
pub const CMD_SCAN_OUTPUT: u8 = 0xEE;
/// Broadcast address: every reader on the bus answers.
pub const BROADCAST: u8 = 0xFF;

/// Status: command succeeded.
pub const STATUS_SUCCESS: u8 = 0x00;
/// Inventory status: finished within the scan time; all tags reported.
pub const STATUS_INVENTORY_DONE: u8 = 0x01;
/// Inventory status: the scan time ran out before every tag was read.
pub const STATUS_SCAN_TIME_OVERFLOW: u8 = 0x02;
/// Inventory status: more tags than fit one frame; further frames follow.
pub const STATUS_MORE_DATA: u8 = 0x03;
/// Inventory status: more tags than the reader can store.
pub const STATUS_BUFFER_FULL: u8 = 0x04;
/// Status: no tag in the field.
pub const STATUS_NO_TAG: u8 = 0xFB;

/// Largest value of the `Len` byte.
pub const MAX_LEN: usize = 255;

/// Prepends `Len` to `body` (address onwards) and appends the CRC.
///
/// # Panics
///
/// When the frame would not fit the one-byte length.
fn seal(body: &[u8]) -> Vec<u8> {
    let len = body.len() + 2;
    assert!(
        len <= MAX_LEN,
        "Chafon frame too long: Len would be {len}, at most {MAX_LEN}"
    );
    let mut frame = Vec::with_capacity(len + 1);
    frame.push(len as u8);
    frame.extend_from_slice(body);
    let crc = crc16_mcrf4xx(&frame);
    append_crc16_le(&mut frame, crc);
    frame
}

/// A host-to-reader command: `Len Adr Cmd Data CRC`.
///
/// # Panics
///
/// When `data` is longer than 251 bytes (the frame would not fit its length byte).
pub fn command(address: u8, cmd: u8, data: &[u8]) -> Vec<u8> {
    let mut body = vec![address, cmd];
    body.extend_from_slice(data);
    seal(&body)
}

/// A reader-to-host reply: `Len Adr reCmd Status Data CRC`.
///
/// # Panics
///
/// When `data` is longer than 250 bytes (the frame would not fit its length byte).
pub fn reply(address: u8, cmd: u8, status: u8, data: &[u8]) -> Vec<u8> {
    let mut body = vec![address, cmd, status];
    body.extend_from_slice(data);
    seal(&body)
}

/// The inventory command for the reader at `address`; `04 00 01 DB 4B` for address 0.
pub fn inventory_command(address: u8) -> Vec<u8> {
    command(address, CMD_INVENTORY, &[])
}

/// Data of an inventory reply: tag count, then per tag its EPC length in bytes and the EPC.
///
/// # Panics
///
/// When there are more than 255 EPCs or an EPC is longer than 255 bytes.
fn epc_list<E: AsRef<[u8]>>(epcs: &[E]) -> Vec<u8> {
    let count = u8::try_from(epcs.len()).unwrap_or_else(|_| panic!("{} EPCs", epcs.len()));
    let mut data = vec![count];
    for epc in epcs {
        let epc = epc.as_ref();
        let len = u8::try_from(epc.len()).unwrap_or_else(|_| panic!("EPC of {}", epc.len()));
        data.push(len);
        data.extend_from_slice(epc);
    }
    data
}

/// One inventory reply with `status` (normally [`STATUS_INVENTORY_DONE`]) listing `epcs`.
///
/// # Panics
///
/// When the EPCs do not fit one frame; see [`inventory_replies`] for many tags.
pub fn inventory_reply<E: AsRef<[u8]>>(address: u8, status: u8, epcs: &[E]) -> Vec<u8> {
    reply(address, CMD_INVENTORY, status, &epc_list(epcs))
}

/// One inventory reply of a UHFReader288-family reader: `Ant Num (EPCLen EPC RSSI)…`, with
/// `antenna_mask` as the reader sends it (0x01 antenna 1 … 0x08 antenna 4).
///
/// # Panics
///
/// When there are more than 255 tags, an EPC is longer than 127 bytes (the top bit of the
/// length byte flags EPC + TID), or the tags do not fit one frame.
pub fn inventory_reply_288<E: AsRef<[u8]>>(
    address: u8,
    status: u8,
    antenna_mask: u8,
    tags: &[(E, u8)],
) -> Vec<u8> {
    let count = u8::try_from(tags.len()).unwrap_or_else(|_| panic!("{} tags", tags.len()));
    let mut data = vec![antenna_mask, count];
    for (epc, rssi) in tags {
        let epc = epc.as_ref();
        assert!(epc.len() < 0x80, "EPC of {} bytes", epc.len());
        data.push(epc.len() as u8);
        data.extend_from_slice(epc);
        data.push(*rssi);
    }
    reply(address, CMD_INVENTORY, status, &data)
}

/// What a reader answers to an inventory that found `epcs`: the no-tag reply when there are
/// none, otherwise as many frames as needed, every one but the last with status
/// [`STATUS_MORE_DATA`] and the last with [`STATUS_INVENTORY_DONE`].
///
/// # Panics
///
/// When a single EPC is too long for a frame (more than 246 bytes).
pub fn inventory_replies<E: AsRef<[u8]>>(address: u8, epcs: &[E]) -> Vec<Vec<u8>> {
    if epcs.is_empty() {
        return vec![no_tag_reply(address)];
    }
    // Len = Adr reCmd Status Num (4) + entries + CRC (2).
    let room = MAX_LEN - 6;
    let mut pages: Vec<Vec<&[u8]>> = vec![Vec::new()];
    let mut used = 0;
    for epc in epcs {
        let epc = epc.as_ref();
        let need = 1 + epc.len();
        let last = pages.len() - 1;
        if used + need > room && !pages[last].is_empty() {
            pages.push(Vec::new());
            used = 0;
        }
        let last = pages.len() - 1;
        pages[last].push(epc);
        used += need;
    }
    let n = pages.len();
    pages
        .iter()
        .enumerate()
        .map(|(i, page)| {
            let status = if i + 1 == n {
                STATUS_INVENTORY_DONE
            } else {
                STATUS_MORE_DATA
            };
            inventory_reply(address, status, page)
        })
        .collect()
}

/// The reply to an inventory that found no tag: status [`STATUS_NO_TAG`], no data.
pub fn no_tag_reply(address: u8) -> Vec<u8> {
    reply(address, CMD_INVENTORY, STATUS_NO_TAG, &[])
}

/// What a reader in scan mode (EPC output) sends for one tag it sees.
///
/// # Panics
///
/// When the EPC is longer than 250 bytes.
pub fn scan_output(address: u8, epc: &[u8]) -> Vec<u8> {
    reply(address, CMD_SCAN_OUTPUT, STATUS_SUCCESS, epc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::crc::verify_crc16_le;

    const EPC: [u8; 12] = [
        0xE2, 0x00, 0x00, 0x17, 0x22, 0x0B, 0x01, 0x23, 0x18, 0x60, 0x4B, 0x5A,
    ];

    #[test]
    fn documented_inventory_command() {
        assert_eq!(inventory_command(0), [0x04, 0x00, 0x01, 0xDB, 0x4B]);
        let broadcast = inventory_command(BROADCAST);
        assert_eq!(&broadcast[..3], &[0x04, 0xFF, 0x01]);
        assert!(verify_crc16_le(&broadcast, crc16_mcrf4xx));
    }

    #[test]
    fn inventory_reply_layout() {
        let f = inventory_reply(0, STATUS_INVENTORY_DONE, &[EPC]);
        // Len Adr reCmd Status Num EPCLen EPC(12) CRC(2)
        assert_eq!(f.len(), 20);
        assert_eq!(usize::from(f[0]), f.len() - 1);
        assert_eq!(&f[1..6], &[0x00, 0x01, 0x01, 0x01, 12]);
        assert_eq!(&f[6..18], &EPC);
        assert!(verify_crc16_le(&f, crc16_mcrf4xx));
    }

    #[test]
    fn uhfreader288_reply_layout() {
        let f = inventory_reply_288(0, STATUS_MORE_DATA, 0x02, &[(EPC, 0x4B)]);
        // Len Adr reCmd Status Ant Num EPCLen EPC(12) RSSI CRC(2)
        assert_eq!(f.len(), 22);
        assert_eq!(usize::from(f[0]), f.len() - 1);
        assert_eq!(&f[1..7], &[0x00, 0x01, 0x03, 0x02, 0x01, 12]);
        assert_eq!(&f[7..19], &EPC);
        assert_eq!(f[19], 0x4B);
        assert!(verify_crc16_le(&f, crc16_mcrf4xx));
    }

    #[test]
    fn no_tag_and_scan_output() {
        let f = no_tag_reply(0);
        assert_eq!(&f[..4], &[0x05, 0x00, 0x01, 0xFB]);
        assert!(verify_crc16_le(&f, crc16_mcrf4xx));
        let s = scan_output(3, &EPC);
        assert_eq!(&s[..4], &[17, 0x03, 0xEE, 0x00]);
        assert!(verify_crc16_le(&s, crc16_mcrf4xx));
    }

    #[test]
    fn many_tags_are_paged() {
        assert_eq!(inventory_replies::<[u8; 12]>(0, &[]), vec![no_tag_reply(0)]);
        let one = inventory_replies(0, &[EPC]);
        assert_eq!(one, vec![inventory_reply(0, STATUS_INVENTORY_DONE, &[EPC])]);
        let epcs: Vec<[u8; 12]> = (0..40u8).map(|i| [i; 12]).collect();
        let frames = inventory_replies(7, &epcs);
        assert!(frames.len() > 1);
        let mut total = 0;
        for (i, f) in frames.iter().enumerate() {
            assert!(f.len() <= MAX_LEN + 1);
            assert!(verify_crc16_le(f, crc16_mcrf4xx));
            let last = i + 1 == frames.len();
            assert_eq!(f[3], if last { 0x01 } else { 0x03 });
            total += usize::from(f[4]);
        }
        assert_eq!(total, 40);
    }
}
