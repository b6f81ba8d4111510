//! Device simulators: play a device over a pseudo-terminal, TCP, UDP or HTTP with the exact
//! wire format its driver expects, for commissioning and tests without hardware.
//!
//! Owns the simulated links ([`pty`]) and scenario playback. Frames come from
//! [`kakou_plugin_sdk::wire`]; nothing here decodes.

pub mod pty;
