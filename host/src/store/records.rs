//! What the store keeps besides the SDK's model types: passage records with their decision and
//! life cycle, control orders with their revocation, parameter versions, outbox messages,
//! alarms with their state and audit entries.

use kakou_plugin_sdk::model::{
    ControlOrder, Direction, DocumentRef, Outcome, Passage, SubjectKind, Verdict,
};
use kakou_plugin_sdk::proto::{iso6346, plate};
use serde::{Deserialize, Serialize};

/// Where a passage is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassageState {
    /// Readings are being collected, or the rules have not answered yet.
    #[default]
    Pending,
    /// A decision was reached; the record's `outcome` holds it.
    Decided,
    /// Waiting for an operator (a read failed or data are missing).
    Manual,
    /// Sent to the inspection area, not yet marked inspected.
    Inspection,
    /// Marked inspected by an operator.
    Inspected,
    /// The truck has left the lane.
    Closed,
    /// Abandoned (the truck backed out); never counted in a vehicle's balance.
    Cancelled,
}

impl PassageState {
    /// Every state, in declaration order.
    pub const ALL: [PassageState; 7] = [
        PassageState::Pending,
        PassageState::Decided,
        PassageState::Manual,
        PassageState::Inspection,
        PassageState::Inspected,
        PassageState::Closed,
        PassageState::Cancelled,
    ];
}

/// A plugin that took part in a decision, as `name@version`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct PluginVersion {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
}

impl PluginVersion {
    /// A plugin reference.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        PluginVersion {
            name: name.into(),
            version: version.into(),
        }
    }

    /// Parses `name@version` (a missing version is left empty).
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        match text.split_once('@') {
            Some((name, version)) => PluginVersion::new(name.trim(), version.trim()),
            None => PluginVersion::new(text, ""),
        }
    }
}

impl std::fmt::Display for PluginVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// An operator's action on a passage (manual entry, backfill, release, marked inspected …).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ManualAction {
    /// The operator's id.
    pub who: String,
    /// Unix ms.
    pub at_ms: i64,
    /// What was done, e.g. `backfill.container`, `release`, `inspected`.
    pub action: String,
    /// Free text: the value keyed in, the reason given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One passage as the store keeps it (schema 2).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PassageRecord {
    /// The passage: lane, readings, times. Its `id` is the record's key.
    pub passage: Passage,
    /// The rules' verdict, once there is one.
    pub verdict: Option<Verdict>,
    /// The final outcome: the verdict's, or an operator's when one overrode it.
    pub outcome: Option<Outcome>,
    /// Life-cycle state.
    pub state: PassageState,
    /// The rule plugins (and versions) that decided.
    pub decided_by: Vec<PluginVersion>,
    /// The registered plate the lane resolved the truck to (via plate, e-plate tag, or the
    /// HK/Macau plate of a two-plate vehicle); the balance counts this plate when set.
    pub vehicle: Option<String>,
    /// Release documents the passage was matched against (besides those presented).
    pub documents: Vec<DocumentRef>,
    /// Every operator action, in order.
    pub manual_actions: Vec<ManualAction>,
    /// Unix ms the record was first written.
    pub created_ms: i64,
    /// Unix ms of the last change.
    pub updated_ms: i64,
}

/// The index entries a passage record owns. Derived from the record alone, so `check` can
/// recompute them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct PassageKeys {
    pub containers: Vec<String>,
    pub plates: Vec<String>,
    pub station: Option<String>,
    pub documents: Vec<(String, String)>,
    pub lane: String,
    pub time: i64,
    /// (plate, +1 for an entry, −1 for an exit).
    pub movement: Option<(String, i64)>,
}

/// Lower case, `_` for `-`: "Transit-Release" and "transit_release" index alike.
pub fn document_kind_key(kind: &str) -> String {
    kind.trim().to_lowercase().replace(['-', ' '], "_")
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !s.is_empty() && !v.contains(&s) {
        v.push(s);
    }
}

