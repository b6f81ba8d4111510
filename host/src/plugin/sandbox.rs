//! The sandbox every call runs in: store data, resource limits, host imports and their
//! capability gate, and the translation of wasmtime errors into [`CallErrorKind`].
//!
//! Plugins get no files (no preopens), no sockets, no environment and no arguments. Rules
//! plugins get clocks frozen at the passage's time and a fixed random seed, so a verdict is
//! reproducible. Host imports check the manifest's capabilities on every call.
//!
//! A call is bounded by fuel (the work it may do) and by its deadline, which counts the CPU
//! time of the thread running the call, not the time on the wall (see [`CallBudget`]): a gate
//! PC under load may leave the thread descheduled for longer than a driver's 50 ms deadline,
//! and a call must not be killed (its barrier command dropped) for time it was not running.
//! A wall-clock backstop of [`WALL_BACKSTOP_FACTOR`] times the deadline still ends a call
//! that makes no progress for that long.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kakou_plugin_sdk::Lookups;
use kakou_plugin_sdk::mirror::Mirror;
use kakou_plugin_sdk::model::{Level, SubjectKind};
use rand::SeedableRng;
use rand::rngs::StdRng;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::bindings::{
    wit_controls, wit_documents, wit_history, wit_log, wit_parameters, wit_passage,
    wit_registrations, wit_types,
};
use super::error::{CallErrorKind, Denied, MemoryLimitHit, Stalled};
use super::manifest::{Capability, Limits, PluginManifest};
use super::pool::Home;

/// Most log lines a plugin may write per call; the rest are counted and dropped.
const LOG_LINES_PER_CALL: u32 = 64;
/// Longest log line kept, bytes.
const LOG_LINE_MAX: usize = 2048;
/// Bytes of stderr kept per instance (a panic message fits many times over).
const STDERR_CAPACITY: usize = 64 * 1024;
/// A call still unfinished after this many times its deadline in wall-clock time is ended
/// whatever CPU time it used: its thread was starved, or the call keeps waiting (a driver
/// sleeping through WASI in a loop), for far longer than any load spike explains.
pub(crate) const WALL_BACKSTOP_FACTOR: u32 = 20;

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
    budget: CallBudget,
}

/// The time limits of the call in progress, and when (on which clocks) it started.
///
/// The deadline is CPU time of the thread running the call, read from
/// `CLOCK_THREAD_CPUTIME_ID`: time the thread spends descheduled, or blocked in a host import,
/// is not charged to the plugin. Guest code and the host imports it calls are. Fuel bounds the
/// guest's work independently of any clock.
///
/// The epoch ticker only makes wasmtime call back into [`CallBudget::check`] once the thread
/// *could* have used up its budget (CPU time never runs faster than the wall clock), so a call
/// that finishes in time is never looked at: the deadline is first checked `deadline` after the
/// call starts, then again when what is left of the CPU budget (or of the wall-clock backstop,
/// whichever is sooner) could have run out.
pub(crate) struct CallBudget {
    cpu_limit: Duration,
    wall_limit: Duration,
    started: Option<Started>,
}

#[derive(Debug, Clone, Copy)]
struct Started {
    /// The thread's CPU time at the start; `None` when the thread clock cannot be read (then
    /// the wall clock stands in for it, which only makes the deadline stricter).
    cpu: Option<Duration>,
    wall: Instant,
}

/// What to do with a call whose epoch deadline came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Let it run; look again no sooner than this.
    Continue(Duration),
    /// It used up its CPU time.
    OverDeadline,
    /// It has been running for the whole wall-clock backstop.
    OverBackstop,
}

impl CallBudget {
    fn new(limits: &Limits) -> Self {
        let mut budget = CallBudget {
            cpu_limit: Duration::ZERO,
            wall_limit: Duration::ZERO,
            started: None,
        };
        budget.set(limits);
        budget
    }

    fn set(&mut self, limits: &Limits) {
        self.cpu_limit = Duration::from_millis(u64::from(limits.deadline_ms));
        self.wall_limit = self.cpu_limit * WALL_BACKSTOP_FACTOR;
        self.started = None;
    }

    /// Starts the clocks. Must run on the thread that makes the call.
    fn start(&mut self) {
        self.started = Some(Started {
            cpu: thread_cpu_time(),
            wall: Instant::now(),
        });
    }

    /// Looks at the clocks of the thread running the call (wasmtime calls back on it).
    fn check(&self) -> Next {
        let Some(started) = self.started else {
            // Not armed: nothing to measure against, so treat the call as over.
            return Next::OverDeadline;
        };
        let wall_used = started.wall.elapsed();
        let cpu_used = match (started.cpu, thread_cpu_time()) {
            (Some(start), Some(now)) => now.saturating_sub(start),
            _ => wall_used,
        };
        next(self.cpu_limit, self.wall_limit, cpu_used, wall_used)
    }
}

/// The deadline accounting itself, apart from the clocks: a call that has used `cpu_used` of
/// its `cpu_limit` and been running for `wall_used` of its `wall_limit`.
fn next(
    cpu_limit: Duration,
    wall_limit: Duration,
    cpu_used: Duration,
    wall_used: Duration,
) -> Next {
    if cpu_used >= cpu_limit {
        Next::OverDeadline
    } else if wall_used >= wall_limit {
        Next::OverBackstop
    } else {
        // The CPU budget cannot run out sooner than its remainder on the wall clock.
        Next::Continue((cpu_limit - cpu_used).min(wall_limit - wall_used))
    }
}

