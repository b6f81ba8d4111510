//! Rules plugins: a fresh, fuel-bounded instance for every evaluation.

use std::sync::Arc;

use kakou_plugin_sdk::Lookups;
use kakou_plugin_sdk::mirror::Mirror;
use kakou_plugin_sdk::model::{Passage, RulesDescription, Verdict};

use super::bindings::rules_world::RulesPre;
use super::error::{CallError, CallErrorKind};
use super::loader::{Inner, Pre, Shared};
use super::manifest::PluginManifest;
use super::sandbox::{Clocks, Sandbox, classify, off_executor};

/// A loaded rule set.
#[derive(Clone)]
pub struct RulesPlugin {
    pub(crate) inner: Arc<Inner>,
}

/// Asks a freshly linked rule set to describe itself (load path).
pub(crate) fn describe(
    shared: &Shared,
    manifest: &PluginManifest,
    pre: &RulesPre<Sandbox>,
) -> Result<RulesDescription, CallError> {
    let fail = |kind| CallError {
        plugin: manifest.id(),
        kind,
    };
    let mut store = Sandbox::store(&shared.engine, manifest, Clocks::FrozenAt(0), None);
    Sandbox::arm(&mut store, &manifest.limits, shared.tick);
    let result = off_executor(|| {
        pre.instantiate(&mut store)
            .and_then(|b| b.kakou_plugin_evaluation().call_describe(&mut store))
    });
    result.map(Mirror::mirror).map_err(|e| {
        fail(classify(
            &e,
            &manifest.limits,
            store.data_mut().take_stderr(),
        ))
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

    /// Evaluates a passage on a fresh instance. `lookups` serves the host imports the manifest
    /// declares; `None` answers every look-up with "nothing found". The call is counted, and a
    /// fault reported, on the plugin (see [`super::health`]).
    pub fn evaluate(
        &self,
        passage: &Passage,
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
        passage: &Passage,
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
        let mut store = Sandbox::store(
            &inner.shared.engine,
            manifest,
            Clocks::FrozenAt(passage.now_ms),
            lookups,
        );
        Sandbox::arm(&mut store, &limits, inner.shared.tick);
        let wit_passage = passage.clone().mirror();
        let result = off_executor(|| {
            pre.instantiate(&mut store).and_then(|b| {
                b.kakou_plugin_evaluation()
                    .call_evaluate(&mut store, &wit_passage)
            })
        });
        let data = store.data_mut();
        data.report_dropped_logs();
        let stderr = data.take_stderr();
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
