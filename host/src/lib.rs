//! # kakou host
//!
//! The gate daemon and CLI's library. One module per concern:
//!
//! - [`plugin`]: the WebAssembly plugin runtime: manifests, API versions, loading, the sandbox,
//!   driver instances and rule evaluations.
//! - [`demo`]: the demo lane.
//! - [`cli`]: the `kakou` command line (the binary's edge).
//!
//! A module talks to another through a small typed interface; only `main` and the CLI know
//! them all.

pub mod cli;
pub mod config;
pub mod demo;
pub mod diag;
pub mod plugin;

pub use kakou_plugin_sdk as sdk;