/// CPU time consumed by the calling thread.
fn thread_cpu_time() -> Option<Duration> {
    use nix::time::{ClockId, clock_gettime};
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    let secs = u64::try_from(t.tv_sec()).ok()?;
    let nanos = u32::try_from(t.tv_nsec()).ok()?;
    Some(Duration::new(secs, nanos))
}

/// Epoch ticks covering `d`, at least one.
fn ticks(d: Duration, tick: Duration) -> u64 {
    let n = d.as_nanos().div_ceil(tick.as_nanos().max(1)).max(1);
    u64::try_from(n).unwrap_or(u64::MAX)
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
    /// A store for one plugin instance, with its limits applied. Arm it ([`Sandbox::arm`])
    /// before each call.
    pub(crate) fn store(
        home: &Home,
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
            budget: CallBudget::new(&manifest.limits),
        };
        let mut store = Store::new(&home.engine, data);
        store.limiter(|s| &mut s.limiter);
        let tick = home.tick;
        store.epoch_deadline_callback(move |ctx| match ctx.data().budget.check() {
            Next::Continue(wait) => Ok(UpdateDeadline::Continue(ticks(wait, tick))),
            Next::OverDeadline => Ok(UpdateDeadline::Interrupt),
            Next::OverBackstop => Err(Stalled {
                wall_ms: u64::try_from(ctx.data().budget.wall_limit.as_millis())
                    .unwrap_or(u64::MAX),
            }
            .into()),
        });
        store
    }

    /// Arms fuel and deadline for one call, starts its clocks and resets per-call budgets.
    /// Must run on the thread that makes the call (inside [`off_executor`]): the deadline
    /// counts that thread's CPU time.
    pub(crate) fn arm(store: &mut Store<Sandbox>, limits: &Limits, tick: Duration) {
        // Fuel is always enabled on the engine, so this cannot fail.
        let _ = store.set_fuel(limits.fuel);
        let data = store.data_mut();
        data.budget.set(limits);
        data.budget.start();
        data.log_budget = LOG_LINES_PER_CALL;
        data.logs_dropped = 0;
        // CPU time cannot be used faster than the wall clock runs, so there is nothing to look
        // at before the deadline has passed on the wall.
        let first = ticks(data.budget.cpu_limit, tick);
        store.set_epoch_deadline(first);
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
    if let Some(s) = error.downcast_ref::<Stalled>() {
        return CallErrorKind::Stalled {
            deadline_ms: limits.deadline_ms,
            wall_ms: s.wall_ms,
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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// The accounting with the clocks injected: a 50 ms deadline, so a 1 s backstop.
    fn at(cpu_ms: u32, wall_ms: u32) -> Next {
        next(50 * MS, 1000 * MS, cpu_ms * MS, wall_ms * MS)
    }

    #[test]
    fn a_call_within_its_cpu_time_runs_on_and_is_looked_at_when_it_could_run_out() {
        assert_eq!(at(10, 10), Next::Continue(40 * MS));
        assert_eq!(at(0, 50), Next::Continue(50 * MS));
    }

    #[test]
    fn time_descheduled_is_not_charged() {
        // The thread was frozen for 600 ms of the call's 605: 5 ms of CPU time used.
        assert_eq!(at(5, 605), Next::Continue(45 * MS));
        // Near the backstop, the next look is at the backstop.
        assert_eq!(at(5, 990), Next::Continue(10 * MS));
    }

    #[test]
    fn cpu_time_over_the_deadline_ends_the_call() {
        assert_eq!(at(50, 50), Next::OverDeadline);
        assert_eq!(at(51, 400), Next::OverDeadline);
        // Over both: the deadline is what the plugin is told it missed.
        assert_eq!(at(60, 1200), Next::OverDeadline);
    }

    #[test]
    fn the_wall_clock_backstop_ends_a_call_that_makes_no_progress() {
        assert_eq!(at(20, 1000), Next::OverBackstop);
        assert_eq!(at(0, 5000), Next::OverBackstop);
    }

    #[test]
    fn a_wait_is_rounded_up_to_whole_ticks() {
        let tick = 2 * MS;
        assert_eq!(ticks(Duration::ZERO, tick), 1);
        assert_eq!(ticks(MS, tick), 1);
        assert_eq!(ticks(3 * MS, tick), 2);
        assert_eq!(ticks(50 * MS, tick), 25);
    }

    #[test]
    fn an_unarmed_budget_is_over() {
        let budget = CallBudget::new(&Limits::defaults(super::super::PluginKind::Rules));
        assert_eq!(budget.check(), Next::OverDeadline);
    }

    #[test]
    fn the_thread_cpu_clock_is_readable_and_moves_with_work() {
        let start = thread_cpu_time().expect("CLOCK_THREAD_CPUTIME_ID");
        let mut n = 0u64;
        while thread_cpu_time().expect("readable") == start {
            n = std::hint::black_box(n.wrapping_add(1));
        }
        assert!(thread_cpu_time().expect("readable") > start);
    }
}
