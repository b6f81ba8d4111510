//! The hot-swap supervisor: one task that takes the watcher's changes and the runtime's fault
//! notices one at a time, loads in the background, activates what passes and rolls back what
//! keeps faulting.
//!
//! Changes are handled in order, one at a time; a load runs on a blocking thread while the
//! devices and lanes go on with what they run. Nothing is replaced until the replacement has
//! passed the whole load path and, for a driver, opened for every device that uses it.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, watch as signal};
use tokio::task::JoinHandle;

use super::probation::{Probation, Verdict};
use super::site::{DeviceChange, diff};
use super::watch::{FileWatcher, Paths, Target};
use super::{SwapEvent, SwapSetup};
use crate::config::{DeviceConfig, Equipment, SiteManifest};
use crate::device::{DeviceHandle, DriverSwap};
use crate::lane::{LaneContext, RuleSet, RuleSetError};
use crate::plugin::manifest::FILE_NAME;
use crate::plugin::{DriverInstance, DriverPlugin, FaultNotice, LoadError, LoadOptions, Runtime};
use crate::store::{StoreError, Writer};

/// How many earlier rule sets are kept to roll back to.
const RULESET_HISTORY: usize = 4;

/// A driver in use: what runs and what it displaced.
struct DriverSlot {
    current: DriverPlugin,
    previous: Option<DriverPlugin>,
}

/// A refusal before activation: step and reason.
struct Refusal {
    plugin: Option<String>,
    step: String,
    reason: String,
}

impl Refusal {
    fn of(e: &LoadError) -> Self {
        let (plugin, reason) = match e {
            LoadError::Manifest(m) => (None, m.to_string()),
            LoadError::Refused { plugin, reason, .. } => (Some(plugin.clone()), reason.clone()),
        };
        Refusal {
            plugin,
            step: e.step().to_string(),
            reason,
        }
    }

    fn new(plugin: Option<String>, step: &str, reason: String) -> Self {
        Refusal {
            plugin,
            step: step.to_owned(),
            reason,
        }
    }
}

struct Supervisor {
    runtime: Runtime,
    /// The configuration in force: the manifest as started, with the edits applied live.
    manifest: SiteManifest,
    options: LoadOptions,
    devices: BTreeMap<(String, String), DeviceHandle>,
    drivers: BTreeMap<String, DriverSlot>,
    lanes: Option<Arc<LaneContext>>,
    /// Rule sets displaced, most recent last.
    ruleset_history: Vec<RuleSet>,
    probation: Probation,
    /// Builds rolled back: (target, digest). They are not activated again.
    rolled_back: HashSet<(Target, String)>,
    watcher: FileWatcher,
    faults: mpsc::UnboundedReceiver<FaultNotice>,
    events: mpsc::Sender<SwapEvent>,
    /// Where equipment files of applied edits are written.
    writer: Option<Writer>,
}

