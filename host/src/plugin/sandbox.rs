//! The sandbox every call runs in: store data, resource limits, host imports and their
//! capability gate, and the translation of wasmtime errors into [`CallErrorKind`].
//!
//! Plugins get no files (no preopens), no sockets, no environment and no arguments. Rules
//! plugins get clocks frozen at the passage's time and a fixed random seed, so a verdict is
//! reproducible. Host imports check the manifest's capabilities on every call.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kakou_plugin_sdk::Lookups;
use kakou_plugin_sdk::mirror::Mirror;
use kakou_plugin_sdk::model::{Level, SubjectKind};
use rand::SeedableRng;
use rand::rngs::StdRng;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::bindings::{
    wit_controls, wit_documents, wit_history, wit_log, wit_parameters, wit_passage,
    wit_registrations, wit_types,
};
use super::error::{CallErrorKind, Denied, MemoryLimitHit};
use super::manifest::{Capability, Limits, PluginManifest};

/// Most log lines a plugin may write per call; the rest are counted and dropped.
const LOG_LINES_PER_CALL: u32 = 64;
/// Longest log line kept, bytes.
const LOG_LINE_MAX: usize = 2048;
/// Bytes of stderr kept per instance (a panic message fits many times over).
const STDERR_CAPACITY: usize = 64 * 1024;

/// Per-store state.
pub(crate) struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    plugin: Arc<str>,
    capabilities: BTreeSet<Capability>,
    lookups: Option<Arc<dyn Lookups + Send + Sync>>,
    log_budget: u32,
    logs_dropped: u32,
    stderr: MemoryOutputPipe,
    stderr_seen: usize,
}

/// Memory and table limits, recording what was refused.
struct Limiter {
    memory_bytes: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            return Err(MemoryLimitHit {
                desired,
                limit: self.memory_bytes,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}

/// A wall clock stopped at one instant.
struct FrozenWall(Duration);

impl HostWallClock for FrozenWall {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        self.0
    }
}

/// A monotonic clock that never moves.
struct FrozenMonotonic;

impl HostMonotonicClock for FrozenMonotonic {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// How a store's clocks behave.
pub(crate) enum Clocks {
    /// The host's clocks (drivers).
    Real,
    /// Frozen at this Unix time in milliseconds (rules: the passage's `now-ms`).
    FrozenAt(i64),
}

impl Sandbox {
    /// A store for one plugin instance, with its limits applied and fuel for one call.
    pub(crate) fn store(
        engine: &wasmtime::Engine,
        manifest: &PluginManifest,
        clocks: Clocks,
        lookups: Option<Arc<dyn Lookups + Send + Sync>>,
    ) -> Store<Sandbox> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let mut wasi = WasiCtx::builder();
        wasi.stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if let Clocks::FrozenAt(ms) = clocks {
            let since_epoch = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
            wasi.wall_clock(FrozenWall(since_epoch))
                .monotonic_clock(FrozenMonotonic)
                .insecure_random_seed(0x6b616b6f75)
                .secure_random(StdRng::seed_from_u64(0x6b61_6b6f_7521));
        }
        let data = Sandbox {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: Limiter {
                memory_bytes: manifest.limits.memory_bytes,
            },
            plugin: manifest.id().into(),
            capabilities: manifest.capabilities.clone(),
            lookups,
            log_budget: LOG_LINES_PER_CALL,
            logs_dropped: 0,
            stderr,
            stderr_seen: 0,
        };
        let mut store = Store::new(engine, data);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        store
    }

    /// Arms fuel and deadline for one call and resets per-call budgets.
    pub(crate) fn arm(store: &mut Store<Sandbox>, limits: &Limits, tick: Duration) {
        // Fuel is always enabled on the engine, so this cannot fail.
        let _ = store.set_fuel(limits.fuel);
        let tick_ms = tick.as_millis().max(1) as u64;
        store.set_epoch_deadline(u64::from(limits.deadline_ms).div_ceil(tick_ms) + 1);
        let data = store.data_mut();
        data.log_budget = LOG_LINES_PER_CALL;
        data.logs_dropped = 0;
    }

    /// Logs stderr written since the last look; returns the last panic message in it, or its
    /// last line.
    pub(crate) fn take_stderr(&mut self) -> Option<String> {
        let all = self.stderr.contents();
        if all.len() <= self.stderr_seen {
            return None;
        }
        let text = String::from_utf8_lossy(&all[self.stderr_seen..]).into_owned();
        self.stderr_seen = all.len();
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        for line in &lines {
            tracing::warn!(plugin = %self.plugin, "stderr: {line}");
        }
        let from = lines
            .iter()
            .rposition(|l| l.contains("panicked at"))
            .unwrap_or(lines.len().saturating_sub(1));
        let tail = lines.get(from..).unwrap_or_default().join(" ");
        (!tail.is_empty()).then_some(tail)
    }

    /// Says how many log lines were dropped in the last call.
    pub(crate) fn report_dropped_logs(&mut self) {
        if self.logs_dropped > 0 {
            tracing::warn!(plugin = %self.plugin, dropped = self.logs_dropped, "plugin log lines dropped (limit {LOG_LINES_PER_CALL} per call)");
            self.logs_dropped = 0;
        }
    }

    fn grant(&self, capability: Capability, function: &'static str) -> wasmtime::Result<()> {
        if self.capabilities.contains(&capability) {
            Ok(())
        } else {
            Err(Denied {
                capability: capability.name(),
                function,
            }
            .into())
        }
    }

