//! The load path: manifest → digest → signature → API version → compile (cached) → component
//! check → self-description. A plugin that fails a step is refused with the step and the reason.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kakou_plugin_sdk::model::{DriverDescription, RulesDescription};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};

use super::bindings::{driver_world, rules_world};
use super::cache::{ArtifactCache, CacheOutcome};
use super::driver::DriverPlugin;
use super::error::{LoadError, LoadStep};
use super::health::{Counters, FaultNotice, ObserverSlot};
use super::manifest::{PluginKind, PluginManifest};
use super::pool::{self, Home, RulesAllocation, RulesPool, Slots};
use super::rules::RulesPlugin;
use super::sandbox::Sandbox;
use super::signing::{KeyId, PluginSignature, PublicKey, SIGNATURE_FILE, SignedDigests};
use super::{api, driver, rules};

/// How often the epoch advances: how often a running call's time limits may be looked at (see
/// [`super::sandbox::CallBudget`]).
const TICK: Duration = Duration::from_millis(2);

/// Policy for [`Runtime::load`]. The default is the strictest: sealed plugins signed by a
/// trusted key only (and with no trusted keys, nothing loads).
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Accept a manifest without `wasm.sha256` (a development build).
    pub allow_unsealed: bool,
    /// Accept a plugin without `plugin.sig`, or signed by a key that is not trusted (a
    /// development plugin; there is nothing to check it against). A signature by a trusted key
    /// is still checked, and a bad one still refused.
    pub allow_unsigned: bool,
    /// The publisher keys whose signatures are accepted.
    pub trusted_keys: Vec<PublicKey>,
}

impl LoadOptions {
    /// Development: unsealed and unsigned plugins are accepted (what `allow-dev-plugins = true`
    /// means for a site, and what the CLI does unless told to check seals or signatures).
    pub fn development() -> Self {
        LoadOptions {
            allow_unsealed: true,
            allow_unsigned: true,
            trusted_keys: Vec::new(),
        }
    }

    /// Production: sealed plugins signed by one of `keys` only.
    pub fn trusting(keys: Vec<PublicKey>) -> Self {
        LoadOptions {
            allow_unsealed: false,
            allow_unsigned: false,
            trusted_keys: keys,
        }
    }
}

/// What the signature step found, for a plugin it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureStatus {
    /// Signed by a trusted key, and the signature holds.
    Trusted {
        /// The key.
        key_id: KeyId,
        /// Its comment (the publisher).
        comment: String,
    },
    /// Signed by a key that is not trusted here; accepted only because unsigned plugins are
    /// allowed.
    UntrustedKey {
        /// The key that signed.
        key_id: KeyId,
    },
    /// No `plugin.sig`; accepted only because unsigned plugins are allowed.
    Unsigned,
}

impl std::fmt::Display for SignatureStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureStatus::Trusted { key_id, comment } if comment.is_empty() => {
                write!(f, "signed by trusted key {key_id}")
            }
            SignatureStatus::Trusted { key_id, comment } => {
                write!(f, "signed by trusted key {key_id} ({comment})")
            }
            SignatureStatus::UntrustedKey { key_id } => write!(
                f,
                "signed by key {key_id}, which is not trusted here (accepted as a development plugin)"
            ),
            SignatureStatus::Unsigned => f.write_str("unsigned development build"),
        }
    }
}

/// What the process shares with every loaded plugin: the engines, the linkers and the epoch.
pub(crate) struct Shared {
    /// Drivers, and rules plugins that do not fit (or have no) pool.
    pub(crate) on_demand: EngineSet,
    /// Rules plugins that fit a pool slot, when the pool could be created.
    pub(crate) pooled: Option<EngineSet>,
    /// How rules instances are allocated, for [`Runtime::rules_allocation`].
    pub(crate) allocation: RulesAllocation,
    pub(crate) tick: Duration,
    /// Told of every plugin fault (see [`Runtime::observe_faults`]).
    pub(crate) observer: ObserverSlot,
    stop: Arc<AtomicBool>,
}

/// One engine with its linkers and, when it pools, its slot gate.
pub(crate) struct EngineSet {
    pub(crate) engine: Engine,
    pub(crate) driver_linker: Linker<Sandbox>,
    pub(crate) rules_linker: Linker<Sandbox>,
    slots: Option<Arc<Slots>>,
}

