//! Device-side wire formats: the bytes each supported device sends (and, for actuators, how it
//! answers), built from typed values.
//!
//! Simulators (`kakou sim`) and driver tests use these to speak exactly as the devices do; the
//! drivers themselves decode with [`crate::proto`]. One module per protocol; none of them
//! decodes.

pub mod chafon;
pub mod container_ocr;
pub mod hikvision;
pub mod impinj;
pub mod jt701;
pub mod lcus;
pub mod modbus;
pub mod mt_sics;
pub mod nmea;
pub mod rdm6300;
pub mod sm130;
pub mod toledo;
pub mod xk3190;
pub mod yaohua;
