//! The device layer: every configured device's transport, its driver instance, its status and
//! counters, and the commands sent to it.
//!
//! Owns links ([`transport`]), the per-device task that feeds bytes to the driver and turns its
//! output into [`DeviceEvent`]s ([`runner`]), and device statistics and equipment files
//! ([`DeviceStats`]). It does not assemble passages or know about the bus or store: events go
//! to whoever holds the receiving end of the channel given to [`DeviceLayer::start`].

mod runner;
mod stats;
pub mod transport;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kakou_plugin_sdk::model::{Command, Reading, Rejected};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::SiteManifest;
use crate::plugin::{CallError, DriverPlugin, LoadError, Runtime};
pub use stats::DeviceStats;

/// Something a device did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceEvent {
    /// Lane id.
    pub lane: Arc<str>,
    /// Device id.
    pub device: Arc<str>,
    /// Unix time, milliseconds.
    pub at_ms: i64,
    /// What happened.
    pub kind: DeviceEventKind,
}

/// What a device did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DeviceEventKind {
    /// The driver decoded a reading.
    Reading {
        /// The reading.
        reading: Reading,
    },
    /// The driver (or the rate limit) dropped bytes.
    Rejected {
        /// Why and how many.
        rejected: Rejected,
    },
    /// Bytes arrive again.
    Online {
        /// The link.
        link: String,
    },
    /// The link dropped, or the device fell silent.
    Offline {
        /// Why.
        reason: String,
    },
    /// A driver call failed; the instance was rebuilt.
    Fault {
        /// The error.
        error: String,
    },
    /// Bytes were sent to the device (a poll or a command).
    Sent {
        /// Hex of the bytes.
        hex: String,
        /// Why: `poll` or the command.
        cause: String,
    },
}

/// Why the device layer could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The manifest names a device that does not exist.
    #[error("no device {lane}/{device} in the site manifest")]
    Unknown {
        /// Lane id.
        lane: String,
        /// Device id.
        device: String,
    },
    /// The device's driver plugin was refused.
    #[error("device {lane}/{device}: driver `{driver}`: {source}")]
    Driver {
        /// Lane id.
        lane: String,
        /// Device id.
        device: String,
        /// Driver name.
        driver: String,
        /// Why.
        source: Box<LoadError>,
    },
    /// The driver refused the device's settings.
    #[error("device {lane}/{device}: {source}")]
    Open {
        /// Lane id.
        lane: String,
        /// Device id.
        device: String,
        /// Why.
        source: CallError,
    },
    /// The device's task has stopped.
    #[error("device {lane}/{device} is not running")]
    Stopped {
        /// Lane id.
        lane: String,
        /// Device id.
        device: String,
    },
}

/// A running device, as seen from outside its task.
#[derive(Debug, Clone)]
pub struct DeviceHandle {
    /// Lane id.
    pub lane: String,
    /// Device id.
    pub device: String,
    commands: mpsc::Sender<Command>,
    stats: Arc<Mutex<DeviceStats>>,
}

impl DeviceHandle {
    /// A snapshot of the device's status and counters.
    pub fn stats(&self) -> DeviceStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Every configured device, running.
pub struct DeviceLayer {
    devices: BTreeMap<(String, String), DeviceHandle>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl DeviceLayer {
    /// Loads each device's driver, opens its link and starts its task. Events go to `events`.
    /// Nothing is started unless every device's driver loads and accepts its settings.
    pub async fn start(
        manifest: &SiteManifest,
        runtime: &Runtime,
        events: mpsc::Sender<DeviceEvent>,
    ) -> Result<Self, DeviceError> {
        let options = manifest.site.load_options();
        let mut drivers: BTreeMap<String, DriverPlugin> = BTreeMap::new();
        let mut prepared = Vec::new();
        for lane in &manifest.lanes {
            for dev in &lane.devices {
                let plugin = match drivers.get(&dev.driver) {
                    Some(p) => p.clone(),
                    None => {
                        let dir = manifest.site.plugins.join("drivers").join(&dev.driver);
                        let p = runtime.load_driver(&dir, &options).map_err(|source| {
                            DeviceError::Driver {
                                lane: lane.id.clone(),
                                device: dev.id.clone(),
                                driver: dev.driver.clone(),
                                source: Box::new(source),
                            }
                        })?;
                        drivers.insert(dev.driver.clone(), p.clone());
                        p
                    }
                };
                let instance = plugin
                    .open(&dev.settings)
                    .map_err(|source| DeviceError::Open {
                        lane: lane.id.clone(),
                        device: dev.id.clone(),
                        source,
                    })?;
                prepared.push((lane.id.clone(), dev.clone(), instance));
            }
        }
        // Pushed events (camera posts) are kept next to the store.
        let spool_root = manifest
            .store
            .path
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("spool");
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut devices = BTreeMap::new();
        let mut tasks = Vec::new();
        for (lane, dev, instance) in prepared {
            let stats = Arc::new(Mutex::new(DeviceStats::new(
                &dev,
                instance.plugin().manifest().id(),
            )));
            let (commands, command_rx) = mpsc::channel(16);
            let spool = spool_root.join(&lane).join(&dev.id);
            let link = transport::open(
                &dev.transport,
                format!("{lane}/{}", dev.id),
                spool,
                shutdown_rx.clone(),
            );
            let task = runner::Runner {
                lane: lane.as_str().into(),
                device: dev.id.as_str().into(),
                config: dev.clone(),
                driver: instance,
                link,
                commands: command_rx,
                events: events.clone(),
                stats: stats.clone(),
                shutdown: shutdown_rx.clone(),
            };
            tasks.push(tokio::spawn(task.run()));
            devices.insert(
                (lane.clone(), dev.id.clone()),
                DeviceHandle {
                    lane,
                    device: dev.id.clone(),
                    commands,
                    stats,
                },
            );
        }
        Ok(DeviceLayer {
            devices,
            shutdown,
            tasks,
        })
    }

    /// A device by lane and id.
    pub fn device(&self, lane: &str, device: &str) -> Result<&DeviceHandle, DeviceError> {
        self.devices
            .get(&(lane.to_owned(), device.to_owned()))
            .ok_or_else(|| DeviceError::Unknown {
                lane: lane.to_owned(),
                device: device.to_owned(),
            })
    }

    /// The command channel of a device, for a part that commands it directly (the lane's
    /// barrier).
    pub fn commands(&self, lane: &str, device: &str) -> Result<mpsc::Sender<Command>, DeviceError> {
        Ok(self.device(lane, device)?.commands.clone())
    }

    /// Every device.
    pub fn devices(&self) -> impl Iterator<Item = &DeviceHandle> {
        self.devices.values()
    }

    /// Sends a command (barrier open, display text) to a device.
    pub async fn command(
        &self,
        lane: &str,
        device: &str,
        command: Command,
    ) -> Result<(), DeviceError> {
        let d = self.device(lane, device)?;
        d.commands
            .send(command)
            .await
            .map_err(|_| DeviceError::Stopped {
                lane: lane.to_owned(),
                device: device.to_owned(),
            })
    }

    /// Stops every device task and closes the links.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Unix time in milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