impl EngineSet {
    fn new(engine: Engine, slots: Option<Arc<Slots>>) -> Result<Self, RuntimeError> {
        let link = |e: wasmtime::Error| RuntimeError(format!("linking host imports: {e:#}"));
        let mut driver_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut driver_linker).map_err(link)?;
        driver_world::Driver::add_to_linker::<_, HasSelf<Sandbox>>(&mut driver_linker, |s| s)
            .map_err(link)?;
        let mut rules_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut rules_linker).map_err(link)?;
        rules_world::Rules::add_to_linker::<_, HasSelf<Sandbox>>(&mut rules_linker, |s| s)
            .map_err(link)?;
        Ok(EngineSet {
            engine,
            driver_linker,
            rules_linker,
            slots,
        })
    }

    fn home(&self, tick: Duration) -> Home {
        Home {
            engine: self.engine.clone(),
            slots: self.slots.clone(),
            tick,
        }
    }
}

impl Shared {
    /// The engine a plugin with this manifest is compiled for and instantiated from: the pool
    /// for a rules plugin whose memory limit fits a slot, on demand otherwise.
    fn engine_for(&self, manifest: &PluginManifest) -> &EngineSet {
        match (&manifest.kind, &self.pooled, &self.allocation) {
            (PluginKind::Rules, Some(pooled), RulesAllocation::Pooled(pool)) => {
                if manifest.limits.memory_bytes <= pool.memory_bytes() {
                    return pooled;
                }
                tracing::info!(
                    plugin = %manifest.id(),
                    "its memory limit ({} MiB) is over the rules pool's slot size ({} MiB): its \
                     instances are allocated on demand",
                    manifest.limits.memory_bytes >> 20,
                    pool.memory_mb
                );
                &self.on_demand
            }
            _ => &self.on_demand,
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The plugin runtime: the engines (drivers and oversized rules on demand, rules from a pool; see
/// `pool`), the epoch ticker their time limits count on, an artifact cache, and the load path.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
    cache: Option<ArtifactCache>,
}

/// Why the runtime itself could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the plugin runtime: {0}")]
pub struct RuntimeError(String);

impl Runtime {
    /// A runtime caching compiled plugins in `cache_dir` (none: compile every time), with rules
    /// instances from a pool of the default size ([`RulesPool::default`]).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, RuntimeError> {
        Self::with_rules_pool(cache_dir, Some(RulesPool::default()))
    }

    /// A runtime whose rules instances come from a pool sized by `pool`, or on demand (`None`).
    /// A pool that cannot be created (the daemon's address space is limited, say) is not an
    /// error: rules instances are then allocated on demand, the reason is logged and
    /// [`Runtime::rules_allocation`] says it.
    pub fn with_rules_pool(
        cache_dir: Option<PathBuf>,
        pool: Option<RulesPool>,
    ) -> Result<Self, RuntimeError> {
        let engine =
            Engine::new(&pool::base_config()).map_err(|e| RuntimeError(format!("{e:#}")))?;
        let on_demand = EngineSet::new(engine, None)?;
        let (pooled, allocation) = match pool {
            None => (
                None,
                RulesAllocation::OnDemand {
                    reason: "no rules pool was asked for".into(),
                },
            ),
            Some(sizing) => match pool::pooled_engine(&sizing) {
                Ok(engine) => (
                    Some(EngineSet::new(
                        engine,
                        Some(Arc::new(Slots::new(sizing.instances))),
                    )?),
                    RulesAllocation::Pooled(sizing),
                ),
                Err(e) => {
                    let reason = format!(
                        "the rules instance pool ({} slots of {} MiB) cannot be created: {e}",
                        sizing.instances, sizing.memory_mb
                    );
                    tracing::warn!("{reason}; rules instances are allocated on demand");
                    (None, RulesAllocation::OnDemand { reason })
                }
            },
        };

        let stop = Arc::new(AtomicBool::new(false));
        let mut ticked = vec![on_demand.engine.clone()];
        ticked.extend(pooled.as_ref().map(|p| p.engine.clone()));
        let ticker_stop = stop.clone();
        std::thread::Builder::new()
            .name("kakou-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    for engine in &ticked {
                        engine.increment_epoch();
                    }
                }
            })
            .map_err(|e| RuntimeError(format!("cannot start the epoch thread: {e}")))?;

