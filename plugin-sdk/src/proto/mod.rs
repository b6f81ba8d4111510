//! Wire-protocol helpers shared by device drivers and rule sets.
//!
//! - [`checksum`]: byte checksums (XOR, 8-bit sums, two's complement, mod-128, NMEA, ASCII hex).
//! - [`crc`]: CRC-16/MODBUS and CRC-16/MCRF4XX, table driven.
//! - [`date`]: calendar dates as day counts since 1970-01-01.
//! - [`frame`]: the resynchronising [`Splitter`] that cuts a byte stream into frames.
//! - [`http`]: HTTP/1.1 request framing by Content-Length and multipart parts, for devices that push.
//! - [`iso6346`]: container numbers and their check digit.
//! - [`number`]: decimal scaling with one rounding, for weighing indicators.
//! - [`plate`]: mainland Chinese licence plates (normalisation and classification).
//! - [`stability`]: weight stability from repeated readings, for indicators without a flag.

pub mod checksum;
pub mod crc;
pub mod date;
pub mod frame;
pub mod http;
pub mod iso6346;
pub mod number;
pub mod plate;
pub mod stability;

pub use crc::{append_crc16_le, crc16_mcrf4xx, crc16_modbus, verify_crc16_le};
pub use frame::{Frame, FrameSpec, Rejected, Splitter};
pub use iso6346::{ContainerError, ContainerNumber};
pub use plate::{Plate, PlateError, PlateKind};
pub use stability::{Report, StabilityFilter};
