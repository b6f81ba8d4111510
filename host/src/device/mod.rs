//! The device layer: every configured device's transport, its driver instance, its status and
//! counters, and the commands sent to it.
//!
//! Owns links ([`transport`]), the per-device task that feeds bytes to the driver and turns its
//! output into [`DeviceEvent`]s ([`runner`]), device statistics and equipment files
//! ([`DeviceStats`]), and the driver swap on one device ([`DeviceHandle::swap_driver`]: the new
//! decoder takes over between two feeds, first fed what the old one had not consumed). It does
//! not assemble passages, know about the bus or store, or decide what to swap (that is
//! `crate::swap`'s): events go to whoever holds the receiving end of the channel given to
//! [`DeviceLayer::start`].

mod runner;
mod stats;
pub mod transport;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kakou_plugin_sdk::model::{Command, Reading, Rejected};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::SiteManifest;
use crate::plugin::{CallError, DriverInstance, DriverPlugin, LoadError, Runtime};
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
    /// The device did not take a command.
    #[error("device {lane}/{device}: {source}")]
    Command {
        /// Lane id.
        lane: String,
        /// Device id.
        device: String,
        /// Why.
        #[source]
        source: CommandFailed,
    },
}

/// A command for a device's task, with where to say what became of it.
#[derive(Debug)]
pub struct DeviceCommand {
    /// The command.
    pub command: Command,
    /// Answered once the command's bytes were handed to the device's link, or with why not.
    pub receipt: Option<oneshot::Sender<Result<CommandSent, CommandFailed>>>,
}

/// A command whose bytes went to the device's link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSent {
    /// How many bytes.
    pub bytes: usize,
}

/// Why a command did not reach its device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandFailed {
    /// The device's driver is not installed yet.
    #[error("command not sent: {0}")]
    NoDriver(String),
    /// The driver could not encode it (after a second try on a fresh instance).
    #[error("the driver could not encode the command: {0}")]
    Encode(String),
    /// The link to the device is down.
    #[error("the link to the device is down: {0}")]
    LinkDown(String),
}

/// What a driver swap on one device did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverSwap {
    /// The driver that ran before (`name@version`); none when the device was waiting for one.
    pub previous: Option<String>,
    /// The driver running now.
    pub current: String,
    /// Bytes the old decoder had not consumed (a frame cut by the swap), handed back by its
    /// `drain()` and fed to the new decoder before any byte that arrived after them.
    pub carried_bytes: usize,
    /// Readings the new decoder made of those bytes.
    pub carried_readings: usize,
    /// Why the old decoder's unconsumed bytes were lost, when its `drain()` call faulted.
    pub lost: Option<String>,
}

/// A swap handed to a device's task.
pub(crate) struct SwapRequest {
    pub(crate) instance: DriverInstance,
    pub(crate) reply: oneshot::Sender<DriverSwap>,
}

impl std::fmt::Debug for SwapRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwapRequest")
            .field("plugin", &self.instance.plugin().id())
            .finish_non_exhaustive()
    }
}

/// A running device, as seen from outside its task.
#[derive(Debug, Clone)]
pub struct DeviceHandle {
    /// Lane id.
    pub lane: String,
    /// Device id.
    pub device: String,
    commands: mpsc::Sender<DeviceCommand>,
    swaps: mpsc::Sender<SwapRequest>,
    stats: Arc<Mutex<DeviceStats>>,
}

impl DeviceHandle {
    /// A snapshot of the device's status and counters.
    pub fn stats(&self) -> DeviceStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the equipment file the device's status reports (an applied manifest edit).
    pub fn set_equipment(&self, equipment: crate::config::Equipment) {
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .equipment = equipment;
    }

    /// Replaces the device's decoder with `instance`, inside the device's task, between two
    /// feeds: the old decoder's unconsumed bytes (`drain`) go to the new one first, then every
    /// byte that arrived meanwhile, in order, so no frame is lost or decoded twice. Returns
    /// once the new decoder is in place.
    pub async fn swap_driver(&self, instance: DriverInstance) -> Result<DriverSwap, DeviceError> {
        let stopped = || DeviceError::Stopped {
            lane: self.lane.clone(),
            device: self.device.clone(),
        };
        let (reply, done) = oneshot::channel();
        self.swaps
            .send(SwapRequest { instance, reply })
            .await
            .map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())
    }
}

