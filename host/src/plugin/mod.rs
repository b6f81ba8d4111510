//! The plugin runtime: everything between a plugin folder on disk and a call into its sandbox.
//!
//! Owns plugin manifests ([`manifest`]), the API versions this host serves ([`api`]), the load
//! path (manifest → digest → signature → API check → compile, cached → component check →
//! self-description; [`loader`]), the engines and the pool instances come from (`pool`), the
//! sandbox each call runs in (`sandbox`), long-lived driver instances ([`driver`]) and
//! fresh-per-call rule evaluations ([`rules`]), and the
//! supply chain: building plugin crates ([`build`]), publisher keys and signatures
//! ([`signing`]), sealed and signed packages ([`package`]), new plugin crates ([`scaffold`])
//! and fixture tests of built components ([`fixtures`]), and the call and fault counts a
//! hot-swap supervisor watches ([`health`]). It does not know about devices, lanes, the bus or
//! the store: callers hand it bytes, passages and a [`Lookups`](kakou_plugin_sdk::Lookups) and
//! get typed results back. Watching plugin folders and swapping what runs is `crate::swap`'s.
//!
//! A plugin's fault (trap, timeout, fuel, memory, oversized result, undeclared capability) ends
//! that one call with a [`CallError`] naming the plugin; the next call runs on a fresh instance.
//! A call's deadline counts the CPU time of the thread running it, not time the thread spent
//! descheduled; fuel bounds its work.

pub mod api;
mod bindings;
pub mod build;
mod cache;
pub mod driver;
mod error;
pub mod fixtures;
pub mod health;
pub mod loader;
pub mod manifest;
mod memory;
pub mod package;
mod pool;
pub mod rules;
mod sandbox;
pub mod scaffold;
pub mod signing;

pub use cache::CacheOutcome;
pub use driver::{DriverInstance, DriverPlugin};
pub use error::{CallError, CallErrorKind, LoadError, LoadStep};
pub use health::{FaultNotice, FaultObserver};
pub use loader::{Description, LoadOptions, LoadedPlugin, Runtime, RuntimeError, SignatureStatus};
pub use manifest::{Capability, Limits, ManifestError, PluginKind, PluginManifest};
pub use pool::{RulesAllocation, RulesPool};
pub use rules::{PreparedPassage, RulesPlugin};