impl PassageRecord {
    /// A new pending record for a passage.
    pub fn new(passage: Passage, at_ms: i64) -> Self {
        PassageRecord {
            passage,
            created_ms: at_ms,
            updated_ms: at_ms,
            ..Default::default()
        }
    }

    /// The record's key.
    pub fn id(&self) -> &str {
        &self.passage.id
    }

    /// The plate whose entry/exit balance this passage moves, and by how much: a released
    /// passage (final outcome release, not cancelled) counts +1 on an import lane and −1 on an
    /// export lane, for the resolved vehicle's plate or else the plate read.
    pub fn movement(&self) -> Option<(String, i64)> {
        if self.outcome != Some(Outcome::Release) || self.state == PassageState::Cancelled {
            return None;
        }
        let plate = self
            .vehicle
            .clone()
            .or_else(|| self.passage.plate().map(|p| p.text.clone()))
            .map(|p| plate::normalize(&p))
            .filter(|p| !p.is_empty())?;
        let delta = match self.passage.lane.direction {
            Direction::Import => 1,
            Direction::Export => -1,
        };
        Some((plate, delta))
    }

    pub(crate) fn keys(&self) -> PassageKeys {
        let mut containers = Vec::new();
        for c in self.passage.containers() {
            push_unique(&mut containers, iso6346::normalize(&c.number));
        }
        let mut plates = Vec::new();
        if let Some(p) = self.passage.plate() {
            push_unique(&mut plates, plate::normalize(&p.text));
        }
        if let Some(v) = &self.vehicle {
            push_unique(&mut plates, plate::normalize(v));
        }
        let mut documents: Vec<(String, String)> = Vec::new();
        for d in self.passage.documents().chain(self.documents.iter()) {
            let key = (document_kind_key(&d.kind), d.number.trim().to_owned());
            if !key.1.is_empty() && !documents.contains(&key) {
                documents.push(key);
            }
        }
        let station = self.passage.lane.station.trim();
        PassageKeys {
            containers,
            plates,
            station: (!station.is_empty()).then(|| station.to_owned()),
            documents,
            lane: self.passage.lane.id.clone(),
            time: self.passage.started_ms,
            movement: self.movement(),
        }
    }
}

/// A control order (布控) with its revocation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ControlOrderRecord {
    /// The order.
    pub order: ControlOrder,
    /// Unix ms it was issued (or received).
    pub issued_ms: i64,
    /// Who issued it (an operator, or `platform`).
    pub issued_by: String,
    /// Unix ms from which it no longer applies; none = not revoked.
    pub revoked_ms: Option<i64>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

impl ControlOrderRecord {
    /// In force at `now_ms`: not expired and not revoked by then.
    pub fn in_force(&self, now_ms: i64) -> bool {
        self.order.in_force(now_ms) && self.revoked_ms.is_none_or(|r| now_ms < r)
    }
}

/// The name under which a subject kind is indexed (`container`, `vehicle`, `driver`).
pub fn subject_kind_name(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::Container => "container",
        SubjectKind::Vehicle => "vehicle",
        SubjectKind::Driver => "driver",
    }
}

/// A control order's subject as indexed: container numbers and plates normalised, driver ids
/// and cards trimmed and upper-cased.
pub fn subject_key(kind: SubjectKind, subject: &str) -> String {
    match kind {
        SubjectKind::Container => iso6346::normalize(subject),
        SubjectKind::Vehicle => plate::normalize(subject),
        SubjectKind::Driver => subject.trim().to_uppercase(),
    }
}

/// One value a parameter has had.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ParameterVersion {
    /// Parameter name.
    pub name: String,
    /// Version number, from 1.
    pub version: u64,
    /// The value, as text.
    pub value: String,
    /// Unix ms it was set.
    pub set_ms: i64,
    /// Who set it (an operator, or `platform`).
    pub set_by: String,
}