/// How [`DeviceLayer::start_with`] treats a device whose driver is not installed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StartOptions {
    /// A device whose driver folder (`plugins/drivers/<name>/plugin.toml`) does not exist
    /// starts without a driver, offline and waiting for it (its bytes are counted and rejected),
    /// instead of stopping the start; a hot swap brings the driver in when it lands. A driver
    /// that is there but refused still stops the start.
    pub wait_for_missing_drivers: bool,
}

/// Every configured device, running.
pub struct DeviceLayer {
    devices: BTreeMap<(String, String), DeviceHandle>,
    drivers: BTreeMap<String, DriverPlugin>,
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
        Self::start_with(manifest, runtime, events, StartOptions::default()).await
    }

    /// [`start`](Self::start), with devices whose driver is not installed waiting for it when
    /// `options` say so.
    pub async fn start_with(
        manifest: &SiteManifest,
        runtime: &Runtime,
        events: mpsc::Sender<DeviceEvent>,
        start: StartOptions,
    ) -> Result<Self, DeviceError> {
        let options = manifest.site.load_options();
        let mut drivers: BTreeMap<String, DriverPlugin> = BTreeMap::new();
        let mut prepared = Vec::new();
        for lane in &manifest.lanes {
            for dev in &lane.devices {
                let dir = manifest.site.plugins.join("drivers").join(&dev.driver);
                let plugin = match drivers.get(&dev.driver) {
                    Some(p) => p.clone(),
                    None if start.wait_for_missing_drivers
                        && !dir.join(crate::plugin::manifest::FILE_NAME).exists() =>
                    {
                        prepared.push((lane.id.clone(), dev.clone(), None));
                        continue;
                    }
                    None => {
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
                prepared.push((lane.id.clone(), dev.clone(), Some(instance)));
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
            let driver_id = match &instance {
                Some(i) => i.plugin().id(),
                None => format!("{} (not installed)", dev.driver),
            };
            let stats = Arc::new(Mutex::new(DeviceStats::new(&dev, driver_id)));
            let (commands, command_rx) = mpsc::channel(16);
            let (swaps, swap_rx) = mpsc::channel(1);
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
                driver_dir: manifest.site.plugins.join("drivers").join(&dev.driver),
                config: dev.clone(),
                driver: instance,
                link,
                commands: command_rx,
                swaps: swap_rx,
                events: events.clone(),
                stats: stats.clone(),
                shutdown: shutdown_rx.clone(),
                answer_due: None,
            };
            tasks.push(tokio::spawn(task.run()));
            devices.insert(
                (lane.clone(), dev.id.clone()),
                DeviceHandle {
                    lane,
                    device: dev.id.clone(),
                    commands,
                    swaps,
                    stats,
                },
            );
        }
        Ok(DeviceLayer {
            devices,
            drivers,
            shutdown,
            tasks,
        })
    }

    /// The driver plugins loaded at start, by name (a device waiting for its driver has none).
    pub fn drivers(&self) -> &BTreeMap<String, DriverPlugin> {
        &self.drivers
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
    pub fn commands(
        &self,
        lane: &str,
        device: &str,
    ) -> Result<mpsc::Sender<DeviceCommand>, DeviceError> {
        Ok(self.device(lane, device)?.commands.clone())
    }

    /// Every device.
    pub fn devices(&self) -> impl Iterator<Item = &DeviceHandle> {
        self.devices.values()
    }

    /// Sends a command (barrier open, display text) to a device and waits until its bytes
    /// were handed to the device's link, or says why not.
    pub async fn command(
        &self,
        lane: &str,
        device: &str,
        command: Command,
    ) -> Result<CommandSent, DeviceError> {
        let d = self.device(lane, device)?;
        let stopped = || DeviceError::Stopped {
            lane: lane.to_owned(),
            device: device.to_owned(),
        };
        let (tx, rx) = oneshot::channel();
        d.commands
            .send(DeviceCommand {
                command,
                receipt: Some(tx),
            })
            .await
            .map_err(|_| stopped())?;
        rx.await
            .map_err(|_| stopped())?
            .map_err(|source| DeviceError::Command {
                lane: lane.to_owned(),
                device: device.to_owned(),
                source,
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