        Ok(Runtime {
            shared: Arc::new(Shared {
                on_demand,
                pooled,
                allocation,
                tick: TICK,
                observer: ObserverSlot::default(),
                stop,
            }),
            cache: cache_dir.map(ArtifactCache::new),
        })
    }

    /// How this runtime allocates rules instances: from a pool, or on demand and why.
    pub fn rules_allocation(&self) -> &RulesAllocation {
        &self.shared.allocation
    }

    /// The default artifact cache folder: `$KAKOU_CACHE_DIR`, else `$XDG_CACHE_HOME/kakou`,
    /// else `~/.cache/kakou`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("KAKOU_CACHE_DIR") {
            return Some(PathBuf::from(d));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("kakou").join("artifacts"))
    }

    /// Has `observer` told of every fault (trap, timeout, fuel, memory, oversized result,
    /// undeclared capability, failed rebuild) of every plugin this runtime loaded or loads, as
    /// it happens, on the faulting caller's thread. One observer per runtime: setting another
    /// replaces it. The hot-swap supervisor uses it to roll back a new version that keeps
    /// faulting.
    pub fn observe_faults(&self, observer: impl Fn(&FaultNotice) + Send + Sync + 'static) {
        self.shared.observer.set(Some(Arc::new(observer)));
    }

    /// Runs the load path on a plugin folder.
    pub fn load(&self, dir: &Path, options: &LoadOptions) -> Result<LoadedPlugin, LoadError> {
        let (manifest, manifest_text) = PluginManifest::load_text(dir)?;
        let refuse = |step: LoadStep, reason: String| LoadError::Refused {
            plugin: manifest.id(),
            dir: manifest.dir().to_path_buf(),
            step,
            reason,
        };

        // Digest.
        let wasm_path = manifest.wasm_path();
        let wasm = std::fs::read(&wasm_path).map_err(|e| {
            refuse(
                LoadStep::Digest,
                format!(
                    "cannot read {}: {e} (build it with `kakou plugin build {}`)",
                    wasm_path.display(),
                    manifest.dir().display()
                ),
            )
        })?;
        let digest: [u8; 32] = Sha256::digest(&wasm).into();
        match manifest.sha256 {
            Some(expected) if expected != digest => {
                return Err(refuse(
                    LoadStep::Digest,
                    format!(
                        "{} has sha256 {}, but the manifest says {}: the file was changed or replaced",
                        manifest.wasm_file.display(),
                        hex::encode(digest),
                        hex::encode(expected)
                    ),
                ));
            }
            None if !options.allow_unsealed => {
                return Err(refuse(
                    LoadStep::Digest,
                    "the manifest has no `wasm.sha256` (an unsealed development build); package it with `kakou plugin build` or allow development plugins".into(),
                ));
            }
            _ => {}
        }

        // Signature.
        let signature = check_signature(&manifest, manifest_text.as_bytes(), &wasm, options)
            .map_err(|reason| refuse(LoadStep::Signature, reason))?;

        // API version.
        let api_version = api::select(&manifest.api)
            .map_err(|e| refuse(LoadStep::Api, e))?
            .clone();

        // Compile.
        let set = self.shared.engine_for(&manifest);
        let engine = &set.engine;
        let home = set.home(self.shared.tick);
        let (component, cache) = match &self.cache {
            Some(cache) => cache.load_or_compile(engine, &digest, &wasm),
            None => Component::new(engine, &wasm)
                .map(|c| (c, CacheOutcome::Compiled))
                .map_err(|e| format!("{e:#}")),
        }
        .map_err(|e| {
            refuse(
                LoadStep::Compile,
                format!("{} is not a valid component: {e}", wasm_path.display()),
            )
        })?;
        if cache == CacheOutcome::Compiled {
            super::memory::release_freed();
        }

        // Component check.
        let shape = Shape::of(engine, &component);
        let wanted = match manifest.kind {
            PluginKind::Driver => format!("{}/decoding@{api_version}", api::PACKAGE),
            PluginKind::Rules => format!("{}/evaluation@{api_version}", api::PACKAGE),
        };
        if !shape.exports.iter().any(|e| e == &wanted) {
            return Err(refuse(
                LoadStep::Component,
                format!(
                    "the manifest says kind = \"{}\", so the component must export {wanted}; it exports: {}",
                    manifest.kind,
                    list_or_none(&shape.exports)
                ),
            ));
        }
        let foreign: Vec<&String> = shape
            .imports
            .iter()
            .filter(|i| !i.starts_with("wasi:") && !i.starts_with(&format!("{}/", api::PACKAGE)))
            .collect();
        if !foreign.is_empty() {
            let names: Vec<String> = foreign.iter().map(|s| s.to_string()).collect();
            return Err(refuse(
                LoadStep::Component,
                format!(
                    "the component imports interfaces this host does not provide: {}",
                    names.join(", ")
                ),
            ));
        }
        let link_err = |e: wasmtime::Error| {
            refuse(
                LoadStep::Component,
                format!("cannot link the component's imports: {e:#}"),
            )
        };
        let (pre, description) = match manifest.kind {
            PluginKind::Driver => {
                let pre = set
                    .driver_linker
                    .instantiate_pre(&component)
                    .map_err(link_err)?;
                let pre = driver_world::DriverPre::new(pre).map_err(link_err)?;
                let d = driver::describe(&home, &manifest, &pre)
                    .map_err(|e| refuse(LoadStep::Describe, e.to_string()))?;
                (Pre::Driver(pre), Description::Driver(d))
            }
            PluginKind::Rules => {
                let pre = set
                    .rules_linker
                    .instantiate_pre(&component)
                    .map_err(link_err)?;
                let pre = rules_world::RulesPre::new(pre).map_err(link_err)?;
                let d = rules::describe(&home, &manifest, &pre)
                    .map_err(|e| refuse(LoadStep::Describe, e.to_string()))?;
                (Pre::Rules(pre), Description::Rules(d))
            }
        };

        // Self-description.
        let (name, version) = description.name_version();
        if name != manifest.name || version != manifest.version.to_string() {
            return Err(refuse(
                LoadStep::Describe,
                format!(
                    "the component describes itself as {name}@{version}, but the manifest says {}",
                    manifest.id()
                ),
            ));
        }
        if let Description::Driver(d) = &description {
            for s in &manifest.settings {
                if !d.settings.iter().any(|spec| spec.key == s.key) {
                    return Err(refuse(
                        LoadStep::Describe,
                        format!(
                            "manifest setting `{}` is not one the driver understands (it takes: {})",
                            s.key,
                            list_or_none(
                                &d.settings.iter().map(|s| s.key.clone()).collect::<Vec<_>>()
                            )
                        ),
                    ));
                }
            }
        }

        Ok(LoadedPlugin {
            inner: Arc::new(Inner {
                shared: self.shared.clone(),
                home,
                manifest,
                digest,
                signature,
                api_version,
                cache,
                pre,
                description,
                imports: shape.imports,
                counters: Counters::default(),
            }),
        })
    }

    /// Loads a driver plugin; refuses a rules plugin.
    pub fn load_driver(
        &self,
        dir: &Path,
        options: &LoadOptions,
    ) -> Result<DriverPlugin, LoadError> {
        let loaded = self.load(dir, options)?;
        loaded
            .clone()
            .into_driver()
            .ok_or_else(|| wrong_kind(&loaded, PluginKind::Driver))
    }

    /// Loads a rules plugin; refuses a driver.
    pub fn load_rules(&self, dir: &Path, options: &LoadOptions) -> Result<RulesPlugin, LoadError> {
        let loaded = self.load(dir, options)?;
        loaded
            .clone()
            .into_rules()
            .ok_or_else(|| wrong_kind(&loaded, PluginKind::Rules))
    }
}

