//! SonMicro SM130 13.56 MHz (ISO 14443 A / Mifare) reader module, UART protocol.
//!
//! Frames are `FF 00 Len Cmd Data CSUM` in both directions: `FF` header, `00` reserved, `Len`
//! the number of bytes in `Cmd` and `Data`, `CSUM` the 8-bit sum of `Len` through `Data`.
//!
//! Seek for Tag (`FF 00 01 82 83`) puts the module into seek mode: it answers at once with the
//! status `L` (0x4C, command in progress) or `U` (0x55, in progress but the RF field is off) and,
//! when a tag enters the field, with `82 TagType UID`. The seek then ends; the host has to send
//! it again to wait for the next tag. Select Tag (`FF 00 01 83 84`) answers at once with
//! `83 TagType UID`, or `N` (0x4E, no tag) or `U` (RF field off). The UID is 4 bytes for Mifare
//! Classic and 7 for Ultralight; tag types are 0x01 Ultralight, 0x02 Classic 1K, 0x03 Classic 4K,
//! 0xFF unknown. Get Firmware (`81`) answers with the version as ASCII text.

use crate::proto::checksum::sum8;

/// Reset command (answered with the firmware version).
pub const CMD_RESET: u8 = 0x80;
/// Get Firmware command.
pub const CMD_FIRMWARE: u8 = 0x81;
/// Seek for Tag command.
pub const CMD_SEEK: u8 = 0x82;
/// Select Tag command.
pub const CMD_SELECT: u8 = 0x83;

/// Tag type: Mifare Ultralight (7-byte UID).
pub const TAG_ULTRALIGHT: u8 = 0x01;
/// Tag type: Mifare Classic (Standard) 1K.
pub const TAG_MIFARE_1K: u8 = 0x02;
/// Tag type: Mifare Classic 4K.
pub const TAG_MIFARE_4K: u8 = 0x03;
/// Tag type: not recognised by the module.
pub const TAG_UNKNOWN: u8 = 0xFF;

/// Status `L`: command in progress (seek) / success (login, halt).
pub const STATUS_IN_PROGRESS: u8 = b'L';
/// Status `N`: no tag present.
pub const STATUS_NO_TAG: u8 = b'N';
/// Status `U`: RF field is off.
pub const STATUS_RF_OFF: u8 = b'U';

/// A frame `FF 00 Len Cmd Data CSUM`.
///
/// # Panics
///
/// When `data` is longer than 254 bytes.
pub fn frame(cmd: u8, data: &[u8]) -> Vec<u8> {
    let len = data.len() + 1;
    assert!(len <= 255, "SM130 frame too long: Len would be {len}");
    let mut f = Vec::with_capacity(len + 4);
    f.extend_from_slice(&[0xFF, 0x00, len as u8, cmd]);
    f.extend_from_slice(data);
    f.push(sum8(&f[2..]));
    f
}

/// The Seek for Tag command, `FF 00 01 82 83`.
pub fn seek_command() -> Vec<u8> {
    frame(CMD_SEEK, &[])
}

/// The Select Tag command, `FF 00 01 83 84`.
pub fn select_command() -> Vec<u8> {
    frame(CMD_SELECT, &[])
}

/// The Get Firmware command, `FF 00 01 81 82`.
pub fn firmware_command() -> Vec<u8> {
    frame(CMD_FIRMWARE, &[])
}

/// A tag found by `cmd` ([`CMD_SEEK`] or [`CMD_SELECT`]): tag type and UID, in the order the
/// module sends them.
pub fn tag_response(cmd: u8, tag_type: u8, uid: &[u8]) -> Vec<u8> {
    let mut data = vec![tag_type];
    data.extend_from_slice(uid);
    frame(cmd, &data)
}

/// A one-character status answer to `cmd`, such as [`STATUS_IN_PROGRESS`] to a seek.
pub fn status_response(cmd: u8, status: u8) -> Vec<u8> {
    frame(cmd, &[status])
}

/// The answer to Get Firmware: the version text, e.g. `"UM 2.8"`.
pub fn firmware_response(version: &str) -> Vec<u8> {
    frame(CMD_FIRMWARE, version.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_commands() {
        assert_eq!(seek_command(), [0xFF, 0x00, 0x01, 0x82, 0x83]);
        assert_eq!(select_command(), [0xFF, 0x00, 0x01, 0x83, 0x84]);
        assert_eq!(firmware_command(), [0xFF, 0x00, 0x01, 0x81, 0x82]);
    }

    #[test]
    fn responses() {
        assert_eq!(
            status_response(CMD_SEEK, STATUS_IN_PROGRESS),
            [0xFF, 0x00, 0x02, 0x82, 0x4C, 0xD0]
        );
        assert_eq!(
            status_response(CMD_SELECT, STATUS_NO_TAG),
            [0xFF, 0x00, 0x02, 0x83, 0x4E, 0xD3]
        );
        let tag = tag_response(CMD_SEEK, TAG_MIFARE_1K, &[0x04, 0xA2, 0x2B, 0x91]);
        assert_eq!(
            &tag[..9],
            &[0xFF, 0x00, 0x06, 0x82, 0x02, 0x04, 0xA2, 0x2B, 0x91]
        );
        assert_eq!(tag[9], sum8(&tag[2..9]));
        let fw = firmware_response("UM 2.8");
        assert_eq!(fw[2], 7);
        assert_eq!(&fw[4..10], b"UM 2.8");
    }
}
