//! Message bodies only the daemon publishes or reads (the shared ones are in
//! [`crate::bus::messages`]).

use kakou_plugin_sdk::model::{Command, Reading};
use serde::{Deserialize, Serialize};

/// A reading on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadingMessage {
    /// Lane id.
    pub lane: String,
    /// Device id.
    pub device: String,
    /// The reading.
    pub reading: Reading,
}

/// A device's status on the bus (retained).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceStatusMessage {
    /// Lane id.
    pub lane: String,
    /// Device id.
    pub device: String,
    /// `online` or `offline`.
    pub state: String,
    /// Why.
    pub reason: String,
}

/// A command for a device, as operators and the lane engine send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandMessage {
    /// The command.
    pub command: Command,
    /// Who asked.
    #[serde(default)]
    pub operator: Option<String>,
}

/// The daemon's own status (retained; the last will says `offline`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatusMessage {
    /// `online` or `offline`.
    pub state: String,
    /// Site id.
    pub site: String,
}

/// Platform data pushed by the site platform: registrations, documents, control orders,
/// parameters, each a JSON object with its `kind` (as `kakou data import` reads them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformMessage {
    /// The records, applied all or nothing.
    pub records: Vec<serde_json::Value>,
}

/// What became of a platform message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformReport {
    /// The platform message's id.
    pub message: String,
    /// The records were written.
    pub applied: bool,
    /// Records received.
    pub records: u64,
    /// Why records were refused: `record N: field: reason`.
    pub rejected: Vec<String>,
}