/// The signature step: what `plugin.sig` says, against the files and the trusted keys.
fn check_signature(
    manifest: &PluginManifest,
    manifest_bytes: &[u8],
    wasm: &[u8],
    options: &LoadOptions,
) -> Result<SignatureStatus, String> {
    let signature = PluginSignature::read(manifest.dir()).map_err(|e| e.to_string())?;
    let Some(signature) = signature else {
        return if options.allow_unsigned {
            Ok(SignatureStatus::Unsigned)
        } else {
            Err(format!(
                "the plugin is unsigned (no {SIGNATURE_FILE}), and only plugins signed by a trusted key are accepted; \
                 sign it with `kakou plugin sign {} --key KEY`, or allow development plugins",
                manifest.dir().display()
            ))
        };
    };
    let actual = SignedDigests::of(manifest_bytes, wasm);
    match signature.verify(&actual, &options.trusted_keys) {
        Ok(key) => Ok(SignatureStatus::Trusted {
            key_id: key.id(),
            comment: key.comment().to_owned(),
        }),
        Err(super::signing::SignatureError::UntrustedKey { key_id, .. })
            if options.allow_unsigned =>
        {
            Ok(SignatureStatus::UntrustedKey { key_id })
        }
        Err(e) => Err(e.to_string()),
    }
}

