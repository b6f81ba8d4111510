//! Rules plugins: a fresh, fuel-bounded instance for every evaluation, taken from the pool.
//!
//! # Why a fresh instance, and not one kept across passages
//!
//! An instance kept from one passage to the next would carry the previous truck's data in its
//! memory, and whatever state the plugin keeps (a cache, a counter, a static): a verdict would
//! depend on which trucks came before, not on the passage and the look-ups alone, and a fault
//! half-way through one passage could leave a broken state for the next. Its WASI clocks,
//! frozen at one passage's time, and its seeded random generator would have to be rewound for
//! every passage too. So every evaluation instantiates afresh, from the pre-linked
//! `InstancePre` and a slot of the runtime's pool (see `super::pool`), and drops the instance
//! after the call, whatever its outcome.
//!
//! What that costs was measured (benches/plugins.rs, release build, on a 2-core machine busy
//! with other builds, so read ±10%): a fresh instance and an empty call take 22–28 µs from the
//! pool and 28–34 µs on demand, against about 2 µs for a call on a kept instance; cn-baseline
//! and weight-check judging one passage take 135–150 µs on fresh pooled instances and
//! 80–105 µs on kept ones. Keeping instances would save some 50 µs per truck, at lanes that see
//! a truck every few tens of seconds: not worth verdicts that depend on history.
//!
//! A passage is converted to its WIT form once ([`PreparedPassage`]) however many plugins of a
//! rule set judge it; each call then only copies it into its instance's memory.

use std::sync::Arc;

use kakou_plugin_sdk::Lookups;
use kakou_plugin_sdk::mirror::Mirror;
use kakou_plugin_sdk::model::{Passage, RulesDescription, Verdict};

use super::bindings::rules_world::RulesPre;
use super::bindings::wit_passage;
use super::error::{CallError, CallErrorKind};
use super::loader::{Inner, Pre};
use super::manifest::PluginManifest;
use super::pool::Home;
use super::sandbox::{Clocks, Sandbox, classify, off_executor};

/// A passage in the form rules plugins receive it, converted once for every plugin that
/// judges it (see [`RulesPlugin::evaluate_prepared`]).
#[derive(Debug, Clone)]
pub struct PreparedPassage {
    now_ms: i64,
    wit: wit_passage::Passage,
}

impl PreparedPassage {
    /// Converts a borrowed passage (one copy of it, for all the plugins).
    pub fn new(passage: &Passage) -> Self {
        passage.clone().into()
    }

    /// The passage's "now", at which the plugins' clocks are frozen.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }
}

impl From<Passage> for PreparedPassage {
    /// Converts an owned passage without copying it.
    fn from(passage: Passage) -> Self {
        PreparedPassage {
            now_ms: passage.now_ms,
            wit: passage.mirror(),
        }
    }
}

/// A loaded rule set.
#[derive(Clone)]
pub struct RulesPlugin {
    pub(crate) inner: Arc<Inner>,
}

/// Asks a freshly linked rule set to describe itself (load path).
pub(crate) fn describe(
    home: &Home,
    manifest: &PluginManifest,
    pre: &RulesPre<Sandbox>,
) -> Result<RulesDescription, CallError> {
    let limits = manifest.limits;
    let (result, stderr) = off_executor(|| {
        let _slot = home.slot();
        let mut store = Sandbox::store(home, manifest, Clocks::FrozenAt(0), None);
        Sandbox::arm(&mut store, &limits, home.tick);
        let result = pre
            .instantiate(&mut store)
            .and_then(|b| b.kakou_plugin_evaluation().call_describe(&mut store));
        let stderr = store.data_mut().take_stderr();
        (result, stderr)
    });
    result.map(Mirror::mirror).map_err(|e| CallError {
        plugin: manifest.id(),
        kind: classify(&e, &limits, stderr),
    })
}

impl RulesPlugin {
    /// Its manifest.
    pub fn manifest(&self) -> &PluginManifest {
        &self.inner.manifest
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        self.inner.manifest.id()
    }

    /// sha256 of its component, hex.
    pub fn digest_hex(&self) -> String {
        hex::encode(self.inner.digest)
    }

    /// Evaluations run since it was loaded.
    pub fn calls(&self) -> u64 {
        self.inner.counters.calls()
    }