pub(super) fn spawn(
    setup: SwapSetup,
    events: mpsc::Sender<SwapEvent>,
    mut shutdown: signal::Receiver<bool>,
) -> JoinHandle<()> {
    let SwapSetup {
        manifest,
        runtime,
        devices,
        drivers,
        lanes,
        debounce,
        writer,
    } = setup;
    let paths = Paths {
        plugins: manifest.site.plugins.clone(),
        site: manifest.path.clone(),
        ruleset: manifest.ruleset_path().filter(|_| lanes.is_some()),
    };
    let watcher = match FileWatcher::start(paths, debounce) {
        Ok(w) => w,
        Err(e) => {
            let event = SwapEvent::Unavailable {
                reason: e.to_string(),
            };
            tracing::error!("{event}");
            return tokio::spawn(async move {
                let _ = events.send(event).await;
            });
        }
    };
    let (fault_tx, faults) = mpsc::unbounded_channel();
    runtime.observe_faults(move |notice| {
        let _ = fault_tx.send(notice.clone());
    });
    let mut s = Supervisor {
        options: manifest.site.load_options(),
        probation: Probation::new(manifest.site.rollback),
        devices: devices
            .into_iter()
            .map(|h| ((h.lane.clone(), h.device.clone()), h))
            .collect(),
        drivers: drivers
            .into_iter()
            .map(|(name, current)| {
                (
                    name,
                    DriverSlot {
                        current,
                        previous: None,
                    },
                )
            })
            .collect(),
        runtime,
        manifest,
        lanes,
        writer,
        ruleset_history: Vec::new(),
        rolled_back: HashSet::new(),
        watcher,
        faults,
        events,
    };
    tracing::info!(
        "hot swap: watching {} and {}",
        s.manifest.site.plugins.display(),
        s.manifest.path.display()
    );
    tokio::spawn(async move {
        s.missing_drivers().await;
        loop {
            tokio::select! {
                targets = s.watcher.next() => {
                    for t in targets {
                        s.changed(t).await;
                    }
                }
                Some(notice) = s.faults.recv() => s.fault(notice).await,
                _ = crate::device::transport::stopped(&mut shutdown) => break,
            }
        }
    })
}

impl Supervisor {
    async fn emit(&self, event: SwapEvent) {
        match event.severity() {
            kakou_plugin_sdk::model::Severity::Info => tracing::info!("{event}"),
            _ => tracing::warn!("{event}"),
        }
        let _ = self.events.send(event).await;
    }

    fn driver_dir(&self, name: &str) -> PathBuf {
        self.manifest.site.plugins.join("drivers").join(name)
    }

    /// The devices whose manifest entry names `driver`.
    fn users(&self, driver: &str) -> Vec<(String, DeviceConfig)> {
        self.manifest
            .lanes
            .iter()
            .flat_map(|l| l.devices.iter().map(move |d| (l.id.clone(), d.clone())))
            .filter(|(_, d)| d.driver == driver)
            .collect()
    }

    /// Devices waiting for a driver that is not installed: reported, and brought up at once if
    /// the driver landed before the watch started.
    async fn missing_drivers(&mut self) {
        let mut missing: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for lane in &self.manifest.lanes {
            for d in &lane.devices {
                if !self.drivers.contains_key(&d.driver) {
                    missing
                        .entry(d.driver.clone())
                        .or_default()
                        .push((lane.id.clone(), d.id.clone()));
                }
            }
        }
        for (driver, devices) in missing {
            let dir = self.driver_dir(&driver);
            if dir.join(FILE_NAME).exists() {
                self.driver_changed(&driver).await;
            } else {
                self.emit(SwapEvent::DriverMissing {
                    driver,
                    dir,
                    devices,
                })
                .await;
            }
        }
    }

    async fn changed(&mut self, target: Target) {
        tracing::debug!("{target} changed");
        match &target {
            Target::Driver(name) => self.driver_changed(name).await,
            Target::Rules(name) => {
                let in_use = self
                    .lanes
                    .as_ref()
                    .is_some_and(|ctx| read(ctx).manifest().plugins.iter().any(|p| p == name));
                if in_use {
                    self.reload_ruleset(&target).await;
                }
            }
            Target::RuleSet => {
                self.reload_ruleset(&target).await;
            }
            Target::Site => self.site_changed().await,
        }
    }

    /// Runs the load path on a driver folder, on a blocking thread.
    async fn load_driver(&self, name: &str) -> Result<DriverPlugin, Refusal> {
        let dir = self.driver_dir(name);
        let (runtime, options) = (self.runtime.clone(), self.options.clone());
        let loaded = tokio::task::spawn_blocking(move || runtime.load_driver(&dir, &options))
            .await
            .map_err(|e| Refusal::new(None, "load", format!("the load stopped: {e}")))?
            .map_err(|e| Refusal::of(&e))?;
        let found = &loaded.manifest().name;
        if found != name {
            return Err(Refusal::new(
                Some(loaded.id()),
                "manifest",
                format!(
                    "the folder drivers/{name} holds plugin `{found}`; devices with `driver = \"{name}\"` need a plugin named {name}"
                ),
            ));
        }
        Ok(loaded)
    }