fn wrong_kind(p: &LoadedPlugin, wanted: PluginKind) -> LoadError {
    LoadError::Refused {
        plugin: p.manifest().id(),
        dir: p.manifest().dir().to_path_buf(),
        step: LoadStep::Manifest,
        reason: format!(
            "a {wanted} plugin is needed here, but this is a {} plugin",
            p.manifest().kind
        ),
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}

/// A component's import and export names.
struct Shape {
    imports: Vec<String>,
    exports: Vec<String>,
}

impl Shape {
    fn of(engine: &Engine, component: &Component) -> Shape {
        let ty = component.component_type();
        Shape {
            imports: ty.imports(engine).map(|(n, _)| n.to_owned()).collect(),
            exports: ty.exports(engine).map(|(n, _)| n.to_owned()).collect(),
        }
    }
}

/// Pre-linked instance factory of either world.
pub(crate) enum Pre {
    Driver(driver_world::DriverPre<Sandbox>),
    Rules(rules_world::RulesPre<Sandbox>),
}

/// What a plugin said about itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Description {
    /// A driver's description.
    Driver(DriverDescription),
    /// A rule set's description.
    Rules(RulesDescription),
}

impl Description {
    fn name_version(&self) -> (&str, &str) {
        match self {
            Description::Driver(d) => (&d.name, &d.version),
            Description::Rules(r) => (&r.name, &r.version),
        }
    }
}

pub(crate) struct Inner {
    pub(crate) shared: Arc<Shared>,
    /// The engine its instances are made by, and the pool's gate when that engine pools.
    pub(crate) home: Home,
    pub(crate) manifest: PluginManifest,
    pub(crate) digest: [u8; 32],
    pub(crate) signature: SignatureStatus,
    pub(crate) api_version: semver::Version,
    pub(crate) cache: CacheOutcome,
    pub(crate) pre: Pre,
    pub(crate) description: Description,
    pub(crate) imports: Vec<String>,
    pub(crate) counters: Counters,
}

impl Inner {
    /// Counts a call starting; returns its number.
    pub(crate) fn begin_call(&self) -> u64 {
        self.counters.begin()
    }

    /// Counts a failed call (when it is the plugin's fault) and tells the runtime's observer.
    pub(crate) fn call_failed(&self, call: u64, error: &super::error::CallError) {
        self.counters.failed(
            &self.shared.observer,
            call,
            &self.digest,
            &self.manifest.name,
            error,
        );
    }
}

/// A plugin that passed the load path: compiled, linked and described.
#[derive(Clone)]
pub struct LoadedPlugin {
    pub(crate) inner: Arc<Inner>,
}

impl LoadedPlugin {
    /// Its manifest.
    pub fn manifest(&self) -> &PluginManifest {
        &self.inner.manifest
    }
    /// sha256 of its component, hex.
    pub fn digest_hex(&self) -> String {
        hex::encode(self.inner.digest)
    }
    /// What its signature step found.
    pub fn signature(&self) -> &SignatureStatus {
        &self.inner.signature
    }
    /// The contract version it is linked against.
    pub fn api_version(&self) -> &semver::Version {
        &self.inner.api_version
    }
    /// Whether its compilation came from the artifact cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.cache
    }
    /// What it said about itself.
    pub fn description(&self) -> &Description {
        &self.inner.description
    }
    /// The component's imports.
    pub fn imports(&self) -> &[String] {
        &self.inner.imports
    }
    /// Calls made into it since it was loaded (all instances).
    pub fn calls(&self) -> u64 {
        self.inner.counters.calls()
    }
    /// Calls that faulted since it was loaded (all instances).
    pub fn faults(&self) -> u64 {
        self.inner.counters.faults()
    }
    /// Whether `other` is the same plugin: the same component and the same manifest.
    pub fn same_as(&self, other: &LoadedPlugin) -> bool {
        self.inner.digest == other.inner.digest && self.inner.manifest == other.inner.manifest
    }
    /// As a driver, when it is one.
    pub fn into_driver(self) -> Option<DriverPlugin> {
        matches!(self.inner.pre, Pre::Driver(_)).then(|| DriverPlugin { inner: self.inner })
    }
    /// As a rule set, when it is one.
    pub fn into_rules(self) -> Option<RulesPlugin> {
        matches!(self.inner.pre, Pre::Rules(_)).then(|| RulesPlugin { inner: self.inner })
    }
}
