//! Simple byte checksums used by gate devices: XOR (BCC), 8-bit sums, two's complement
//! (Impinj 0xA0), the Mettler Toledo mod-128 complement, NMEA 0183, and the ASCII-hex
//! encoding that indicators such as the XK3190 use to send a checksum as two characters.
//!
//! Every function here is pure and works on the exact byte range the caller passes; picking
//! the range (which bytes a device covers) is the driver's job.

/// XOR of all bytes (block check character). Zero for an empty slice.
pub fn xor(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

/// Wrapping 8-bit sum of all bytes (SonMicro SM130 `CSUM`, cheap USB relays).
pub fn sum8(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b))
}

/// The byte that makes the 8-bit sum of `bytes` plus itself zero (Impinj R2000 `Check`).
pub fn twos_complement(bytes: &[u8]) -> u8 {
    sum8(bytes).wrapping_neg()
}

/// The byte (0..=127) that makes the sum of `bytes` plus itself ≡ 0 mod 128 (Mettler Toledo
/// continuous output, computed over `STX` through `CR`).
pub fn sum_mod128_complement(bytes: &[u8]) -> u8 {
    sum8(bytes).wrapping_neg() & 0x7F
}

/// A byte as two upper-case ASCII hex digits, high nibble first (`0x1C` → `b"1C"`).
pub fn hex_upper(byte: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    [
        DIGITS[usize::from(byte >> 4)],
        DIGITS[usize::from(byte & 0x0F)],
    ]
}

/// The value of one ASCII hex digit (either case), or `None`.
pub fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Parses two ASCII hex digits (high, low) into a byte; either case is accepted.
pub fn parse_hex_pair(hi: u8, lo: u8) -> Option<u8> {
    Some((hex_digit(hi)? << 4) | hex_digit(lo)?)
}

/// Decodes an even-length run of ASCII hex digits (`b"62E3"` → `[0x62, 0xE3]`), or `None`
/// if the length is odd or a character is not a hex digit.
pub fn decode_hex(ascii: &[u8]) -> Option<Vec<u8>> {
    if !ascii.len().is_multiple_of(2) {
        return None;
    }
    ascii
        .chunks_exact(2)
        .map(|pair| parse_hex_pair(pair[0], pair[1]))
        .collect()
}

/// NMEA 0183 checksum: XOR of the characters between `$` and `*` (both excluded).
pub fn nmea(sentence: &[u8]) -> u8 {
    xor(sentence)
}

/// Checks a whole NMEA sentence `$…*HH`, optionally followed by `\r\n` or `\n`.
pub fn nmea_sentence_ok(line: &[u8]) -> bool {
    let line = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))
        .unwrap_or(line);
    let Some(body) = line.strip_prefix(b"$") else {
        return false;
    };
    let [payload @ .., b'*', hi, lo] = body else {
        return false;
    };
    parse_hex_pair(*hi, *lo) == Some(nmea(payload))
}

