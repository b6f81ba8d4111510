//! Message bodies more than one part of the daemon publishes, in their envelopes
//! ([`super::payload::Envelope`]). docs/bus.md shows each with an example.

use kakou_plugin_sdk::model::Severity;
use serde::{Deserialize, Serialize};

/// An alarm (`kakou/{site}/alarm`), sent through the outbox so that a receiver that was away
/// still gets it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmMessage {
    /// Alarm code, e.g. `lane.barrier`, `device.fault`, `bus.broker-restarted`.
    pub code: String,
    /// Lane, when it concerns one.
    pub lane: Option<String>,
    /// Device, when it concerns one.
    pub device: Option<String>,
    /// Passage, when it concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passage: Option<String>,
    /// `info`, `warning` or `critical`.
    #[serde(default = "warning")]
    pub severity: Severity,
    /// What happened.
    pub message: String,
}

impl AlarmMessage {
    /// The alarm as the store keeps it.
    pub fn to_record(&self) -> crate::store::NewAlarm {
        crate::store::NewAlarm {
            code: self.code.clone(),
            severity: self.severity,
            lane: self.lane.clone(),
            device: self.device.clone(),
            passage: self.passage.clone(),
            message: self.message.clone(),
        }
    }
}

fn warning() -> Severity {
    Severity::Warning
}

/// Input refused, echoed for the sender (`kakou/{site}/rejected`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedMessage {
    /// The topic it came on.
    pub topic: String,
    /// The refused message's envelope id, when it could be read: a sender waiting for an
    /// answer to that id learns why it will get none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Why.
    pub reason: String,
}
