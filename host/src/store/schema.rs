//! Table layout, value encoding and schema migrations.
//!
//! Every value is one version byte (the schema version it was written with) followed by the
//! record as JSON. A reader upgrades older values in memory ([`decode`]); opening a file for
//! writing upgrades the file itself ([`migrate`]), in one transaction, so a failed migration
//! leaves the file as it was.
//!
//! Schema history:
//! - **1**: passages stored `rules` as one `name@version,…` string and `manual` for the
//!   operator actions, with no `updated_ms`; no vehicle balance counters.
//! - **2**: passages carry `decided_by` (a list of plugin versions), `manual_actions`,
//!   `updated_ms`, the resolved `vehicle` and matched `documents`; the `vehicle_balances`
//!   table counts entries minus exits per plate and is kept up to date on every passage write.
//! - **3**: `outbox_done` and `requests` added; values kept their shape.
//! - **4**: `alarms` (with `alarms_by_time` and `alarms_open`) added, so an alarm is kept with
//!   its state (raised, repeated, acknowledged, cleared) and a station that was offline learns
//!   of it; values kept their shape.

use redb::{MultimapTableDefinition, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The schema this build writes, and the newest it reads.
/// Schema 4 added the alarm tables; values kept their shape.
pub const SCHEMA_VERSION: u64 = 4;

/// Oldest schema this build can migrate from.
pub const OLDEST_SCHEMA: u64 = 1;

/// `meta`: schema version, outbox sequence, creation time.
pub(crate) const META: TableDefinition<'static, &str, u64> = TableDefinition::new("meta");
pub(crate) const META_SCHEMA: &str = "schema_version";
pub(crate) const META_OUTBOX_SEQ: &str = "outbox_seq";
pub(crate) const META_CREATED: &str = "created_ms";

/// Passage index key: (value, started_ms, passage id).
pub(crate) type TimeIndex = TableDefinition<'static, (&'static str, i64, &'static str), ()>;

pub(crate) const PASSAGES: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("passages");
pub(crate) const P_BY_CONTAINER: TimeIndex = TableDefinition::new("passages_by_container");
pub(crate) const P_BY_PLATE: TimeIndex = TableDefinition::new("passages_by_plate");
pub(crate) const P_BY_STATION: TimeIndex = TableDefinition::new("passages_by_station");
pub(crate) const P_BY_LANE: TimeIndex = TableDefinition::new("passages_by_lane_time");
/// (document kind, number, started_ms, passage id).
pub(crate) const P_BY_DOCUMENT: TableDefinition<'static, (&str, &str, i64, &str), ()> =
    TableDefinition::new("passages_by_document");
/// Entries minus exits per plate (schema 2).
pub(crate) const BALANCES: TableDefinition<'static, &str, i64> =
    TableDefinition::new("vehicle_balances");

pub(crate) const VEHICLES: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("vehicles");
pub(crate) const V_BY_TAG: TableDefinition<'static, &str, &str> =
    TableDefinition::new("vehicles_by_tag");
pub(crate) const V_BY_FOREIGN: TableDefinition<'static, &str, &str> =
    TableDefinition::new("vehicles_by_foreign_plate");
pub(crate) const DRIVERS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("drivers");
pub(crate) const D_BY_CARD: TableDefinition<'static, &str, &str> =
    TableDefinition::new("drivers_by_card");
pub(crate) const ENTERPRISES: TableDefinition<'static, &str, &[u8]> =
    TableDefinition::new("enterprises");
pub(crate) const STATIONS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("stations");

pub(crate) const DOCUMENTS: TableDefinition<'static, &str, &[u8]> =
    TableDefinition::new("documents");
pub(crate) const DOC_BY_CONTAINER: MultimapTableDefinition<'static, &str, &str> =
    MultimapTableDefinition::new("documents_by_container");
pub(crate) const DOC_BY_PLATE: MultimapTableDefinition<'static, &str, &str> =
    MultimapTableDefinition::new("documents_by_plate");

/// (name, version) → value.
pub(crate) const PARAMETERS: TableDefinition<'static, (&str, u64), &[u8]> =
    TableDefinition::new("parameters");

pub(crate) const CONTROL_ORDERS: TableDefinition<'static, &str, &[u8]> =
    TableDefinition::new("control_orders");
/// (subject kind, subject) → order ids.
pub(crate) const CO_BY_SUBJECT: MultimapTableDefinition<'static, (&str, &str), &str> =
    MultimapTableDefinition::new("control_orders_by_subject");

/// (lane, device) → equipment file.
pub(crate) const EQUIPMENT: TableDefinition<'static, (&str, &str), &[u8]> =
    TableDefinition::new("equipment");

pub(crate) const OUTBOX: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("outbox");
/// Delivered outbox messages (schema 3): the last [`OUTBOX_HISTORY`] kept with their times, so
/// a message's life can be traced after it left the outbox.
pub(crate) const OUTBOX_DONE: TableDefinition<'static, u64, &[u8]> =
    TableDefinition::new("outbox_done");
/// How many delivered messages `outbox_done` keeps (the oldest are dropped as new ones come).
pub const OUTBOX_HISTORY: u64 = 100_000;
/// Operators' requests already answered (schema 3): request id → the answer, so a retried or
/// redelivered request gets the first answer and acts once. Platform messages applied are
/// kept here too, as `platform:<message id>` → their report.
pub(crate) const REQUESTS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("requests");
/// Message ids already applied by a receiver → when.
pub(crate) const INBOX: TableDefinition<'static, &str, i64> = TableDefinition::new("inbox");

/// Alarms with their state (schema 4): alarm id → [`AlarmRecord`](super::AlarmRecord).
pub(crate) const ALARMS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("alarms");
/// (first raised ms, alarm id).
pub(crate) const ALARMS_BY_TIME: TableDefinition<'static, (i64, &str), ()> =
    TableDefinition::new("alarms_by_time");
/// Alarms not cleared: what makes two alarms alike (code, lane, device, passage) → alarm id,
/// so a repeat counts on the standing alarm instead of adding one.
pub(crate) const ALARMS_OPEN: TableDefinition<'static, &str, &str> =
    TableDefinition::new("alarms_open");

pub(crate) const AUDIT: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("audit");
/// (who, when_ms, seq).
pub(crate) const AUDIT_BY_WHO: TableDefinition<'static, (&str, i64, u64), ()> =
    TableDefinition::new("audit_by_who");

/// Every table of schema 4, for creation, counts and copies.
pub const TABLES: &[&str] = &[
    "meta",
    "passages",
    "passages_by_container",
    "passages_by_plate",
    "passages_by_station",
    "passages_by_lane_time",
    "passages_by_document",
    "vehicle_balances",
    "vehicles",
    "vehicles_by_tag",
    "vehicles_by_foreign_plate",
    "drivers",
    "drivers_by_card",
    "enterprises",
    "stations",
    "documents",
    "documents_by_container",
    "documents_by_plate",
    "parameters",
    "control_orders",
    "control_orders_by_subject",
    "equipment",
    "outbox",
    "outbox_done",
    "inbox",
    "requests",
    "alarms",
    "alarms_by_time",
    "alarms_open",
    "audit",
    "audit_by_who",
];

/// Tables holding records (the rest are indexes and counters derived from them).
pub const RECORD_TABLES: &[&str] = &[
    "passages",
    "vehicles",
    "drivers",
    "enterprises",
    "stations",
    "documents",
    "parameters",
    "control_orders",
    "equipment",
    "outbox",
    "outbox_done",
    "inbox",
    "requests",
    "alarms",
    "audit",
];

/// Creates every table that does not exist yet.
pub(crate) fn create_tables(
    txn: &redb::WriteTransaction,
) -> Result<(), (&'static str, redb::Error)> {
    macro_rules! create {
        ($($def:expr),* $(,)?) => {$(
            txn.open_table($def).map_err(|e| (redb::TableHandle::name(&$def), e.into()))?;
        )*};
    }
    macro_rules! create_multi {
        ($($def:expr),* $(,)?) => {$(
            txn.open_multimap_table($def)
                .map_err(|e| (redb::MultimapTableHandle::name(&$def), e.into()))?;
        )*};
    }
    create!(
        META,
        PASSAGES,
        P_BY_CONTAINER,
        P_BY_PLATE,
        P_BY_STATION,
        P_BY_LANE,
        P_BY_DOCUMENT
    );
    create!(
        BALANCES,
        VEHICLES,
        V_BY_TAG,
        V_BY_FOREIGN,
        DRIVERS,
        D_BY_CARD,
        ENTERPRISES
    );
    create!(
        STATIONS,
        DOCUMENTS,
        PARAMETERS,
        CONTROL_ORDERS,
        EQUIPMENT,
        OUTBOX,
        OUTBOX_DONE,
        INBOX,
        REQUESTS
    );
    create!(AUDIT, AUDIT_BY_WHO, ALARMS, ALARMS_BY_TIME, ALARMS_OPEN);
    create_multi!(DOC_BY_CONTAINER, DOC_BY_PLATE, CO_BY_SUBJECT);
    Ok(())
}

/// One version byte and the record as JSON.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    out.push(SCHEMA_VERSION as u8);
    serde_json::to_writer(&mut out, value)?;
    Ok(out)
}

