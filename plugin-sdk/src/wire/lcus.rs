//! LCUS-type USB relay boards (LC Technology "LCUS-1/2/4/8", CH340 USB serial, 9600 8N1).
//!
//! Commands are 4 bytes: `A0 Relay State Sum`, relay `01`..`08`, state `01` on / `00` off, and
//! `Sum` the 8-bit sum of the first three bytes: `A0 01 01 A2` turns relay 1 on, `A0 01 00 A1`
//! turns it off, `A0 02 01 A3` turns relay 2 on. The boards do not answer commands.
//!
//! Multi-channel boards answer the one-byte status query `FF` with one text line per relay,
//! each 10 bytes: `CH1: ON \r\n` or `CH1: OFF\r\n` (the "ON" is padded with a space so both
//! lines are the same length). Some 8-channel firmware answers the query with one raw byte
//! per relay instead (`01` on, `00` off); that form is not produced here.

use crate::proto::checksum::sum8;

/// First byte of every command.
pub const START: u8 = 0xA0;
/// The status query.
pub const STATUS_QUERY: u8 = 0xFF;

/// The command turning `relay` (1-based) on or off: `A0 relay state sum`.
///
/// `command(1, true)` is `A0 01 01 A2`; `command(1, false)` is `A0 01 00 A1`.
pub fn command(relay: u8, on: bool) -> [u8; 4] {
    let head = [START, relay, u8::from(on)];
    [head[0], head[1], head[2], sum8(&head)]
}

/// The status line a board sends for one relay: `CH<n>: ON \r\n` or `CH<n>: OFF\r\n`.
pub fn status_line(relay: u8, on: bool) -> Vec<u8> {
    let state = if on { "ON " } else { "OFF" };
    format!("CH{relay}: {state}\r\n").into_bytes()
}

/// A board's whole answer to the status query: one line per relay, relay 1 first.
pub fn status_reply(states: &[bool]) -> Vec<u8> {
    states
        .iter()
        .zip(1u8..)
        .flat_map(|(on, relay)| status_line(relay, *on))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_commands() {
        assert_eq!(command(1, true), [0xA0, 0x01, 0x01, 0xA2]);
        assert_eq!(command(1, false), [0xA0, 0x01, 0x00, 0xA1]);
        assert_eq!(command(2, true), [0xA0, 0x02, 0x01, 0xA3]);
        assert_eq!(command(2, false), [0xA0, 0x02, 0x00, 0xA2]);
    }

    #[test]
    fn status_lines_are_ten_bytes() {
        assert_eq!(status_line(1, true), b"CH1: ON \r\n");
        assert_eq!(status_line(2, false), b"CH2: OFF\r\n");
        let reply = status_reply(&[true, false, false, true]);
        assert_eq!(reply.len(), 40);
        assert!(reply.starts_with(b"CH1: ON \r\nCH2: OFF\r\n"));
    }
}
