//! Impinj R2000 "0xA0" serial protocol, spoken by many Chinese R2000 reader modules.
//!
//! Frames are `A0 Len Addr Cmd Data Check`: `Len` counts the bytes after itself, `Check` is
//! the two's complement of the 8-bit sum of every byte before it (so a whole frame sums to
//! zero). The real-time inventory command is `A0 04 Addr 89 Repeat Check`
//! (`A0 04 01 89 01 D1` for address 1, one round). The reader answers with:
//!
//! - one tag report per tag read: `Data` = `FreqAnt PC(2) EPC RSSI`, where `FreqAnt` holds the
//!   frequency channel in its high 6 bits and the antenna (0-based) in its low 2 bits, and
//!   `RSSI` is about the value minus 129 dBm. On 8-port readers bit 7 of `RSSI` selects
//!   antennas 5 to 8 and the signal is in the low 7 bits;
//! - a round summary: `Data` = `AntID ReadRate(2) TotalRead(4)`, big-endian (7 data bytes);
//! - or, when the command fails, `Data` = one error code.

use crate::proto::checksum::twos_complement;

/// First byte of every frame.
pub const HEAD: u8 = 0xA0;
/// Real-time inventory command.
pub const CMD_REAL_TIME_INVENTORY: u8 = 0x89;
/// Public (broadcast) reader address.
pub const BROADCAST: u8 = 0xFF;
/// Error code: command succeeded.
pub const ERR_SUCCESS: u8 = 0x10;
/// Error code: antenna not connected.
pub const ERR_ANTENNA_MISSING: u8 = 0x22;
/// Error code: no tag to operate on.
pub const ERR_NO_TAG: u8 = 0x36;

/// A frame `A0 Len Addr Cmd Data Check`.
///
/// # Panics
///
/// When `data` is longer than 252 bytes (the frame would not fit its length byte).
pub fn frame(address: u8, cmd: u8, data: &[u8]) -> Vec<u8> {
    let len = data.len() + 3;
    assert!(len <= 255, "Impinj frame too long: Len would be {len}");
    let mut f = Vec::with_capacity(len + 2);
    f.extend_from_slice(&[HEAD, len as u8, address, cmd]);
    f.extend_from_slice(data);
    f.push(twos_complement(&f));
    f
}

/// The real-time inventory command: `A0 04 01 89 01 D1` for address 1 and one round.
pub fn real_time_inventory(address: u8, repeat: u8) -> Vec<u8> {
    frame(address, CMD_REAL_TIME_INVENTORY, &[repeat])
}

/// The Gen2 PC word for an EPC of `epc_len` bytes: its length in words in bits 15 to 11,
/// every other bit zero (`0x3000` for a 96-bit EPC).
pub fn pc_for_epc(epc_len: usize) -> u16 {
    (((epc_len.div_ceil(2)) as u16) & 0x1F) << 11
}

/// The raw RSSI byte for a signal of `rssi_dbm` (value − 129 dBm), clamped to 0..=127.
pub fn rssi_byte(rssi_dbm: i16) -> u8 {
    (rssi_dbm + 129).clamp(0, 127) as u8
}

/// A tag report from a real-time inventory: tag seen on `antenna` (1 to 8; 5 to 8 set bit 7
/// of the RSSI byte, as 8-port readers do) with protocol-control word `pc`, `epc` and a signal
/// of `rssi_dbm`. The frequency channel is 0.
///
/// # Panics
///
/// When `antenna` is not 1 to 8 or the EPC is longer than 248 bytes.
pub fn tag_report(address: u8, antenna: u8, pc: u16, epc: &[u8], rssi_dbm: i16) -> Vec<u8> {
    assert!(
        (1..=8).contains(&antenna),
        "antenna {antenna} is not 1 to 8"
    );
    let port = antenna - 1;
    let mut data = vec![port & 0x03];
    data.extend_from_slice(&pc.to_be_bytes());
    data.extend_from_slice(epc);
    let group = if port >= 4 { 0x80 } else { 0x00 };
    data.push(rssi_byte(rssi_dbm) | group);
    frame(address, CMD_REAL_TIME_INVENTORY, &data)
}

/// The summary that ends a real-time inventory: the antenna used (1 to 4; sent 0-based), the
/// read rate in tags per second and the number of tag reads in the round.
pub fn round_summary(address: u8, antenna: u8, read_rate: u16, total_read: u32) -> Vec<u8> {
    let mut data = vec![antenna.saturating_sub(1)];
    data.extend_from_slice(&read_rate.to_be_bytes());
    data.extend_from_slice(&total_read.to_be_bytes());
    frame(address, CMD_REAL_TIME_INVENTORY, &data)
}

/// A failed command's reply: `cmd` with one error `code` (e.g. [`ERR_ANTENNA_MISSING`]).
pub fn error_reply(address: u8, cmd: u8, code: u8) -> Vec<u8> {
    frame(address, cmd, &[code])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::checksum::sum8;

    const EPC: [u8; 12] = [
        0xE2, 0x00, 0x00, 0x17, 0x22, 0x0B, 0x01, 0x23, 0x18, 0x60, 0x4B, 0x5A,
    ];

    #[test]
    fn documented_inventory_command() {
        assert_eq!(
            real_time_inventory(1, 1),
            [0xA0, 0x04, 0x01, 0x89, 0x01, 0xD1]
        );
    }

    #[test]
    fn tag_report_layout() {
        let f = tag_report(1, 2, pc_for_epc(12), &EPC, -60);
        assert_eq!(&f[..8], &[0xA0, 19, 0x01, 0x89, 0x01, 0x30, 0x00, 0xE2]);
        assert_eq!(f.len(), 21);
        assert_eq!(f[19], 69);
        assert_eq!(sum8(&f), 0);
        let high = tag_report(1, 6, 0x3000, &EPC, -60);
        assert_eq!(high[4], 0x01);
        assert_eq!(high[19], 0x80 | 69);
    }

    #[test]
    fn summary_and_error() {
        let s = round_summary(1, 1, 0x0123, 42);
        assert_eq!(s, frame(1, 0x89, &[0, 0x01, 0x23, 0, 0, 0, 42]));
        assert_eq!(s[1], 0x0A);
        assert_eq!(sum8(&s), 0);
        assert_eq!(
            error_reply(1, 0x89, 0x22),
            [0xA0, 0x04, 0x01, 0x89, 0x22, 0xB0]
        );
    }

    #[test]
    fn pc_and_rssi() {
        assert_eq!(pc_for_epc(12), 0x3000);
        assert_eq!(pc_for_epc(16), 0x4000);
        assert_eq!(rssi_byte(-129), 0);
        assert_eq!(rssi_byte(-200), 0);
        assert_eq!(rssi_byte(0), 127);
        assert_eq!(rssi_byte(-31), 98);
    }
}
