//! Hot swap: a running daemon takes up new plugin versions, rule sets and site manifest edits
//! without a restart, and gives up a new version that keeps faulting.
//!
//! Owns watching the site's files ([`watch`]: plugin folders, the region rule set file, the
//! site manifest; debounced), deciding what a change means, running the full load path on it
//! in the background, activating what passes (a driver on every device using it, through
//! [`DeviceHandle::swap_driver`]; a rule set through the lanes' [`LaneContext::ruleset`]),
//! probation and rollback ([`probation`]), and sorting site manifest edits into live and
//! restart-needed ([`site`]). It reports what it did as [`SwapEvent`]s.
//!
//! It must not touch a device's transport or task (a swap is a request the device's own task
//! carries out between two feeds), a lane's passages (a lane clones the rule set for each
//! evaluation, so a passage is decided wholly by one version), the bus or the store (but for
//! the equipment files of an applied manifest edit, written through the daemon's
//! [`Writer`]): the daemon publishes its events as alarms. docs/hot-swap.md describes the
//! behaviour.

mod probation;
mod site;
mod supervisor;
pub mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kakou_plugin_sdk::model::Severity;
use tokio::sync::{mpsc, watch as signal};
use tokio::task::JoinHandle;

use crate::config::SiteManifest;
use crate::device::{DeviceHandle, DeviceLayer, DriverSwap};
use crate::lane::LaneContext;
use crate::plugin::{DriverPlugin, Runtime};
use crate::store::Writer;

/// How long a changed file must be quiet before it is looked at, unless told otherwise.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(250);

/// What the hot swap did or refused. The daemon publishes each on `kakou/{site}/alarm` with
/// [`code`](Self::code), [`severity`](Self::severity) and the event's text as the message.
#[derive(Debug, Clone, PartialEq)]
pub enum SwapEvent {
    /// A driver version replaced the running one (or came in for devices waiting for it).
    DriverSwapped {
        /// The driver (folder) name.
        driver: String,
        /// The version it replaced, `name@version`; none when the devices were waiting.
        from: Option<String>,
        /// The version now running.
        to: String,
        /// Each device that took it: lane, device and what the swap did there.
        devices: Vec<(String, String, DriverSwap)>,
    },
    /// Devices wait for a driver that is not installed.
    DriverMissing {
        /// The driver (folder) name.
        driver: String,
        /// Where it is expected.
        dir: PathBuf,
        /// The devices waiting: lane, device.
        devices: Vec<(String, String)>,
    },
    /// A changed plugin was refused; whatever ran keeps running.
    Refused {
        /// What changed, e.g. `drivers/xk3190`.
        target: String,
        /// `name@version`, when the manifest could be read.
        plugin: Option<String>,
        /// The load step that refused it (`digest`, `signature`, `api version`, …), or `open`
        /// (a device's settings), or `rollback` (a build that was rolled back before).
        step: String,
        /// Why.
        reason: String,
    },
    /// A new version that kept faulting was replaced by the version it displaced.
    RolledBack {
        /// What it came from, e.g. `drivers/xk3190`.
        target: String,
        /// The faulting version, `name@version`.
        from: String,
        /// What runs again: a driver's `name@version`, or a rule set's.
        to: String,
        /// Faults on probation.
        faults: u64,
        /// The call of the last fault.
        call: u64,
        /// The last fault.
        error: String,
    },
    /// A rollback was called for but nothing to roll back to was at hand.
    RollbackFailed {
        /// The faulting version, `name@version`.
        plugin: String,
        /// Why.
        reason: String,
    },
    /// The lanes decide with another rule set from now on (another region file, version,
    /// parameters or rules plugin versions).
    RuleSetSwapped {
        /// The rule set before, `name@version`.
        from: String,
        /// The rule set now.
        to: String,
        /// Its plugins before, `name@version`.
        from_plugins: Vec<String>,
        /// Its plugins now.
        to_plugins: Vec<String>,
    },
    /// The region rule set file was refused; the running rule set stays.
    RuleSetRefused {
        /// file:line: what was wrong.
        error: String,
    },
    /// A site manifest edit was applied live.
    SiteApplied {
        /// What was applied.
        changes: Vec<String>,
    },
    /// A site manifest edit was refused whole; the running configuration stays.
    SiteRefused {
        /// file:line: what was wrong.
        error: String,
    },
    /// A site manifest edit has changes that only a restart applies; they are not applied.
    RestartNeeded {
        /// The changes.
        changes: Vec<String>,
    },
    /// The files cannot be watched: no hot swap until a restart.
    Unavailable {
        /// Why.
        reason: String,
    },
}

