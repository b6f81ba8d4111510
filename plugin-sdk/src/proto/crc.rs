//! Reflected CRC-16 variants used on gate hardware, table driven (tables built at compile
//! time): CRC-16/MODBUS for relay boards and barrier controllers, CRC-16/MCRF4XX for Chafon
//! UHF readers. Both are sent low byte first; see [`append_crc16_le`] and [`verify_crc16_le`].

/// Builds the 256-entry lookup table of a reflected CRC-16 with the given (reflected) polynomial.
const fn reflected_table(poly: u16) -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ poly
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static MODBUS_TABLE: [u16; 256] = reflected_table(0xA001);
static MCRF4XX_TABLE: [u16; 256] = reflected_table(0x8408);

fn reflected(table: &[u16; 256], init: u16, bytes: &[u8]) -> u16 {
    bytes.iter().fold(init, |crc, b| {
        (crc >> 8) ^ table[usize::from((crc as u8) ^ b)]
    })
}

/// CRC-16/MODBUS: polynomial 0x8005 reflected (0xA001), init 0xFFFF, no final xor.
/// `crc16_modbus(b"123456789") == 0x4B37`; on the wire it goes low byte first.
pub fn crc16_modbus(bytes: &[u8]) -> u16 {
    reflected(&MODBUS_TABLE, 0xFFFF, bytes)
}

/// CRC-16/MCRF4XX: polynomial 0x1021 reflected (0x8408), init 0xFFFF, no final xor.
/// `crc16_mcrf4xx(b"123456789") == 0x6F91`; Chafon readers send it low byte first.
pub fn crc16_mcrf4xx(bytes: &[u8]) -> u16 {
    reflected(&MCRF4XX_TABLE, 0xFFFF, bytes)
}

/// Appends `crc` to `frame` low byte first, as Modbus RTU and Chafon expect.
pub fn append_crc16_le(frame: &mut Vec<u8>, crc: u16) {
    frame.extend_from_slice(&crc.to_le_bytes());
}

/// Whether the last two bytes of `frame` are `crc` of the bytes before them, low byte first.
/// False for frames shorter than two bytes.
pub fn verify_crc16_le(frame: &[u8], crc: fn(&[u8]) -> u16) -> bool {
    match frame {
        [body @ .., lo, hi] => crc(body) == u16::from_le_bytes([*lo, *hi]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-by-bit reference implementation to check the tables against.
    fn bitwise(poly: u16, bytes: &[u8]) -> u16 {
        let mut crc = 0xFFFFu16;
        for b in bytes {
            crc ^= u16::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ poly
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn check_values() {
        assert_eq!(crc16_modbus(b"123456789"), 0x4B37);
        assert_eq!(crc16_mcrf4xx(b"123456789"), 0x6F91);
        assert_eq!(crc16_modbus(b""), 0xFFFF);
        assert_eq!(crc16_mcrf4xx(b""), 0xFFFF);
    }

    #[test]
    fn modbus_write_single_coil() {
        let mut frame = vec![0x01, 0x05, 0x00, 0x00, 0xFF, 0x00];
        assert_eq!(crc16_modbus(&frame), 0x3A8C);
        append_crc16_le(
            &mut frame,
            crc16_modbus(&[0x01, 0x05, 0x00, 0x00, 0xFF, 0x00]),
        );
        assert_eq!(frame, [0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A]);
        assert!(verify_crc16_le(&frame, crc16_modbus));
        // A valid frame including its CRC leaves a zero residue for this CRC.
        assert_eq!(crc16_modbus(&frame), 0);
    }

    #[test]
    fn chafon_inventory_command() {
        let mut frame = vec![0x04, 0x00, 0x01];
        let crc = crc16_mcrf4xx(&frame);
        append_crc16_le(&mut frame, crc);
        assert_eq!(frame, [0x04, 0x00, 0x01, 0xDB, 0x4B]);
        assert!(verify_crc16_le(&frame, crc16_mcrf4xx));
        assert!(!verify_crc16_le(&frame, crc16_modbus));
    }

    #[test]
    fn verify_rejects_corruption_and_short_frames() {
        let good = [0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A];
        for i in 0..good.len() {
            let mut bad = good;
            bad[i] ^= 0x10;
            assert!(!verify_crc16_le(&bad, crc16_modbus), "flip at {i}");
        }
        let swapped = [0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x3A, 0x8C];
        assert!(!verify_crc16_le(&swapped, crc16_modbus));
        assert!(!verify_crc16_le(&[], crc16_modbus));
        assert!(!verify_crc16_le(&[0xFF], crc16_modbus));
        // Two bytes: CRC of the empty body is 0xFFFF.
        assert!(verify_crc16_le(&[0xFF, 0xFF], crc16_modbus));
    }

    #[test]
    fn tables_match_bitwise_reference() {
        let mut data = Vec::new();
        let mut x = 0x1234_5678u32;
        for len in 0..300 {
            assert_eq!(crc16_modbus(&data), bitwise(0xA001, &data), "len {len}");
            assert_eq!(crc16_mcrf4xx(&data), bitwise(0x8408, &data), "len {len}");
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            data.push((x >> 24) as u8);
        }
        assert_eq!(MODBUS_TABLE[0], 0);
        assert_eq!(MODBUS_TABLE[1], 0xC0C1);
        assert_eq!(MCRF4XX_TABLE[1], 0x1189);
    }
}