    async fn driver_changed(&mut self, name: &str) {
        let users = self.users(name);
        if users.is_empty() {
            tracing::debug!("drivers/{name} changed; no device uses it");
            return;
        }
        let target = Target::Driver(name.to_owned());
        if !self.driver_dir(name).join(FILE_NAME).exists() {
            tracing::info!(
                "drivers/{name} has no {FILE_NAME} (removed, or being replaced); what runs stays"
            );
            return;
        }
        let plugin = match self.load_driver(name).await {
            Ok(p) => p,
            Err(r) => return self.refused(&target, r).await,
        };
        if let Some(slot) = self.drivers.get(name)
            && slot.current.same_as(&plugin)
        {
            tracing::debug!("drivers/{name}: {} unchanged", plugin.id());
            return;
        }
        if self
            .rolled_back
            .contains(&(target.clone(), plugin.digest_hex()))
        {
            let r = Refusal::new(
                Some(plugin.id()),
                "rollback",
                format!(
                    "this build (sha256 {}) was rolled back after faulting; it is not activated again: install another build",
                    plugin.digest_hex()
                ),
            );
            return self.refused(&target, r).await;
        }
        let devices = match self.activate(&plugin, &users).await {
            Ok(d) => d,
            Err(r) => return self.refused(&target, r).await,
        };
        let from = self.drivers.get(name).map(|s| s.current.id());
        let previous = self.drivers.remove(name).map(|s| s.current);
        self.probation.forget(&target);
        if previous.is_some() {
            self.probation
                .watch(target, plugin.id(), plugin.digest_hex());
        }
        self.drivers.insert(
            name.to_owned(),
            DriverSlot {
                current: plugin.clone(),
                previous,
            },
        );
        self.emit(SwapEvent::DriverSwapped {
            driver: name.to_owned(),
            from,
            to: plugin.id(),
            devices,
        })
        .await;
    }

