//! Modbus RTU relay boards driving a barrier: write single coil, its echo, exception replies.
//!
//! Every frame is `Slave Function Data CRC(lo, hi)`, the CRC being CRC-16/MODBUS (poly 0xA001
//! reflected, init 0xFFFF) over everything before it, sent low byte first.
//!
//! - Write single coil (function `05`): `Slave 05 Addr(hi, lo) Value(hi, lo) CRC`, value
//!   `FF00` for on and `0000` for off; `01 05 00 00 FF 00 8C 3A` turns coil 0 of slave 1 on.
//!   A slave that carries the write out answers with the request itself, byte for byte (the
//!   echo).
//! - Exception reply: `Slave (Function | 0x80) ExceptionCode CRC`, 5 bytes; `01 85 02 C3 51`
//!   is slave 1 refusing a write single coil with exception 02 (illegal data address).
//! - Timed relays ("flash"): many Modbus relay boards (the Waveshare "Modbus RTU Relay"
//!   layout) accept a write single coil to address `0x0200 + relay` ("flash on": the relay
//!   turns on and turns itself off again after the delay) or `0x0400 + relay` ("flash off"),
//!   the value being the delay in units of 100 ms (`0x0007` = 700 ms). They echo it like any
//!   write single coil. This is a vendor extension, not part of Modbus itself.

use crate::proto::crc::{append_crc16_le, crc16_modbus};

/// Function code of write single coil.
pub const WRITE_SINGLE_COIL: u8 = 0x05;
/// Value field that turns a coil on.
pub const COIL_ON: u16 = 0xFF00;
/// Value field that turns a coil off.
pub const COIL_OFF: u16 = 0x0000;
/// Base address of the "flash on" pseudo-coils (relay turns on for a delay, then off).
pub const FLASH_ON_BASE: u16 = 0x0200;
/// Base address of the "flash off" pseudo-coils (relay turns off for a delay, then on).
pub const FLASH_OFF_BASE: u16 = 0x0400;

/// Exception 01: the slave does not support the function code.
pub const ILLEGAL_FUNCTION: u8 = 0x01;
/// Exception 02: the address (coil) does not exist on the slave.
pub const ILLEGAL_DATA_ADDRESS: u8 = 0x02;
/// Exception 03: the value is not acceptable (for write single coil: neither FF00 nor 0000).
pub const ILLEGAL_DATA_VALUE: u8 = 0x03;
/// Exception 04: the slave failed while carrying the request out.
pub const SLAVE_DEVICE_FAILURE: u8 = 0x04;
/// Exception 06: the slave is busy with a long command.
pub const SLAVE_DEVICE_BUSY: u8 = 0x06;

/// `body` followed by its CRC-16/MODBUS, low byte first: a complete RTU frame.
pub fn with_crc(body: &[u8]) -> Vec<u8> {
    let mut frame = body.to_vec();
    append_crc16_le(&mut frame, crc16_modbus(body));
    frame
}

/// Write single coil with a raw value field: `Slave 05 Addr Value CRC`, 8 bytes.
pub fn write_single_coil_value(slave: u8, address: u16, value: u16) -> Vec<u8> {
    let [ah, al] = address.to_be_bytes();
    let [vh, vl] = value.to_be_bytes();
    with_crc(&[slave, WRITE_SINGLE_COIL, ah, al, vh, vl])
}

/// Write single coil turning `coil` on (`FF00`) or off (`0000`).
///
/// `write_single_coil(1, 0, true)` is `01 05 00 00 FF 00 8C 3A`.
pub fn write_single_coil(slave: u8, coil: u16, on: bool) -> Vec<u8> {
    write_single_coil_value(slave, coil, if on { COIL_ON } else { COIL_OFF })
}

/// "Flash on" request of boards with timed relays: relay `relay` turns on now and off again
/// after `delay_100ms` × 100 ms (write single coil to `0x0200 + relay`).
pub fn flash_on(slave: u8, relay: u8, delay_100ms: u16) -> Vec<u8> {
    write_single_coil_value(slave, FLASH_ON_BASE + u16::from(relay), delay_100ms)
}

/// "Flash off" request of boards with timed relays: relay `relay` turns off now and on again
/// after `delay_100ms` × 100 ms (write single coil to `0x0400 + relay`).
pub fn flash_off(slave: u8, relay: u8, delay_100ms: u16) -> Vec<u8> {
    write_single_coil_value(slave, FLASH_OFF_BASE + u16::from(relay), delay_100ms)
}

/// A slave's normal answer to a write single coil (plain or flash): the request, byte for byte.
pub fn echo(request: &[u8]) -> Vec<u8> {
    request.to_vec()
}

/// An exception reply: `Slave (function | 0x80) code CRC`, 5 bytes.
///
/// `exception(1, WRITE_SINGLE_COIL, ILLEGAL_DATA_ADDRESS)` is `01 85 02 C3 51`.
pub fn exception(slave: u8, function: u8, code: u8) -> Vec<u8> {
    with_crc(&[slave, function | 0x80, code])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::crc::verify_crc16_le;

    #[test]
    fn documented_coil_0_on() {
        assert_eq!(
            write_single_coil(1, 0, true),
            [0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A]
        );
    }

    #[test]
    fn off_and_other_addresses() {
        let off = write_single_coil(1, 0, false);
        assert_eq!(off[..6], [0x01, 0x05, 0x00, 0x00, 0x00, 0x00]);
        assert!(verify_crc16_le(&off, crc16_modbus));
        // The well-known 255-address board example: FF 05 00 00 FF 00 99 E4.
        assert_eq!(
            write_single_coil(0xFF, 0, true),
            [0xFF, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x99, 0xE4]
        );
        let coil = write_single_coil(2, 0x0102, true);
        assert_eq!(coil[2..4], [0x01, 0x02]);
    }

    #[test]
    fn echo_is_the_request() {
        let request = write_single_coil(1, 0, true);
        assert_eq!(echo(&request), request);
    }

    #[test]
    fn flash_requests() {
        // Relay 0 on for 700 ms, the vendor's own example.
        assert_eq!(
            flash_on(1, 0, 7),
            [0x01, 0x05, 0x02, 0x00, 0x00, 0x07, 0x8D, 0xB0]
        );
        let f = flash_off(1, 3, 10);
        assert_eq!(f[..6], [0x01, 0x05, 0x04, 0x03, 0x00, 0x0A]);
    }

    #[test]
    fn exception_reply() {
        let e = exception(1, WRITE_SINGLE_COIL, ILLEGAL_DATA_ADDRESS);
        assert_eq!(e, [0x01, 0x85, 0x02, 0xC3, 0x51]);
        assert!(verify_crc16_le(&e, crc16_modbus));
        assert_eq!(crc16_modbus(&e), 0);
    }
}