/// ISO 14443 block check character of a card UID: XOR of the UID bytes.
pub fn bcc_uid(uid: &[u8]) -> u8 {
    xor(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).expect("test hex"))
            .collect()
    }

    #[test]
    fn xor_basics() {
        assert_eq!(xor(&[]), 0);
        assert_eq!(xor(&[0x5A]), 0x5A);
        assert_eq!(xor(&[0xFF, 0x0F]), 0xF0);
        assert_eq!(xor(&[0x12, 0x12]), 0);
    }

    #[test]
    fn sum8_wraps() {
        assert_eq!(sum8(&[]), 0);
        assert_eq!(sum8(&[0xFF, 0x02]), 0x01);
        assert_eq!(sum8(&[0x80; 4]), 0);
    }

    #[test]
    fn usb_relay_sum() {
        // `A0 01 01 A2` on, `A0 01 00 A1` off: last byte is the 8-bit sum.
        assert_eq!(sum8(&hex("A0 01 01")), 0xA2);
        assert_eq!(sum8(&hex("A0 01 00")), 0xA1);
    }

    #[test]
    fn sm130_csum_is_sum_of_len_to_data() {
        // SM130 `FF 00 Len Cmd Data CSUM`: firmware query and seek-for-tag commands.
        let firmware = hex("FF 00 01 81 82");
        assert_eq!(sum8(&firmware[2..4]), firmware[4]);
        let seek = hex("FF 00 01 82 83");
        assert_eq!(sum8(&seek[2..4]), seek[4]);
    }

    #[test]
    fn impinj_twos_complement() {
        let cmd = hex("A0 04 01 89 01 D1");
        assert_eq!(twos_complement(&cmd[..5]), 0xD1);
        assert_eq!(sum8(&cmd), 0);
        assert_eq!(twos_complement(&[]), 0);
    }

    #[test]
    fn mettler_toledo_mod128() {
        let frame = hex("02 2C 70 60 30 30 30 35 36 37 30 30 30 30 30 30 0D 23");
        assert_eq!(sum_mod128_complement(&frame[..17]), 0x23);
        let total: u32 = frame.iter().map(|b| u32::from(*b)).sum();
        assert_eq!(total % 128, 0);
        // Stripping bit 7 (7E1 parity) does not change the result.
        let with_parity: Vec<u8> = frame[..17].iter().map(|b| b | 0x80).collect();
        assert_eq!(sum_mod128_complement(&with_parity), 0x23);
        // Always below 128.
        for b in 0..=255u8 {
            assert!(sum_mod128_complement(&[b]) < 128);
        }
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(&hex_upper(0x1C), b"1C");
        assert_eq!(&hex_upper(0x00), b"00");
        assert_eq!(&hex_upper(0xAF), b"AF");
        for b in 0..=255u8 {
            let [hi, lo] = hex_upper(b);
            assert_eq!(parse_hex_pair(hi, lo), Some(b));
            assert_eq!(
                parse_hex_pair(hi.to_ascii_lowercase(), lo.to_ascii_lowercase()),
                Some(b)
            );
        }
        assert_eq!(parse_hex_pair(b'G', b'0'), None);
        assert_eq!(parse_hex_pair(b'0', b' '), None);
        assert_eq!(hex_digit(b'f'), Some(15));
        assert_eq!(hex_digit(b'/'), None);
    }

    #[test]
    fn decode_hex_runs() {
        assert_eq!(decode_hex(b""), Some(vec![]));
        assert_eq!(decode_hex(b"62E3086CED"), Some(hex("62 E3 08 6C ED")));
        assert_eq!(decode_hex(b"62E"), None);
        assert_eq!(decode_hex(b"6Z"), None);
    }

    #[test]
    fn xk3190_tf0_xor_over_sign_digits_and_decimals() {
        // +3260 kg; XOR over bytes 2–9 (1-based) = indices 1..=8, sent as "1C".
        let frame = hex("02 2B 30 30 33 32 36 30 30 31 43 03");
        assert_eq!(frame.len(), 12);
        assert_eq!(xor(&frame[1..=8]), 0x1C);
        assert_eq!(parse_hex_pair(frame[9], frame[10]), Some(0x1C));
        assert_eq!(hex_upper(xor(&frame[1..=8])), [frame[9], frame[10]]);
    }

    #[test]
    fn yaohua_a12_xor_over_bytes_1_to_11() {
        let line = b"WG004.139kg3D\r\n";
        assert_eq!(line.len(), 15);
        assert_eq!(xor(&line[..11]), 0x3D);
        assert_eq!(parse_hex_pair(line[11], line[12]), Some(0x3D));
    }

    #[test]
    fn rdm6300_xor_of_decoded_card_bytes() {
        // 02 + "62E3086CED" + "08" + 03: checksum is the XOR of the five decoded bytes.
        let mut frame = vec![0x02];
        frame.extend_from_slice(b"62E3086CED08");
        frame.push(0x03);
        assert_eq!(frame.len(), 14);
        let card = decode_hex(&frame[1..11]).expect("card hex");
        assert_eq!(parse_hex_pair(frame[11], frame[12]), Some(xor(&card)));
        assert_eq!(xor(&card), 0x08);
    }

    #[test]
    fn nmea_gprmc() {
        let line = b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A";
        let star = line.iter().position(|b| *b == b'*').expect("star");
        assert_eq!(nmea(&line[1..star]), 0x6A);
        assert!(nmea_sentence_ok(line));
        let mut crlf = line.to_vec();
        crlf.extend_from_slice(b"\r\n");
        assert!(nmea_sentence_ok(&crlf));
        let lower = b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6a";
        assert!(nmea_sentence_ok(lower));
    }

    #[test]
    fn nmea_rejects_bad_sentences() {
        assert!(!nmea_sentence_ok(
            b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6B"
        ));
        assert!(!nmea_sentence_ok(
            b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,E*6A"
        ));
        assert!(!nmea_sentence_ok(b"GPRMC*6A"));
        assert!(!nmea_sentence_ok(b"$GPRMC,1"));
        assert!(!nmea_sentence_ok(b"$*"));
        assert!(!nmea_sentence_ok(b""));
        assert!(nmea_sentence_ok(b"$*00"));
    }

    #[test]
    fn iso14443_bcc() {
        let uid = hex("04 A2 2B 91");
        assert_eq!(bcc_uid(&uid), 0x04 ^ 0xA2 ^ 0x2B ^ 0x91);
        let mut block = uid.clone();
        block.push(bcc_uid(&uid));
        assert_eq!(xor(&block), 0);
    }
}
