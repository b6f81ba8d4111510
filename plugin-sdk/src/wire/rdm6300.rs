//! RDM6300 and similar 125 kHz EM4100 readers: one 14-byte frame per read, repeated while the
//! card stays in the field.
//!
//! `STX(02)`, ten upper-case ASCII hex digits (the five ID bytes: a version or customer byte,
//! then the 32-bit card number), two ASCII hex digits of checksum, `ETX(03)`. The checksum is
//! the XOR of the five ID bytes; some clones send their 8-bit sum instead. The number printed
//! on most cards is the 32-bit card number in decimal, often followed by the Wiegand-26 form
//! (third ID byte, comma, last two ID bytes as one number).

use crate::proto::checksum::{hex_upper, sum8, xor};

/// Length of a frame in bytes.
pub const FRAME_LEN: usize = 14;

/// The five ID bytes of a card: `version`, then `number` big-endian.
pub fn card_id(version: u8, number: u32) -> [u8; 5] {
    let n = number.to_be_bytes();
    [version, n[0], n[1], n[2], n[3]]
}

fn build(id: [u8; 5], check: u8) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0] = 0x02;
    for (i, b) in id.iter().enumerate() {
        let [hi, lo] = hex_upper(*b);
        f[1 + 2 * i] = hi;
        f[2 + 2 * i] = lo;
    }
    let [hi, lo] = hex_upper(check);
    f[11] = hi;
    f[12] = lo;
    f[13] = 0x03;
    f
}

/// The frame a genuine RDM6300 sends for card `id` (XOR checksum).
pub fn frame(id: [u8; 5]) -> [u8; FRAME_LEN] {
    build(id, xor(&id))
}

/// The frame a clone with an 8-bit sum checksum sends for card `id`.
pub fn frame_with_sum(id: [u8; 5]) -> [u8; FRAME_LEN] {
    build(id, sum8(&id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_card() {
        // 02 "62E3086CED" "08" 03: the checksum is the XOR of the decoded bytes.
        let id = [0x62, 0xE3, 0x08, 0x6C, 0xED];
        let mut expected = vec![0x02];
        expected.extend_from_slice(b"62E3086CED08");
        expected.push(0x03);
        assert_eq!(frame(id).to_vec(), expected);
        assert_eq!(&frame_with_sum(id)[11..13], &hex_upper(sum8(&id)));
    }

    #[test]
    fn card_number_layout() {
        // A card printed "0006084517 092,55205" reads as 01 005CD7A5.
        assert_eq!(card_id(0x01, 6_084_517), [0x01, 0x00, 0x5C, 0xD7, 0xA5]);
        assert_eq!(&frame(card_id(0x01, 6_084_517))[1..11], b"01005CD7A5");
    }
}
