//! Probation of a plugin version swapped in while the daemon runs: its first calls are watched,
//! and too many faults among them call for the version it displaced.
//!
//! Owns the bookkeeping only (which builds are on probation, their faults, the policy); it
//! swaps nothing back itself: the supervisor does, when told to.

use std::collections::HashMap;

use super::watch::Target;
use crate::config::Rollback;
use crate::plugin::FaultNotice;

/// A build that has faulted too often on probation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Where it came from.
    pub target: Target,
    /// `name@version`.
    pub plugin: String,
    /// sha256 of its component, hex.
    pub digest: String,
    /// Faults on probation.
    pub faults: u64,
    /// The call that made it one too many.
    pub call: u64,
    /// The last fault.
    pub error: String,
}

#[derive(Debug)]
struct Entry {
    target: Target,
    plugin: String,
    faults: u64,
}

/// Builds on probation, by component digest.
#[derive(Debug)]
pub(crate) struct Probation {
    policy: Rollback,
    entries: HashMap<String, Entry>,
}

impl Probation {
    pub(crate) fn new(policy: Rollback) -> Self {
        Probation {
            policy,
            entries: HashMap::new(),
        }
    }

    /// The policy in force (a site manifest edit may change it).
    pub(crate) fn set_policy(&mut self, policy: Rollback) {
        self.policy = policy;
    }

    /// Puts a freshly activated build on probation.
    pub(crate) fn watch(&mut self, target: Target, plugin: String, digest: String) {
        if self.policy.after == 0 {
            return;
        }
        self.entries.insert(
            digest,
            Entry {
                target,
                plugin,
                faults: 0,
            },
        );
    }

    /// Ends the probation of whatever came from `target` (it was replaced).
    pub(crate) fn forget(&mut self, target: &Target) {
        self.entries.retain(|_, e| e.target != *target);
    }

    /// Ends the probation of one build.
    pub(crate) fn forget_build(&mut self, digest: &str) {
        self.entries.remove(digest);
    }

    /// Counts a fault; returns a verdict when the build must be rolled back (its probation then
    /// ends).
    pub(crate) fn fault(&mut self, notice: &FaultNotice) -> Option<Verdict> {
        let entry = self.entries.get_mut(&notice.digest)?;
        if notice.call > self.policy.probation_calls {
            // Past its probation: a fault now is an ordinary fault.
            self.entries.remove(&notice.digest);
            return None;
        }
        entry.faults += 1;
        if self.policy.after == 0 || entry.faults < u64::from(self.policy.after) {
            return None;
        }
        let entry = self.entries.remove(&notice.digest)?;
        Some(Verdict {
            target: entry.target,
            plugin: entry.plugin,
            digest: notice.digest.clone(),
            faults: entry.faults,
            call: notice.call,
            error: notice.error.kind.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{CallError, CallErrorKind};

    fn notice(digest: &str, call: u64) -> FaultNotice {
        FaultNotice {
            plugin: "x@2.0.0".into(),
            name: "x".into(),
            digest: digest.into(),
            call,
            faults: 0,
            error: CallError {
                plugin: "x@2.0.0".into(),
                kind: CallErrorKind::Trap("unreachable".into()),
            },
        }
    }

    #[test]
    fn the_nth_fault_within_the_first_calls_rolls_back_once() {
        let mut p = Probation::new(Rollback {
            after: 3,
            probation_calls: 10,
        });
        let target = Target::Driver("x".into());
        p.watch(target.clone(), "x@2.0.0".into(), "d2".into());
        assert_eq!(p.fault(&notice("other", 1)), None, "not on probation");
        assert_eq!(p.fault(&notice("d2", 1)), None);
        assert_eq!(p.fault(&notice("d2", 4)), None);
        let v = p
            .fault(&notice("d2", 9))
            .expect("the third fault rolls back");
        assert_eq!(
            (v.target, v.faults, v.call, v.error.as_str()),
            (target, 3, 9, "trapped: unreachable")
        );
        assert_eq!(p.fault(&notice("d2", 10)), None, "once");
    }

    #[test]
    fn faults_after_probation_or_with_rollback_off_are_ordinary() {
        let mut p = Probation::new(Rollback {
            after: 2,
            probation_calls: 5,
        });
        p.watch(Target::Driver("x".into()), "x@2.0.0".into(), "d2".into());
        assert_eq!(p.fault(&notice("d2", 2)), None);
        assert_eq!(p.fault(&notice("d2", 6)), None, "probation over");
        assert_eq!(p.fault(&notice("d2", 7)), None);

        let mut off = Probation::new(Rollback {
            after: 0,
            probation_calls: 5,
        });
        off.watch(Target::Driver("x".into()), "x@2.0.0".into(), "d2".into());
        for call in 1..5 {
            assert_eq!(off.fault(&notice("d2", call)), None);
        }
    }

    #[test]
    fn a_replaced_build_is_off_probation() {
        let mut p = Probation::new(Rollback {
            after: 1,
            probation_calls: 5,
        });
        let target = Target::Rules("r".into());
        p.watch(target.clone(), "r@2.0.0".into(), "d2".into());
        p.forget(&target);
        assert_eq!(p.fault(&notice("d2", 1)), None);
    }
}