    /// Evaluations that faulted since it was loaded.
    pub fn faults(&self) -> u64 {
        self.inner.counters.faults()
    }

    /// Whether `other` is the same plugin: the same component and the same manifest.
    pub fn same_as(&self, other: &RulesPlugin) -> bool {
        self.inner.digest == other.inner.digest && self.inner.manifest == other.inner.manifest
    }

    /// Whether its instances come from the runtime's pool (see
    /// [`Runtime::rules_allocation`](super::Runtime::rules_allocation)); a plugin whose memory
    /// limit is over the pool's slot size, or a runtime without a pool, allocates on demand.
    pub fn pooled(&self) -> bool {
        self.inner.home.pooled()
    }

    /// Evaluates a passage on a fresh instance. `lookups` serves the host imports the manifest
    /// declares; `None` answers every look-up with "nothing found". The call is counted, and a
    /// fault reported, on the plugin (see [`super::health`]). To have several plugins judge
    /// one passage, convert it once with [`PreparedPassage`] and use
    /// [`RulesPlugin::evaluate_prepared`].
    pub fn evaluate(
        &self,
        passage: &Passage,
        lookups: Option<Arc<dyn Lookups + Send + Sync>>,
    ) -> Result<Verdict, CallError> {
        self.evaluate_prepared(&PreparedPassage::new(passage), lookups)
    }

    /// Evaluates an already converted passage on a fresh instance; otherwise as
    /// [`RulesPlugin::evaluate`].
    ///
    /// The instance is made for this call and dropped after it, whatever the outcome: a trap,
    /// a timeout, fuel or memory exhausted, an oversized verdict or an undeclared import costs
    /// this call only, with a typed [`CallError`], and leaves nothing behind for the next.
    pub fn evaluate_prepared(
        &self,
        passage: &PreparedPassage,
        lookups: Option<Arc<dyn Lookups + Send + Sync>>,
    ) -> Result<Verdict, CallError> {
        let number = self.inner.begin_call();
        let result = self.evaluate_inner(passage, lookups);
        if let Err(e) = &result {
            self.inner.call_failed(number, e);
        }
        result
    }

    fn evaluate_inner(
        &self,
        passage: &PreparedPassage,
        lookups: Option<Arc<dyn Lookups + Send + Sync>>,
    ) -> Result<Verdict, CallError> {
        let inner = &self.inner;
        let manifest = &inner.manifest;
        let limits = manifest.limits;
        let fail = |kind| CallError {
            plugin: manifest.id(),
            kind,
        };
        let Pre::Rules(pre) = &inner.pre else {
            unreachable!("RulesPlugin is only built from a rules plugin")
        };
        let home = &inner.home;
        let (result, stderr) = off_executor(|| {
            // Declared before the store, so dropped after it: the slot is free again only once
            // the instance in it is gone.
            let _slot = home.slot();
            let mut store =
                Sandbox::store(home, manifest, Clocks::FrozenAt(passage.now_ms), lookups);
            Sandbox::arm(&mut store, &limits, home.tick);
            let result = pre.instantiate(&mut store).and_then(|b| {
                b.kakou_plugin_evaluation()
                    .call_evaluate(&mut store, &passage.wit)
            });
            let data = store.data_mut();
            data.report_dropped_logs();
            (result, data.take_stderr())
        });
        match result {
            Err(e) => Err(fail(classify(&e, &limits, stderr))),
            Ok(Err(message)) => Err(fail(CallErrorKind::Refused(message))),
            Ok(Ok(verdict)) => {
                let verdict: Verdict = verdict.mirror();
                let bytes = verdict_size(&verdict);
                if bytes > limits.max_output_bytes {
                    return Err(fail(CallErrorKind::OversizedResult {
                        bytes,
                        limit: limits.max_output_bytes,
                    }));
                }
                Ok(verdict)
            }
        }
    }
}

fn verdict_size(v: &Verdict) -> usize {
    let checks: usize = v
        .checks
        .iter()
        .map(|c| 32 + c.code.len() + c.message.len() + c.subject.as_ref().map_or(0, String::len))
        .sum();
    let alarms: usize = v
        .alarms
        .iter()
        .map(|a| 32 + a.code.len() + a.message.len())
        .sum();
    16 + checks + alarms
}