/// Quality of service a message is published with.
pub type Qos = u8;

/// A message in the outbox, with where it is in its life.
///
/// Only transitions that must survive a restart are written: queued (with the record that
/// caused it), acknowledged by the broker (for messages whose receivers confirm), delivered
/// (moved to the history table), and attempts after a timeout. The publisher keeps the rest
/// (the publish in flight, its packet id) in memory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OutboxMessage {
    /// MQTT topic.
    pub topic: String,
    /// Payload bytes (stored as hexadecimal text).
    #[serde(with = "hex_bytes")]
    pub payload: Vec<u8>,
    /// MQTT QoS (0, 1 or 2).
    pub qos: Qos,
    /// Unix ms it was queued.
    pub created_ms: i64,
    /// Publish attempts so far.
    pub attempts: u32,
    /// The envelope id, stable across resends; receivers apply it once and, when
    /// [`Confirm::Receiver`], confirm it.
    pub message_id: String,
    /// Whose acknowledgement delivers the message.
    pub confirm: Confirm,
    /// Unix ms the broker last acknowledged it. A message that waits for its receiver stays
    /// in the outbox, [`OutboxState::BrokerAcked`], until the receiver confirms it.
    #[serde(alias = "sent_ms")]
    pub broker_acked_ms: Option<i64>,
    /// Unix ms of the last publish attempt that was recorded.
    pub last_attempt_ms: Option<i64>,
    /// Why the last attempt did not get through, when it did not.
    pub last_error: Option<String>,
    /// Unix ms it was delivered: acknowledged by the broker, or confirmed by its receiver.
    pub delivered_ms: Option<i64>,
}

/// Whose acknowledgement takes a message out of the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confirm {
    /// The broker's (QoS 1 PUBACK): enough for a broker that keeps sessions on disk and for
    /// messages whose receivers may be absent.
    #[default]
    Broker,
    /// The receiver's own confirmation on the envelope's `ack` topic, sent after it applied
    /// the message: survives a broker that acknowledged and then lost it.
    Receiver,
}

/// Where an outbox message is in its life, as the store knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutboxState {
    /// Waiting to be published, or published and not yet acknowledged.
    Queued,
    /// The broker acknowledged it; waiting for the receiver's confirmation.
    BrokerAcked,
    /// Delivered: acknowledged by whoever [`Confirm`] names. Kept in the history.
    Delivered,
}

impl OutboxMessage {
    /// A message to publish with QoS 1, delivered on the broker's acknowledgement.
    pub fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>, created_ms: i64) -> Self {
        OutboxMessage {
            topic: topic.into(),
            payload: payload.into(),
            qos: 1,
            created_ms,
            ..Default::default()
        }
    }

    /// A message that stays until the receiver confirms envelope id `message_id`.
    pub fn confirmed_by_receiver(
        topic: impl Into<String>,
        payload: impl Into<Vec<u8>>,
        message_id: impl Into<String>,
        created_ms: i64,
    ) -> Self {
        OutboxMessage {
            message_id: message_id.into(),
            confirm: Confirm::Receiver,
            ..OutboxMessage::new(topic, payload, created_ms)
        }
    }

    /// Where it is.
    pub fn state(&self) -> OutboxState {
        if self.delivered_ms.is_some() {
            OutboxState::Delivered
        } else if self.broker_acked_ms.is_some() && self.confirm == Confirm::Receiver {
            OutboxState::BrokerAcked
        } else {
            OutboxState::Queued
        }
    }
}

/// The first answer to an operator's request, kept so that a retry or a redelivery of the same
/// request id gets it again instead of acting a second time.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StoredReply {
    /// Unix ms it was answered.
    pub at_ms: i64,
    /// The answer as sent (the lane's or the site's reply type, as JSON).
    pub reply: serde_json::Value,
}