impl SwapEvent {
    /// The alarm code.
    pub fn code(&self) -> &'static str {
        match self {
            SwapEvent::DriverSwapped { .. } => "plugin.swapped",
            SwapEvent::DriverMissing { .. } => "plugin.missing",
            SwapEvent::Refused { .. } => "plugin.refused",
            SwapEvent::RolledBack { .. } => "plugin.rolled-back",
            SwapEvent::RollbackFailed { .. } => "plugin.rollback-failed",
            SwapEvent::RuleSetSwapped { .. } => "ruleset.swapped",
            SwapEvent::RuleSetRefused { .. } => "ruleset.refused",
            SwapEvent::SiteApplied { .. } => "site.reloaded",
            SwapEvent::SiteRefused { .. } => "site.refused",
            SwapEvent::RestartNeeded { .. } => "site.restart-needed",
            SwapEvent::Unavailable { .. } => "swap.unavailable",
        }
    }

    /// How bad it is.
    pub fn severity(&self) -> Severity {
        match self {
            SwapEvent::DriverSwapped { .. }
            | SwapEvent::RuleSetSwapped { .. }
            | SwapEvent::SiteApplied { .. } => Severity::Info,
            SwapEvent::RolledBack { .. } | SwapEvent::RollbackFailed { .. } => Severity::Critical,
            _ => Severity::Warning,
        }
    }

    /// The lane and device it concerns, when it concerns exactly one device.
    pub fn device(&self) -> Option<(&str, &str)> {
        match self {
            SwapEvent::DriverSwapped { devices, .. } if devices.len() == 1 => {
                Some((&devices[0].0, &devices[0].1))
            }
            SwapEvent::DriverMissing { devices, .. } if devices.len() == 1 => {
                Some((&devices[0].0, &devices[0].1))
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for SwapEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SwapEvent::DriverSwapped {
                driver,
                from,
                to,
                devices,
            } => {
                let on: Vec<String> = devices
                    .iter()
                    .map(|(l, d, s)| {
                        format!(
                            "{l}/{d} ({} bytes carried over, {} readings from them{})",
                            s.carried_bytes,
                            s.carried_readings,
                            s.lost
                                .as_ref()
                                .map(|e| format!("; unconsumed bytes lost: {e}"))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                match from {
                    Some(from) => write!(f, "driver {driver}: {from} replaced by {to} on "),
                    None => write!(f, "driver {driver}: {to} installed on "),
                }?;
                f.write_str(&on.join(", "))
            }
            SwapEvent::DriverMissing {
                driver,
                dir,
                devices,
            } => {
                let names: Vec<String> = devices.iter().map(|(l, d)| format!("{l}/{d}")).collect();
                write!(
                    f,
                    "driver {driver} is not installed ({} has no plugin.toml): {} wait for it; drop its package there",
                    dir.display(),
                    names.join(", ")
                )
            }
            SwapEvent::Refused {
                target,
                plugin,
                step,
                reason,
            } => {
                write!(f, "{target}")?;
                if let Some(p) = plugin {
                    write!(f, " ({p})")?;
                }
                write!(
                    f,
                    " refused at step `{step}`: {reason}; the running version stays"
                )
            }
            SwapEvent::RolledBack {
                target,
                from,
                to,
                faults,
                call,
                error,
            } => write!(
                f,
                "{target}: {from} faulted {faults} times in its first {call} calls (last: {error}); rolled back to {to}"
            ),
            SwapEvent::RollbackFailed { plugin, reason } => {
                write!(
                    f,
                    "{plugin} keeps faulting but cannot be rolled back: {reason}"
                )
            }
            SwapEvent::RuleSetSwapped {
                from,
                to,
                from_plugins,
                to_plugins,
            } => write!(
                f,
                "rule set {from} [{}] replaced by {to} [{}]",
                from_plugins.join(", "),
                to_plugins.join(", ")
            ),
            SwapEvent::RuleSetRefused { error } => {
                write!(f, "rule set refused: {error}; the running rule set stays")
            }
            SwapEvent::SiteApplied { changes } => {
                write!(f, "site manifest applied live: {}", changes.join("; "))
            }
            SwapEvent::SiteRefused { error } => write!(
                f,
                "site manifest refused: {error}; the running configuration stays"
            ),
            SwapEvent::RestartNeeded { changes } => write!(
                f,
                "site manifest changes not applied, they need a restart of the daemon: {}",
                changes.join("; ")
            ),
            SwapEvent::Unavailable { reason } => {
                write!(f, "hot swap unavailable until a restart: {reason}")
            }
        }
    }
}

/// What the supervisor starts from: the running configuration and what runs.
pub struct SwapSetup {
    /// The site manifest the daemon runs.
    pub manifest: SiteManifest,
    /// The plugin runtime (its fault observer is taken over).
    pub runtime: Runtime,
    /// Every running device.
    pub devices: Vec<DeviceHandle>,
    /// The drivers running, by name.
    pub drivers: BTreeMap<String, DriverPlugin>,
    /// The lanes' shared context, when they run (the site has a rule set).
    pub lanes: Option<Arc<LaneContext>>,
    /// Quiet time before a changed file is looked at.
    pub debounce: Duration,
    /// Where an applied edit's equipment files are written; none where no store runs.
    pub writer: Option<Writer>,
}

impl SwapSetup {
    /// The setup for a daemon running `manifest` with these devices and lanes.
    pub fn new(
        manifest: &SiteManifest,
        runtime: &Runtime,
        layer: &DeviceLayer,
        lanes: Option<Arc<LaneContext>>,
    ) -> Self {
        SwapSetup {
            manifest: manifest.clone(),
            runtime: runtime.clone(),
            devices: layer.devices().cloned().collect(),
            drivers: layer.drivers().clone(),
            lanes,
            debounce: DEFAULT_DEBOUNCE,
            writer: None,
        }
    }

    /// Writes the equipment files of applied manifest edits through `writer`.
    pub fn with_writer(mut self, writer: Writer) -> Self {
        self.writer = Some(writer);
        self
    }
}

/// Starts watching and swapping; returns once the files are watched, so a change made after
/// this returns is seen. Runs until `shutdown` turns true. Events go to `events`.
pub fn spawn(
    setup: SwapSetup,
    events: mpsc::Sender<SwapEvent>,
    shutdown: signal::Receiver<bool>,
) -> JoinHandle<()> {
    supervisor::spawn(setup, events, shutdown)
}
