//! Why a plugin was refused, and why a call into one failed.

use std::fmt;
use std::path::PathBuf;

use super::manifest::ManifestError;

/// The step of the load path at which a plugin was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStep {
    /// Reading and validating `plugin.toml`.
    Manifest,
    /// Reading the component and checking its sha256.
    Digest,
    /// Checking the detached signature (`plugin.sig`) against the trusted publisher keys.
    Signature,
    /// Matching the API requirement against the versions this host provides.
    Api,
    /// Compiling (or loading the cached compilation of) the component.
    Compile,
    /// Checking the component's imports and exports against its kind.
    Component,
    /// Asking the plugin to describe itself and comparing with the manifest.
    Describe,
}

impl fmt::Display for LoadStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LoadStep::Manifest => "manifest",
            LoadStep::Digest => "digest",
            LoadStep::Signature => "signature",
            LoadStep::Api => "api version",
            LoadStep::Compile => "compile",
            LoadStep::Component => "component check",
            LoadStep::Describe => "self-description",
        })
    }
}

/// A plugin refused by the load path.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The manifest is invalid.
    #[error("plugin refused at step `manifest`: {0}")]
    Manifest(#[from] ManifestError),
    /// A later step failed.
    #[error("plugin {plugin} ({}) refused at step `{step}`: {reason}", dir.display())]
    Refused {
        /// `name@version`.
        plugin: String,
        /// The plugin folder.
        dir: PathBuf,
        /// The step.
        step: LoadStep,
        /// What was wrong and what to do.
        reason: String,
    },
}

impl LoadError {
    /// The step that refused the plugin.
    pub fn step(&self) -> LoadStep {
        match self {
            LoadError::Manifest(_) => LoadStep::Manifest,
            LoadError::Refused { step, .. } => *step,
        }
    }
}

/// What went wrong in a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallErrorKind {
    /// The plugin trapped (a panic, an `unreachable`, an out-of-bounds access).
    Trap(String),
    /// The call used more CPU time than the plugin's deadline (`limits.deadline-ms`, counted
    /// on the thread running the call: time it spent descheduled is not charged).
    Timeout {
        /// The deadline.
        deadline_ms: u32,
    },
    /// The call was still running after the wall-clock backstop (20 times its deadline)
    /// without having used up its CPU time: its thread was starved, or the plugin kept waiting
    /// (sleeping through WASI), for that long.
    Stalled {
        /// The deadline.
        deadline_ms: u32,
        /// The backstop it ran into, wall-clock milliseconds.
        wall_ms: u64,
    },
    /// The call used up its fuel.
    OutOfFuel {
        /// The fuel it had.
        fuel: u64,
    },
    /// The plugin tried to grow its memory past its limit.
    MemoryLimit {
        /// The size asked for.
        desired: usize,
        /// The limit.
        limit: usize,
    },
    /// The result was larger than the manifest allows.
    OversizedResult {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The plugin called a host import its manifest does not declare.
    CapabilityDenied {
        /// The capability it needs.
        capability: &'static str,
        /// The function it called.
        function: &'static str,
    },
    /// The plugin answered with an error of its own (bad settings, cannot decide).
    Refused(String),
    /// The instance could not be (re)built.
    Instantiate(String),
}

/// A failed call into a plugin. Unless the plugin answered with an error of its own
/// ([`CallErrorKind::Refused`]), its instance has been discarded and the next call runs on a
/// fresh one; a rules evaluation always runs on a fresh instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin}: {kind}")]
pub struct CallError {
    /// `name@version`.
    pub plugin: String,
    /// What went wrong.
    pub kind: CallErrorKind,
}

impl fmt::Display for CallErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallErrorKind::Trap(m) => write!(f, "trapped: {m}"),
            CallErrorKind::Timeout { deadline_ms } => write!(
                f,
                "did not return within its {deadline_ms} ms deadline (CPU time of the calling thread)"
            ),
            CallErrorKind::Stalled {
                deadline_ms,
                wall_ms,
            } => write!(
                f,
                "did not return within {wall_ms} ms of wall-clock time, the backstop of its \
                 {deadline_ms} ms deadline, though it had CPU time left: its thread was starved \
                 or it kept waiting"
            ),
            CallErrorKind::OutOfFuel { fuel } => {
                write!(f, "ran out of fuel ({fuel} units per call)")
            }
            CallErrorKind::MemoryLimit { desired, limit } => write!(
                f,
                "tried to grow its memory to {} KiB, over its {} KiB limit",
                desired / 1024,
                limit / 1024
            ),
            CallErrorKind::OversizedResult { bytes, limit } => {
                write!(
                    f,
                    "returned {bytes} bytes, over its {limit}-byte result limit"
                )
            }
            CallErrorKind::CapabilityDenied {
                capability,
                function,
            } => write!(
                f,
                "called {function} without the `{capability}` capability (declare it under [capabilities] imports in plugin.toml)"
            ),
            CallErrorKind::Refused(m) => write!(f, "refused: {m}"),
            CallErrorKind::Instantiate(m) => write!(f, "could not be instantiated: {m}"),
        }
    }
}

/// Raised inside a host import when the plugin lacks the capability; turned into
/// [`CallErrorKind::CapabilityDenied`].
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("capability `{capability}` not granted for {function}")]
pub(crate) struct Denied {
    pub capability: &'static str,
    pub function: &'static str,
}

/// Raised by the epoch callback when a call reaches its wall-clock backstop; turned into
/// [`CallErrorKind::Stalled`].
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("wall-clock backstop of {wall_ms} ms reached")]
pub(crate) struct Stalled {
    pub wall_ms: u64,
}

/// Raised by the memory limiter; turned into [`CallErrorKind::MemoryLimit`].
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("memory limit: {desired} bytes requested, {limit} allowed")]
pub(crate) struct MemoryLimitHit {
    pub desired: usize,
    pub limit: usize,
}