/// Reads a value written by any schema from [`OLDEST_SCHEMA`] to [`SCHEMA_VERSION`],
/// upgrading it in memory.
pub(crate) fn decode<T: DeserializeOwned>(table: &str, bytes: &[u8]) -> Result<T, String> {
    let (&version, json) = bytes
        .split_first()
        .ok_or_else(|| "empty value (no version byte)".to_owned())?;
    let version = u64::from(version);
    if version == SCHEMA_VERSION {
        return serde_json::from_slice(json).map_err(|e| format!("schema {version} value: {e}"));
    }
    if version > SCHEMA_VERSION {
        return Err(format!(
            "value written by schema {version}; this build reads up to {SCHEMA_VERSION}"
        ));
    }
    if version < OLDEST_SCHEMA {
        return Err(format!("value has unknown schema version {version}"));
    }
    let value: Value =
        serde_json::from_slice(json).map_err(|e| format!("schema {version} value: {e}"))?;
    let value = upgrade(table, version, value)?;
    serde_json::from_value(value).map_err(|e| format!("schema {version} value, upgraded: {e}"))
}

/// Upgrades a value from `version` to [`SCHEMA_VERSION`], one step at a time.
fn upgrade(table: &str, mut version: u64, mut value: Value) -> Result<Value, String> {
    while version < SCHEMA_VERSION {
        value = match (version, table) {
            (1, "passages") => passage_v1_to_v2(value)?,
            // Other tables kept their shape.
            _ => value,
        };
        version += 1;
    }
    Ok(value)
}

/// Schema 1 passage → schema 2: `rules` (text) becomes `decided_by` (list), `manual` becomes
/// `manual_actions`, and `updated_ms` is the latest of creation and manual actions.
pub(crate) fn passage_v1_to_v2(value: Value) -> Result<Value, String> {
    let Value::Object(mut obj) = value else {
        return Err("schema 1 passage is not a JSON object".into());
    };
    let rules = match obj.remove("rules") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(other) => return Err(format!("schema 1 passage: `rules` is not text: {other}")),
    };
    let decided_by: Vec<Value> = rules
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let p = super::PluginVersion::parse(s);
            serde_json::json!({ "name": p.name, "version": p.version })
        })
        .collect();
    let manual = obj.remove("manual").unwrap_or(Value::Array(Vec::new()));
    let created = obj.get("created_ms").and_then(Value::as_i64).unwrap_or(0);
    let last_manual = manual
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("at_ms").and_then(Value::as_i64))
        .max()
        .unwrap_or(created);
    obj.insert("decided_by".into(), Value::Array(decided_by));
    obj.insert("manual_actions".into(), manual);
    obj.insert("updated_ms".into(), Value::from(created.max(last_manual)));
    Ok(Value::Object(obj))
}
