//! Per-device status, counters and equipment file.

use std::collections::BTreeMap;

use kakou_plugin_sdk::model::Reading;
use serde::Serialize;

use crate::config::{DeviceConfig, Equipment};

/// Most distinct rejection reasons kept per device; the rest are counted under "other".
const MAX_REASONS: usize = 32;

/// A device's status and counters since the daemon started.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeviceStats {
    /// Driver plugin `name@version`.
    pub driver: String,
    /// The transport, described.
    pub transport: String,
    /// Bytes arrive within the silence timeout.
    pub online: bool,
    /// Why it is online or offline, and since when (unix ms).
    pub status: String,
    /// When the status last changed.
    pub since_ms: i64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Readings decoded.
    pub readings: u64,
    /// Frames (or runs of noise) rejected.
    pub rejected: u64,
    /// Bytes in rejected frames.
    pub rejected_bytes: u64,
    /// Bytes dropped by the rate limit.
    pub rate_dropped_bytes: u64,
    /// Driver calls that faulted.
    pub faults: u64,
    /// Rejections by reason (numbers in reasons are kept: they say what was wrong).
    pub reasons: BTreeMap<String, u64>,
    /// The last reading and when.
    pub last_reading: Option<(i64, Reading)>,
    /// Make, model, serial number, install date.
    pub equipment: Equipment,
}

impl DeviceStats {
    pub(crate) fn new(config: &DeviceConfig, driver: String) -> Self {
        DeviceStats {
            driver,
            transport: config.transport.describe(),
            status: "starting".into(),
            equipment: config.equipment.clone(),
            ..Default::default()
        }
    }

    pub(crate) fn count_reason(&mut self, reason: &str) {
        if self.reasons.len() < MAX_REASONS || self.reasons.contains_key(reason) {
            *self.reasons.entry(reason.to_owned()).or_default() += 1;
        } else {
            *self.reasons.entry("other".into()).or_default() += 1;
        }
    }
}
