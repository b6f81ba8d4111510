//! # kakou plugin SDK
//!
//! Write kakou device drivers and customs rule sets in plain Rust, test them natively with
//! `cargo test`, and build them into sandboxed WebAssembly components for the kakou host.
//!
//! - [`model`]: the contract's types (readings, commands, passages, verdicts, registrations).
//! - [`Driver`] and [`export_driver!`]: a device driver (enable the `driver` feature).
//! - [`Rules`], [`Lookups`] and [`export_rules!`]: a rule set (enable the `rules` feature).
//! - [`checks`]: the customs checks (container, vehicle, driver, station, lane, transit,
//!   control orders) every rule set shares, with legality criteria as parameters.
//! - [`proto`]: checksums, CRCs, the resynchronising frame splitter, ISO 6346, plates.
//! - [`wire`]: what each supported device sends, for simulators and tests.
//! - [`harness`]: run drivers and rules natively in tests.
//!
//! The contract itself is the WIT package `kakou:plugin` in this crate's `wit/` folder; the
//! host's bindings and the guest bindings here are both generated from it.
//!
//! ```ignore
//! use kakou_plugin_sdk::prelude::*;
//!
//! struct Scale { /* framing state */ }
//! impl Driver for Scale { /* describe, open, feed, drain */ }
//! kakou_plugin_sdk::export_driver!(Scale);
//! ```

pub mod checks;
pub mod driver;
pub mod harness;
pub mod mirror;
pub mod model;
pub mod proto;
pub mod rules;
pub mod wire;

#[cfg(any(feature = "driver", feature = "rules"))]
pub mod guest;

pub use driver::{Config, Driver};
pub use rules::{Lookups, Rules};

/// The version of the `kakou:plugin` contract this SDK builds against.
pub const API_VERSION: &str = "1.0.0";

/// Everything a plugin usually needs.
pub mod prelude {
    pub use crate::checks;
    pub use crate::driver::{Config, Driver};
    pub use crate::model::*;
    pub use crate::proto::frame::{Frame, FrameSpec, Splitter};
    pub use crate::rules::{Lookups, Rules};
}