    fn lookups(&self) -> Option<&(dyn Lookups + Send + Sync)> {
        self.lookups.as_deref()
    }
}

/// Runs a call into a guest off the async executor.
///
/// WASI's synchronous bindings block on a Tokio runtime for stream operations (a guest writing
/// to stderr, as every Rust panic does), and blocking on a runtime from one of its own worker
/// threads panics, which would take the calling task down with the plugin's fault (a device's
/// task, a lane's). On a multi-thread runtime the call runs in `block_in_place`; on a
/// current-thread runtime, on a scoped thread of its own; outside any runtime, here.
pub(crate) fn off_executor<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => f(),
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|s| match s.spawn(f).join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    }
}

/// Turns a failed call's error into a typed reason. `panic` is the last stderr line, if any.
pub(crate) fn classify(
    error: &wasmtime::Error,
    limits: &Limits,
    panic: Option<String>,
) -> CallErrorKind {
    if let Some(d) = error.downcast_ref::<Denied>() {
        return CallErrorKind::CapabilityDenied {
            capability: d.capability,
            function: d.function,
        };
    }
    if let Some(m) = error.downcast_ref::<MemoryLimitHit>() {
        return CallErrorKind::MemoryLimit {
            desired: m.desired,
            limit: m.limit,
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallErrorKind::Timeout {
            deadline_ms: limits.deadline_ms,
        },
        Some(Trap::OutOfFuel) => CallErrorKind::OutOfFuel { fuel: limits.fuel },
        Some(trap) => CallErrorKind::Trap(match panic {
            Some(p) => format!("{trap}; the plugin said: {p}"),
            None => trap.to_string(),
        }),
        None => CallErrorKind::Trap(match panic {
            Some(p) => format!("{error:#}; the plugin said: {p}"),
            None => format!("{error:#}"),
        }),
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit_types::Host for Sandbox {}

impl wit_passage::Host for Sandbox {}

impl wit_log::Host for Sandbox {
    fn log(&mut self, level: wit_log::Level, message: String) -> wasmtime::Result<()> {
        if self.log_budget == 0 {
            self.logs_dropped += 1;
            return Ok(());
        }
        self.log_budget -= 1;
        let mut message = message;
        if message.len() > LOG_LINE_MAX {
            let mut cut = LOG_LINE_MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let plugin = &*self.plugin;
        match level.mirror() {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}

impl wit_registrations::Host for Sandbox {
    fn vehicle_by_plate(
        &mut self,
        plate: String,
    ) -> wasmtime::Result<Option<wit_registrations::Vehicle>> {
        self.grant(Capability::Registrations, "registrations.vehicle-by-plate")?;
        Ok(self.lookups().and_then(|l| l.vehicle(&plate)).mirror())
    }
    fn vehicle_by_tag(
        &mut self,
        epc: String,
    ) -> wasmtime::Result<Option<wit_registrations::Vehicle>> {
        self.grant(Capability::Registrations, "registrations.vehicle-by-tag")?;
        Ok(self.lookups().and_then(|l| l.vehicle_by_tag(&epc)).mirror())
    }
    fn driver_by_card(
        &mut self,
        uid: String,
    ) -> wasmtime::Result<Option<wit_registrations::TruckDriver>> {
        self.grant(Capability::Registrations, "registrations.driver-by-card")?;
        Ok(self.lookups().and_then(|l| l.driver_by_card(&uid)).mirror())
    }
    fn enterprise_by_code(
        &mut self,
        code: String,
    ) -> wasmtime::Result<Option<wit_registrations::Enterprise>> {
        self.grant(
            Capability::Registrations,
            "registrations.enterprise-by-code",
        )?;
        Ok(self.lookups().and_then(|l| l.enterprise(&code)).mirror())
    }
    fn station_by_code(
        &mut self,
        code: String,
    ) -> wasmtime::Result<Option<wit_registrations::Station>> {
        self.grant(Capability::Registrations, "registrations.station-by-code")?;
        Ok(self.lookups().and_then(|l| l.station(&code)).mirror())
    }
}

impl wit_documents::Host for Sandbox {
    fn by_container(&mut self, number: String) -> wasmtime::Result<Vec<wit_documents::Document>> {
        self.grant(Capability::Documents, "documents.by-container")?;
        Ok(self
            .lookups()
            .map(|l| l.documents_by_container(&number))
            .unwrap_or_default()
            .mirror())
    }
    fn by_vehicle(&mut self, plate: String) -> wasmtime::Result<Vec<wit_documents::Document>> {
        self.grant(Capability::Documents, "documents.by-vehicle")?;
        Ok(self
            .lookups()
            .map(|l| l.documents_by_vehicle(&plate))
            .unwrap_or_default()
            .mirror())
    }
    fn by_number(&mut self, number: String) -> wasmtime::Result<Option<wit_documents::Document>> {
        self.grant(Capability::Documents, "documents.by-number")?;
        Ok(self.lookups().and_then(|l| l.document(&number)).mirror())
    }
}

impl wit_controls::Host for Sandbox {
    fn active(
        &mut self,
        kind: wit_controls::SubjectKind,
        subject: String,
    ) -> wasmtime::Result<Vec<wit_controls::ControlOrder>> {
        self.grant(Capability::ControlOrders, "controls.active")?;
        let kind: SubjectKind = kind.mirror();
        Ok(self
            .lookups()
            .map(|l| l.control_orders(kind, &subject))
            .unwrap_or_default()
            .mirror())
    }
}

impl wit_parameters::Host for Sandbox {
    fn get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        self.grant(Capability::Parameters, "parameters.get")?;
        Ok(self.lookups().and_then(|l| l.parameter(&name)))
    }
}

impl wit_history::Host for Sandbox {
    fn vehicle_balance(&mut self, plate: String) -> wasmtime::Result<i32> {
        self.grant(Capability::History, "history.vehicle-balance")?;
        Ok(self.lookups().map_or(0, |l| l.vehicle_balance(&plate)))
    }
}
