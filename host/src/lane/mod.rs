//! The lane engine: what a customs gate is for. For every truck it collects the readings into
//! a passage ([`assembly`]), has the site's rule set decide ([`ruleset`]), records the passage
//! in the store with its outbox message and its alarms in one transaction, acts on the barrier,
//! and takes the
//! operators' actions on waiting passages ([`OperatorAction`]) and on the whole site
//! ([`SiteAction`]: control orders, parameters).
//!
//! It owns passage assembly, decisions, the operations on passages and the site actions. It
//! does not open devices (it gets readings and a barrier command channel), does not talk MQTT
//! (the daemon publishes its [`LaneEvent`]s and feeds it operator messages), and writes only
//! passages, their outbox messages, the alarms they raise, audit entries, operators' control
//! orders and parameter values, and the answers to operators' requests to the store.

pub mod assembly;
mod engine;
pub mod ops;
pub mod replay;
pub mod ruleset;

pub use engine::{Lane, LaneContext, LaneEvent, LaneInput, LaneSettings, spawn_lane};
pub use ops::{
    CheckedSiteAction, ControlOrderError, KeyedError, OperatorAction, OperatorReply,
    OperatorRequest, SiteAction, SiteAnswer, SiteRequest, answer_site_request, apply_site_action,
    check_control_order, check_site_action, validate_keyed,
};
pub use ruleset::{Decision, RuleSet, RuleSetError, lane_parameters, site_catalog};

use kakou_plugin_sdk::model::Outcome;
use serde::{Deserialize, Serialize};

use crate::store::{PassageRecord, PassageState};

/// Why a lane could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum LaneError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The rule set could not be loaded.
    #[error(transparent)]
    RuleSet(#[from] RuleSetError),
    /// A parameter that nothing on the site reads, or a value that does not fit it.
    #[error(transparent)]
    Parameter(#[from] crate::config::params::ParameterError),
    /// A control order that cannot be put in force.
    #[error(transparent)]
    ControlOrder(#[from] ControlOrderError),
    /// Readings keyed in that cannot be taken.
    #[error(transparent)]
    Keyed(#[from] KeyedError),
    /// No such passage on this lane.
    #[error("lane {lane}: no passage {passage:?}")]
    UnknownPassage {
        /// Lane id.
        lane: String,
        /// The id asked for.
        passage: String,
    },
    /// An action that must name its passage did not.
    #[error("lane {lane}: name the passage this action is for (`passage`, or --passage); {}", waiting_list(.waiting))]
    PassageNotNamed {
        /// Lane id.
        lane: String,
        /// The lane's passages waiting for an operator, oldest first.
        waiting: Vec<String>,
    },
    /// The action does not apply to the passage in its state.
    #[error("lane {lane}: passage {passage} is {state:?}: {reason}")]
    NotApplicable {
        /// Lane id.
        lane: String,
        /// Passage id.
        passage: String,
        /// Its state.
        state: PassageState,
        /// Why the action does not apply.
        reason: String,
    },
    /// The lane task has stopped.
    #[error("lane {0} has stopped")]
    Stopped(String),
}

fn waiting_list(waiting: &[String]) -> String {
    if waiting.is_empty() {
        "no passage is waiting for an operator on this lane".into()
    } else {
        format!("waiting: {}", waiting.join(", "))
    }
}

/// A decided passage on the bus (`kakou/{site}/lane/{lane}/passage`), sent through the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassageMessage {
    /// The passage as recorded.
    pub record: PassageRecord,
    /// Why it was published: `decided`, or the operator action that changed it.
    pub cause: String,
}

/// The state a decision puts a passage in.
pub fn state_for(outcome: Outcome) -> PassageState {
    match outcome {
        Outcome::Release => PassageState::Decided,
        Outcome::Manual => PassageState::Manual,
        Outcome::Inspect => PassageState::Inspection,
        Outcome::Refuse => PassageState::Decided,
    }
}
