//! How a loaded plugin is doing: its calls and faults, counted across all of its instances (every
//! device a driver decodes for, every passage a rule set evaluates), and the runtime's fault
//! observer, told of each fault as it happens.
//!
//! This is what a hot-swap supervisor watches to roll back a new version that keeps faulting
//! (see `crate::swap`). It only counts and reports; it never discards or replaces a plugin.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::error::{CallError, CallErrorKind};

/// A fault of one call into a plugin, as the runtime's observer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultNotice {
    /// `name@version`.
    pub plugin: String,
    /// The plugin's name.
    pub name: String,
    /// sha256 of its component, hex: tells two builds of the same version apart.
    pub digest: String,
    /// Which of the plugin's calls since it was loaded this was (1 is the first).
    pub call: u64,
    /// Faults of this plugin since it was loaded, this one included.
    pub faults: u64,
    /// What went wrong.
    pub error: CallError,
}

/// Told of every fault of every plugin a [`Runtime`](super::Runtime) loaded. Runs on the
/// faulting caller's thread, so it must be quick (send to a channel, count).
pub type FaultObserver = Arc<dyn Fn(&FaultNotice) + Send + Sync>;

/// The observer slot a runtime shares with every plugin it loads.
#[derive(Default)]
pub(crate) struct ObserverSlot(RwLock<Option<FaultObserver>>);

impl ObserverSlot {
    pub(crate) fn set(&self, observer: Option<FaultObserver>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = observer;
    }

    fn get(&self) -> Option<FaultObserver> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Call and fault counts of one loaded plugin.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    calls: AtomicU64,
    faults: AtomicU64,
}

impl Counters {
    /// Counts a call starting; returns its number (1 for the first).
    pub(crate) fn begin(&self) -> u64 {
        self.calls.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub(crate) fn faults(&self) -> u64 {
        self.faults.load(Ordering::Relaxed)
    }

    /// Counts a failed call and tells the observer, when the failure is the plugin's fault
    /// (a plugin declining, [`CallErrorKind::Refused`], is an answer, not a fault).
    pub(crate) fn failed(
        &self,
        observers: &ObserverSlot,
        call: u64,
        digest: &[u8; 32],
        name: &str,
        error: &CallError,
    ) {
        if !is_fault(&error.kind) {
            return;
        }
        let faults = self.faults.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(observer) = observers.get() {
            observer(&FaultNotice {
                plugin: error.plugin.clone(),
                name: name.to_owned(),
                digest: hex::encode(digest),
                call,
                faults,
                error: error.clone(),
            });
        }
    }
}

/// Whether a failed call counts as the plugin's fault: traps, timeouts, fuel, memory, oversized
/// results, undeclared capabilities and instances that cannot be rebuilt do; an error the
/// plugin answered with (bad settings, cannot decide) does not.
pub fn is_fault(kind: &CallErrorKind) -> bool {
    !matches!(kind, CallErrorKind::Refused(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn counts_faults_and_tells_the_observer_but_not_of_answers() {
        let slot = ObserverSlot::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        slot.set(Some(Arc::new(move |n: &FaultNotice| {
            sink.lock()
                .unwrap()
                .push((n.call, n.faults, n.digest.clone()))
        })));
        let c = Counters::default();
        let err = |kind| CallError {
            plugin: "p@1.0.0".into(),
            kind,
        };
        let first = c.begin();
        c.failed(
            &slot,
            first,
            &[0xab; 32],
            "p",
            &err(CallErrorKind::Refused("bad setting".into())),
        );
        let second = c.begin();
        c.failed(
            &slot,
            second,
            &[0xab; 32],
            "p",
            &err(CallErrorKind::Trap("unreachable".into())),
        );
        assert_eq!((c.calls(), c.faults()), (2, 1));
        assert_eq!(*seen.lock().unwrap(), vec![(2, 1, "ab".repeat(32))]);
    }
}
