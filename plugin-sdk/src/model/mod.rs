//! The plugin contract's types as plain Rust.
//!
//! These mirror `plugin-sdk/wit` one for one. Plugin authors, the native test harness and the
//! host all use them, so a driver's or a rule set's logic never touches generated bindings.
//! With the `serde` feature they (de)serialise to the JSON the host puts on its bus and store.
//! This module owns the shapes only: no I/O, no bindings, no protocol logic.

mod passage;
mod reading;
mod registry;

pub use passage::*;
pub use reading::*;
pub use registry::*;

/// Declares a contract record: a plain struct with the derives every model type shares.
macro_rules! record {
    ($(#[$meta:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(default))]
        pub struct $name { $($body)* }
    };
}

/// Declares a contract enum (no payloads), serialised in snake_case.
macro_rules! choice {
    ($(#[$meta:meta])* pub enum $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[cfg_attr(
            feature = "serde",
            derive(serde::Serialize, serde::Deserialize),
            serde(rename_all = "snake_case")
        )]
        pub enum $name { $($body)* }
    };
}

pub(crate) use {choice, record};
