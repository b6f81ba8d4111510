//! # kakou host
//!
//! The gate daemon and CLI's library. One module per concern:
//!
//! - [`plugin`]: the WebAssembly plugin runtime: manifests, API versions, loading, the sandbox,
//!   driver instances and rule evaluations.
//! - [`bus`]: the MQTT bus: embedded broker, client, topics, payloads.
//! - [`config`]: the site manifest: lanes, devices, transports, equipment files.
//! - [`device`]: transports, driver instances per device, device status and commands.
//! - [`store`]: the redb store: passages and their indexes, registrations, documents, control
//!   orders, parameters, equipment files, outbox, audit log.
//! - [`query`]: queries and statistics over recorded passages (reads the store, never writes).
//! - [`sim`]: device simulators over ptys, sockets and HTTP.
//! - [`daemon`]: starts the bus and the devices and wires them together.
//! - [`swap`]: hot swap: watches plugin folders, the rule set and the site manifest, swaps in
//!   what passes the load path, rolls back what keeps faulting.
//! - [`demo`]: the demo lane.
//! - [`cli`]: the `kakou` command line (the binary's edge).
//!
//! A module talks to another through a small typed interface; only `main` and the CLI know
//! them all.

pub mod bus;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod device;
pub mod diag;
pub mod lane;
pub mod plugin;
pub mod query;
pub mod sim;
pub mod store;
pub mod swap;

pub use kakou_plugin_sdk as sdk;