    /// Opens `plugin` for every device in `users` (all must accept their settings), then swaps
    /// it in on each, in its own task.
    async fn activate(
        &self,
        plugin: &DriverPlugin,
        users: &[(String, DeviceConfig)],
    ) -> Result<Vec<(String, String, DriverSwap)>, Refusal> {
        let (p, devices) = (plugin.clone(), users.to_vec());
        let opened = tokio::task::spawn_blocking(move || {
            devices
                .iter()
                .map(|(lane, d)| {
                    p.open(&d.settings)
                        .map(|i| (lane.clone(), d.id.clone(), i))
                        .map_err(|e| format!("device {lane}/{}: {e}", d.id))
                })
                .collect::<Result<Vec<(String, String, DriverInstance)>, String>>()
        })
        .await
        .map_err(|e| Refusal::new(Some(plugin.id()), "open", format!("the open stopped: {e}")))?
        .map_err(|reason| Refusal::new(Some(plugin.id()), "open", reason))?;
        let mut done = Vec::new();
        for (lane, device, instance) in opened {
            let Some(handle) = self.devices.get(&(lane.clone(), device.clone())) else {
                tracing::warn!("device {lane}/{device} is not running; no swap there");
                continue;
            };
            match handle.swap_driver(instance).await {
                Ok(swap) => done.push((lane, device, swap)),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        Ok(done)
    }

    async fn refused(&self, target: &Target, r: Refusal) {
        self.emit(SwapEvent::Refused {
            target: target.to_string(),
            plugin: r.plugin,
            step: r.step,
            reason: r.reason,
        })
        .await;
    }

    /// Loads the site's rule set again (its file, or one of its plugins, changed) and puts it
    /// in force if it passes and differs from the one running.
    async fn reload_ruleset(&mut self, cause: &Target) -> bool {
        let Some(ctx) = self.lanes.clone() else {
            return false;
        };
        let Some(path) = self.manifest.ruleset_path() else {
            return false;
        };
        let (runtime, options, plugins) = (
            self.runtime.clone(),
            self.options.clone(),
            self.manifest.site.plugins.clone(),
        );
        let loaded =
            tokio::task::spawn_blocking(move || RuleSet::load(&runtime, &path, &plugins, &options))
                .await;
        let new = match loaded {
            Ok(Ok(r)) => r,
            Ok(Err(e @ (RuleSetError::Manifest(_) | RuleSetError::NotFound { .. }))) => {
                self.emit(SwapEvent::RuleSetRefused {
                    error: e.to_string(),
                })
                .await;
                return false;
            }
            Ok(Err(RuleSetError::Plugin { plugin, source, .. })) => {
                self.refused(&Target::Rules(plugin), Refusal::of(&source))
                    .await;
                return false;
            }
            Err(e) => {
                self.refused(
                    cause,
                    Refusal::new(None, "load", format!("the load stopped: {e}")),
                )
                .await;
                return false;
            }
        };
        let old = read(&ctx);
        if same_ruleset(&old, &new) {
            tracing::debug!("rule set {} unchanged", new.id());
            return true;
        }
        for p in new.plugins() {
            let name = p.manifest().name.clone();
            if self
                .rolled_back
                .contains(&(Target::Rules(name.clone()), p.digest_hex()))
            {
                let r = Refusal::new(
                    Some(p.id()),
                    "rollback",
                    format!(
                        "this build (sha256 {}) was rolled back after faulting; it is not activated again: install another build",
                        p.digest_hex()
                    ),
                );
                self.refused(&Target::Rules(name), r).await;
                return false;
            }
        }
        *ctx.ruleset.write().unwrap_or_else(|e| e.into_inner()) = new.clone();
        // New builds go on probation; builds no longer in force leave it.
        for p in old.plugins() {
            if !new.plugins().iter().any(|n| n.same_as(p)) {
                self.probation.forget_build(&p.digest_hex());
            }
        }
        for p in new.plugins() {
            if !old.plugins().iter().any(|o| o.same_as(p)) {
                self.probation.watch(
                    Target::Rules(p.manifest().name.clone()),
                    p.id(),
                    p.digest_hex(),
                );
            }
        }
        let event = SwapEvent::RuleSetSwapped {
            from: old.id(),
            to: new.id(),
            from_plugins: versions(&old),
            to_plugins: versions(&new),
        };
        self.ruleset_history.push(old);
        if self.ruleset_history.len() > RULESET_HISTORY {
            self.ruleset_history.remove(0);
        }
        self.emit(event).await;
        true
    }

    async fn fault(&mut self, notice: FaultNotice) {
        let Some(verdict) = self.probation.fault(&notice) else {
            return;
        };
        self.rolled_back
            .insert((verdict.target.clone(), verdict.digest.clone()));
        match verdict.target.clone() {
            Target::Driver(name) => self.roll_back_driver(&name, verdict).await,
            Target::Rules(_) => self.roll_back_rules(verdict).await,
            Target::RuleSet | Target::Site => {}
        }
    }

    async fn roll_back_driver(&mut self, name: &str, v: Verdict) {
        let previous = match self.drivers.get(name) {
            Some(slot) if slot.current.digest_hex() == v.digest => slot.previous.clone(),
            _ => return, // replaced meanwhile
        };
        let Some(previous) = previous else {
            return self
                .emit(SwapEvent::RollbackFailed {
                    plugin: v.plugin,
                    reason: "no earlier version of it ran in this daemon".into(),
                })
                .await;
        };
        let users = self.users(name);
        if let Err(r) = self.activate(&previous, &users).await {
            return self
                .emit(SwapEvent::RollbackFailed {
                    plugin: v.plugin,
                    reason: format!("{} would not open again: {}", previous.id(), r.reason),
                })
                .await;
        }
        self.drivers.insert(
            name.to_owned(),
            DriverSlot {
                current: previous.clone(),
                previous: None,
            },
        );
        self.emit(SwapEvent::RolledBack {
            target: v.target.to_string(),
            from: v.plugin,
            to: previous.id(),
            faults: v.faults,
            call: v.call,
            error: v.error,
        })
        .await;
    }

    async fn roll_back_rules(&mut self, v: Verdict) {
        let Some(ctx) = self.lanes.clone() else {
            return;
        };
        let current = read(&ctx);
        if !current.plugins().iter().any(|p| p.digest_hex() == v.digest) {
            return; // replaced meanwhile
        }
        let Some(at) = self
            .ruleset_history
            .iter()
            .rposition(|r| !r.plugins().iter().any(|p| p.digest_hex() == v.digest))
        else {
            return self
                .emit(SwapEvent::RollbackFailed {
                    plugin: v.plugin,
                    reason: "no earlier rule set without it ran in this daemon".into(),
                })
                .await;
        };
        let earlier = self.ruleset_history.remove(at);
        self.ruleset_history.truncate(at);
        *ctx.ruleset.write().unwrap_or_else(|e| e.into_inner()) = earlier.clone();
        for p in current.plugins() {
            self.probation.forget_build(&p.digest_hex());
        }
        self.emit(SwapEvent::RolledBack {
            target: v.target.to_string(),
            from: v.plugin,
            to: format!(
                "rule set {} [{}]",
                earlier.id(),
                versions(&earlier).join(", ")
            ),
            faults: v.faults,
            call: v.call,
            error: v.error,
        })
        .await;
    }

    async fn site_changed(&mut self) {
        let path = self.manifest.path.clone();
        let edited = tokio::task::spawn_blocking(move || {
            SiteManifest::load(&path).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("reading it stopped: {e}")));
        let edited = match edited {
            Ok(m) => m,
            Err(error) => return self.emit(SwapEvent::SiteRefused { error }).await,
        };
        let changes = diff(&self.manifest, &edited, self.lanes.is_some());
        if changes.is_empty() {
            tracing::debug!("site manifest unchanged");
            return;
        }
        let mut applied = Vec::new();
        let mut restart = changes.restart.clone();
        if changes.policy {
            self.manifest.site.allow_dev_plugins = edited.site.allow_dev_plugins;
            self.manifest.site.trusted_keys = edited.site.trusted_keys.clone();
            self.options = self.manifest.site.load_options();
            applied.push(format!(
                "plugin policy (allow-dev-plugins = {}, {} trusted keys) for every later load; running plugins stay",
                edited.site.allow_dev_plugins,
                edited.site.trusted_keys.len()
            ));
        }
        if changes.rollback {
            self.manifest.site.rollback = edited.site.rollback;
            self.probation.set_policy(edited.site.rollback);
            applied.push(format!(
                "rollback-after = {}, rollback-probation-calls = {}",
                edited.site.rollback.after, edited.site.rollback.probation_calls
            ));
        }
        if let Some(name) = &changes.ruleset {
            let before = self.manifest.site.ruleset.replace(name.clone());
            let watched = self
                .watcher
                .set_ruleset(self.manifest.ruleset_path().as_deref());
            if let Err(e) = watched {
                tracing::warn!("{e}");
            }
            if self.reload_ruleset(&Target::RuleSet).await {
                applied.push(format!("rule set {name}"));
            } else {
                self.manifest.site.ruleset = before;
                if let Err(e) = self
                    .watcher
                    .set_ruleset(self.manifest.ruleset_path().as_deref())
                {
                    tracing::warn!("{e}");
                }
                restart.push(format!(
                    "rule set {name} was refused (see the alarm before this one); fix it and save the manifest again"
                ));
            }
        }
        if !changes.equipment.is_empty() {
            match self.change_equipment(&changes.equipment).await {
                Ok(text) => applied.push(text),
                Err(e) => restart.push(format!(
                    "equipment files not written to the store ({e}); they stay as they were \
                     until the manifest is saved again or the daemon restarts"
                )),
            }
        }
        for change in &changes.devices {
            match self.change_device(change).await {
                Ok(text) => applied.push(text),
                Err(r) => {
                    let target = Target::Driver(change.config.driver.clone());
                    self.refused(&target, r).await;
                }
            }
        }
        if !applied.is_empty() {
            self.emit(SwapEvent::SiteApplied { changes: applied }).await;
        }
        if !restart.is_empty() {
            self.emit(SwapEvent::RestartNeeded { changes: restart })
                .await;
        }
    }

    /// Devices' equipment files changed: the manifest in force takes them, the store's
    /// equipment table is rewritten from it (through the daemon's writer) and the devices'
    /// status reports them.
    async fn change_equipment(
        &mut self,
        changed: &[(String, String, Equipment)],
    ) -> Result<String, StoreError> {
        let mut names = Vec::new();
        for (lane, device, equipment) in changed {
            let dev = self
                .manifest
                .lanes
                .iter_mut()
                .filter(|l| l.id == *lane)
                .flat_map(|l| l.devices.iter_mut())
                .find(|d| d.id == *device);
            if let Some(dev) = dev {
                dev.equipment = equipment.clone();
            }
            if let Some(h) = self.devices.get(&(lane.clone(), device.clone())) {
                h.set_equipment(equipment.clone());
            }
            names.push(format!("{lane}/{device}"));
        }
        if let Some(writer) = &self.writer {
            let site = self.manifest.clone();
            writer
                .write(move |tx| tx.put_site_equipment(&site).map(drop))
                .await?;
        }
        Ok(format!("equipment file of {}", names.join(", ")))
    }

    /// A device's driver or settings changed: opens its (possibly other) driver with its new
    /// settings and swaps it in on that device.
    async fn change_device(&mut self, change: &DeviceChange) -> Result<String, Refusal> {
        let (lane, config) = (&change.lane, &change.config);
        let installed = self.drivers.contains_key(&config.driver);
        let plugin = match self.drivers.get(&config.driver) {
            Some(slot) => slot.current.clone(),
            None => {
                if !self.driver_dir(&config.driver).join(FILE_NAME).exists() {
                    return Err(Refusal::new(
                        None,
                        "manifest",
                        format!(
                            "device {lane}/{}: driver {} is not installed in {}",
                            config.id,
                            config.driver,
                            self.driver_dir(&config.driver).display()
                        ),
                    ));
                }
                self.load_driver(&config.driver).await?
            }
        };
        let swapped = self
            .activate(&plugin, &[(lane.clone(), config.clone())])
            .await?;
        if !installed {
            self.drivers.insert(
                config.driver.clone(),
                DriverSlot {
                    current: plugin.clone(),
                    previous: None,
                },
            );
        }
        if let Some(dev) = self
            .manifest
            .lanes
            .iter_mut()
            .filter(|l| l.id == *lane)
            .flat_map(|l| l.devices.iter_mut())
            .find(|d| d.id == config.id)
        {
            dev.driver = config.driver.clone();
            dev.settings = config.settings.clone();
        }
        let carried = swapped.first().map_or(0, |(_, _, s)| s.carried_bytes);
        Ok(format!(
            "device {lane}/{} {} ({} now, {carried} bytes carried over)",
            config.id,
            change.what,
            plugin.id()
        ))
    }
}

/// The rule set in force.
fn read(ctx: &LaneContext) -> RuleSet {
    ctx.ruleset
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

fn same_ruleset(a: &RuleSet, b: &RuleSet) -> bool {
    a.manifest() == b.manifest()
        && a.plugins().len() == b.plugins().len()
        && a.plugins()
            .iter()
            .zip(b.plugins())
            .all(|(x, y)| x.same_as(y))
}

fn versions(r: &RuleSet) -> Vec<String> {
    r.plugins().iter().map(|p| p.id()).collect()
}