/// An alarm as raised, before the store gives it an id or finds the standing one it repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAlarm {
    /// Alarm code, e.g. `lane.manual`, `device.fault`.
    pub code: String,
    /// `info`, `warning` or `critical`.
    pub severity: kakou_plugin_sdk::model::Severity,
    /// Lane, when it concerns one.
    pub lane: Option<String>,
    /// Device, when it concerns one.
    pub device: Option<String>,
    /// Passage, when it concerns one.
    pub passage: Option<String>,
    /// What happened.
    pub message: String,
}

impl NewAlarm {
    /// What makes two alarms the same standing alarm: code, lane, device and passage.
    pub(crate) fn standing_key(&self) -> String {
        let part = |o: &Option<String>| o.clone().unwrap_or_default();
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.code,
            part(&self.lane),
            part(&self.device),
            part(&self.passage)
        )
    }
}

/// An operator's acknowledgement of an alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmAck {
    /// Operator id.
    pub by: String,
    /// Unix ms.
    pub at_ms: i64,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An alarm's end: its cause went away (the daemon) or an operator cleared it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmClear {
    /// Unix ms.
    pub at_ms: i64,
    /// Operator id; none when the daemon cleared it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// A stored alarm and its state (table `alarms`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmRecord {
    /// Alarm id (the id of its first bus message).
    pub id: String,
    /// The alarm as last raised (its message is the latest).
    #[serde(flatten)]
    pub alarm: NewAlarm,
    /// First raised, Unix ms.
    pub first_ms: i64,
    /// Last raised, Unix ms.
    pub last_ms: i64,
    /// Times raised while standing, the held-back repeats of a device alarm included.
    pub count: u64,
    /// Acknowledged, by whom and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<AlarmAck>,
    /// Cleared, when and by whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared: Option<AlarmClear>,
}

impl AlarmRecord {
    /// Not cleared.
    pub fn is_open(&self) -> bool {
        self.cleared.is_none()
    }
}

/// What an acknowledgement or a clearing did.
#[derive(Debug, Clone, PartialEq)]
pub enum AlarmUpdate {
    /// Done: the alarm as it is now.
    Updated(AlarmRecord),
    /// No alarm has that id.
    Unknown,
    /// Acknowledged before (by another request): the alarm as it is.
    AlreadyAcknowledged(AlarmRecord),
    /// Cleared before: the alarm as it is.
    AlreadyCleared(AlarmRecord),
}

/// An outbox message with its id (stable, never reused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Message id: increasing, never reused, even after acknowledgement.
    pub id: u64,
    /// The message.
    pub message: OutboxMessage,
}

/// One line of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditEntry {
    /// Who: an operator id, or a system part (`platform`, `import`).
    pub who: String,
    /// Unix ms.
    pub when_ms: i64,
    /// What was done, e.g. `passage.release`, `control-order.revoke`, `data.import`.
    pub action: String,
    /// What it was done to (a passage id, a plate, a file name).
    pub subject: String,
    /// State before, as JSON.
    pub before: Option<serde_json::Value>,
    /// State after, as JSON.
    pub after: Option<serde_json::Value>,
}

/// An audit entry with its sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// The entry.
    pub entry: AuditEntry,
}

/// Payload bytes as hexadecimal text. Every outbox row is encoded when a passage is
/// committed and decoded when it is published and when it is delivered, so this goes through
/// the `hex` crate's slice functions (a table look-up per byte), not its char iterators.
mod hex_bytes {
    use std::borrow::Cow;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut text = vec![0u8; bytes.len() * 2];
        hex::encode_to_slice(bytes, &mut text).map_err(serde::ser::Error::custom)?;
        let text = std::str::from_utf8(&text).map_err(serde::ser::Error::custom)?;
        s.serialize_str(text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = Cow::<'de, str>::deserialize(d)?;
        let mut bytes = vec![0u8; text.len() / 2];
        hex::decode_to_slice(text.as_bytes(), &mut bytes).map_err(serde::de::Error::custom)?;
        Ok(bytes)
    }
}
