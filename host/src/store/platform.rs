//! Platform data (卡口平台数据): registrations, release documents, control orders and
//! parameters, as the site platform feeds them over the bus or an operator imports them by
//! hand (单证下载, `kakou data import`).
//!
//! One path for both: records are read (JSON lines or CSV), every one is validated against the
//! others and the store, and then all are applied in one transaction, or none when anything
//! was rejected. Applying is idempotent: a record equal to the stored one changes nothing, so
//! a feed or a file delivered twice takes effect once.
//!
//! # Record format
//!
//! One JSON object per line, `{"kind": "vehicle", …fields}`, with kinds `vehicle`, `driver`,
//! `enterprise`, `station`, `document`, `control-order`, `parameter`. The fields are those of
//! the SDK model types ([`Vehicle`], [`TruckDriver`], [`Enterprise`], [`Station`],
//! [`Document`], [`ControlOrder`]) with two changes: a document's own kind is `document_kind`
//! (`kind` says what the record is), and a control order may carry `revoked_ms`. A parameter
//! is `{"kind": "parameter", "name": …, "value": …}`. `active` defaults to true; enum values
//! accept `-` for `_` (`transit-release`). Unknown fields are refused.
//!
//! CSV files hold one kind each (`--kind`, a `kind` column, or told from the header); columns
//! are field names, lists are `;`-separated, an empty cell is "not given".

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use kakou_plugin_sdk::model::{
    ControlOrder, Document, Enterprise, Outcome, Station, SubjectKind, TruckDriver, Vehicle,
};
use kakou_plugin_sdk::proto::{iso6346, plate};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::read::{foreign_plate_key, hex_key};
use super::records::{AuditEntry, ControlOrderRecord};
use super::{Reader, Store, StoreError, WriteTx};
use crate::config::params::ParameterCatalog;

/// What a platform record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    /// A vehicle registration.
    Vehicle,
    /// A truck driver and their IC card.
    Driver,
    /// A transport enterprise.
    Enterprise,
    /// A station or yard.
    Station,
    /// A release document.
    Document,
    /// A control order (or its revocation).
    ControlOrder,
    /// A parameter value.
    Parameter,
}

impl RecordKind {
    /// Every kind.
    pub const ALL: [RecordKind; 7] = [
        RecordKind::Vehicle,
        RecordKind::Driver,
        RecordKind::Enterprise,
        RecordKind::Station,
        RecordKind::Document,
        RecordKind::ControlOrder,
        RecordKind::Parameter,
    ];

    /// The name used in files: `vehicle`, …, `control-order`, `parameter`.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Vehicle => "vehicle",
            RecordKind::Driver => "driver",
            RecordKind::Enterprise => "enterprise",
            RecordKind::Station => "station",
            RecordKind::Document => "document",
            RecordKind::ControlOrder => "control-order",
            RecordKind::Parameter => "parameter",
        }
    }

    /// A kind by name (`control_order` is accepted too).
    pub fn parse(name: &str) -> Option<RecordKind> {
        let name = name.trim().to_lowercase().replace('_', "-");
        RecordKind::ALL.into_iter().find(|k| k.name() == name)
    }

    fn names() -> String {
        RecordKind::ALL.map(RecordKind::name).join(", ")
    }

    /// Fields that must be given.
    pub fn required(self) -> &'static [&'static str] {
        match self {
            RecordKind::Vehicle => &["plate", "enterprise"],
            RecordKind::Driver => &["id", "name", "card_uid", "enterprise"],
            RecordKind::Enterprise => &["code", "name"],
            RecordKind::Station => &["code", "name", "office"],
            RecordKind::Document => &["document_kind", "number", "direction", "station"],
            RecordKind::ControlOrder => &["id", "subject_kind", "subject", "reason", "action"],
            RecordKind::Parameter => &["name", "value"],
        }
    }

    /// The field that identifies a record of this kind.
    pub fn key_field(self) -> &'static str {
        match self {
            RecordKind::Vehicle => "plate",
            RecordKind::Driver | RecordKind::ControlOrder => "id",
            RecordKind::Enterprise | RecordKind::Station => "code",
            RecordKind::Document => "number",
            RecordKind::Parameter => "name",
        }
    }

    /// Every field, with its default, as JSON (the shape files follow).
    pub fn template(self) -> Map<String, Value> {
        let value = match self {
            RecordKind::Vehicle => serde_json::to_value(Vehicle {
                active: true,
                ..Default::default()
            }),
            RecordKind::Driver => serde_json::to_value(TruckDriver {
                active: true,
                ..Default::default()
            }),
            RecordKind::Enterprise => serde_json::to_value(Enterprise::default()),
            RecordKind::Station => serde_json::to_value(Station {
                active: true,
                ..Default::default()
            }),
            RecordKind::Document => serde_json::to_value(Document::default()),
            RecordKind::ControlOrder => serde_json::to_value(PlatformOrder::default()),
            RecordKind::Parameter => serde_json::to_value(PlatformParameter::default()),
        };
        let mut map = match value {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        if self == RecordKind::Document
            && let Some(k) = map.remove("kind")
        {
            map.insert("document_kind".into(), k);
        }
        map
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A control order as the platform sends it: the order, and when it was revoked (if it was).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PlatformOrder {
    /// The order.
    #[serde(flatten)]
    pub order: ControlOrder,
    /// Revoked from this time on (unix ms).
    pub revoked_ms: Option<i64>,
}

/// A parameter value as the platform sends it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PlatformParameter {
    /// Parameter name, e.g. `weight.tolerance-percent`.
    pub name: String,
    /// Value, as text.
    pub value: String,
}

/// One platform record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A vehicle registration.
    Vehicle(Vehicle),
    /// A driver registration.
    Driver(TruckDriver),
    /// An enterprise registration.
    Enterprise(Enterprise),
    /// A station or yard.
    Station(Station),
    /// A release document.
    Document(Document),
    /// A control order.
    ControlOrder(PlatformOrder),
    /// A parameter.
    Parameter(PlatformParameter),
}

/// A field of a record that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field (`containers[1]` for a list item), or `-` for the record as a whole.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl FieldError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.reason)
    }
}

impl Record {
    /// Its kind.
    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Vehicle(_) => RecordKind::Vehicle,
            Record::Driver(_) => RecordKind::Driver,
            Record::Enterprise(_) => RecordKind::Enterprise,
            Record::Station(_) => RecordKind::Station,
            Record::Document(_) => RecordKind::Document,
            Record::ControlOrder(_) => RecordKind::ControlOrder,
            Record::Parameter(_) => RecordKind::Parameter,
        }
    }

    /// Its identifying value (plate, id, code, number or name).
    pub fn key(&self) -> String {
        match self {
            Record::Vehicle(v) => v.plate.clone(),
            Record::Driver(d) => d.id.clone(),
            Record::Enterprise(e) => e.code.clone(),
            Record::Station(s) => s.code.clone(),
            Record::Document(d) => d.number.clone(),
            Record::ControlOrder(o) => o.order.id.clone(),
            Record::Parameter(p) => p.name.clone(),
        }
    }

    /// The record as one line of a JSON lines file.
    pub fn to_json(&self) -> Value {
        let value = match self {
            Record::Vehicle(v) => serde_json::to_value(v),
            Record::Driver(d) => serde_json::to_value(d),
            Record::Enterprise(e) => serde_json::to_value(e),
            Record::Station(s) => serde_json::to_value(s),
            Record::Document(d) => serde_json::to_value(d),
            Record::ControlOrder(o) => serde_json::to_value(o),
            Record::Parameter(p) => serde_json::to_value(p),
        };
        let mut fields = match value {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        if let Record::Document(_) = self
            && let Some(k) = fields.remove("kind")
        {
            fields.insert("document_kind".into(), k);
        }
        let mut out = Map::new();
        out.insert("kind".into(), Value::from(self.kind().name()));
        out.extend(fields);
        Value::Object(out)
    }

    /// The record as one line of text (no newline), `kind` first.
    pub fn to_line(&self) -> String {
        let Value::Object(mut fields) = self.to_json() else {
            return String::new();
        };
        let kind = fields.remove("kind").unwrap_or(Value::Null);
        let mut line = format!("{{\"kind\":{kind}");
        for (k, v) in fields {
            line.push(',');
            line.push_str(&Value::String(k).to_string());
            line.push(':');
            line.push_str(&v.to_string());
        }
        line.push('}');
        line
    }

    /// A record from a JSON object with its `kind`; errors name the field.
    pub fn from_json(value: Value) -> Result<Record, Vec<FieldError>> {
        let Value::Object(mut obj) = value else {
            return Err(vec![FieldError::new("-", "expected a JSON object")]);
        };
        let kind = match obj.remove("kind") {
            Some(Value::String(k)) => RecordKind::parse(&k).ok_or_else(|| {
                vec![FieldError::new(
                    "kind",
                    format!("unknown kind {k:?}; one of {}", RecordKind::names()),
                )]
            })?,
            Some(other) => {
                return Err(vec![FieldError::new(
                    "kind",
                    format!("expected text, found {other}"),
                )]);
            }
            None => {
                return Err(vec![FieldError::new(
                    "kind",
                    format!("missing; one of {}", RecordKind::names()),
                )]);
            }
        };
        Record::from_fields(kind, obj)
    }

    /// A record of `kind` from its fields (no `kind` among them).
    pub fn from_fields(
        kind: RecordKind,
        mut obj: Map<String, Value>,
    ) -> Result<Record, Vec<FieldError>> {
        let template = template_of(kind);
        let mut errors = Vec::new();
        for k in obj.keys() {
            if !template.contains_key(k) {
                let known: Vec<&str> = template.keys().map(String::as_str).collect();
                errors.push(FieldError::new(
                    k.clone(),
                    format!("unknown field; a {kind} has {}", known.join(", ")),
                ));
            }
        }
        for &r in kind.required() {
            match obj.get(r) {
                None | Some(Value::Null) => errors.push(FieldError::new(r, "required")),
                Some(Value::String(s)) if s.trim().is_empty() => {
                    errors.push(FieldError::new(r, "required, found empty text"));
                }
                _ => {}
            }
        }
        if kind == RecordKind::Parameter
            && let Some(v) = obj.get_mut("value")
            && (v.is_number() || v.is_boolean())
        {
            *v = Value::String(v.to_string());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let merged = |obj: &Map<String, Value>| {
            let mut full = template.clone();
            full.extend(obj.iter().map(|(k, v)| (k.clone(), v.clone())));
            full
        };
        if let Ok(r) = deserialize(kind, merged(&obj)) {
            return Ok(r);
        }
        // Field by field, so a type error names its field; enum values may use `-` for `_`.
        for (k, v) in obj.iter_mut() {
            let mut probe = template.clone();
            probe.insert(k.clone(), v.clone());
            if deserialize(kind, probe.clone()).is_ok() {
                continue;
            }
            if let Value::String(s) = v
                && s.contains('-')
            {
                let alt = Value::String(s.replace('-', "_"));
                probe.insert(k.clone(), alt.clone());
                if deserialize(kind, probe.clone()).is_ok() {
                    *v = alt;
                    continue;
                }
                probe.insert(k.clone(), v.clone());
            }
            if let Err(e) = deserialize(kind, probe) {
                errors.push(FieldError::new(k.clone(), clean_serde(&e.to_string())));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        deserialize(kind, merged(&obj))
            .map_err(|e| vec![FieldError::new("-", clean_serde(&e.to_string()))])
    }
}

/// [`RecordKind::template`], built once per kind.
fn template_of(kind: RecordKind) -> &'static Map<String, Value> {
    static TEMPLATES: std::sync::OnceLock<Vec<Map<String, Value>>> = std::sync::OnceLock::new();
    let all = TEMPLATES.get_or_init(|| RecordKind::ALL.iter().map(|k| k.template()).collect());
    &all[kind as usize]
}

fn clean_serde(message: &str) -> String {
    // serde_json appends " at line 1 column 2" for text input; values have none, but be safe.
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn deserialize(kind: RecordKind, mut obj: Map<String, Value>) -> Result<Record, serde_json::Error> {
    if kind == RecordKind::Document
        && let Some(k) = obj.remove("document_kind")
    {
        obj.insert("kind".into(), k);
    }
    let v = Value::Object(obj);
    Ok(match kind {
        RecordKind::Vehicle => Record::Vehicle(serde_json::from_value(v)?),
        RecordKind::Driver => Record::Driver(serde_json::from_value(v)?),
        RecordKind::Enterprise => Record::Enterprise(serde_json::from_value(v)?),
        RecordKind::Station => Record::Station(serde_json::from_value(v)?),
        RecordKind::Document => Record::Document(serde_json::from_value(v)?),
        RecordKind::ControlOrder => Record::ControlOrder(serde_json::from_value(v)?),
        RecordKind::Parameter => Record::Parameter(serde_json::from_value(v)?),
    })
}

impl Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Record::from_json(v).map_err(|errors| {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            serde::de::Error::custom(text.join("; "))
        })
    }
}

/// Where a record came from: a file and line, or a bus message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// File name, or a topic / feed name.
    pub source: String,
    /// Line in the file (1-based), or position in the batch.
    pub line: u64,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.source, self.line)
    }
}

/// A record refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Where it came from.
    pub origin: Origin,
    /// Its kind, when known.
    pub kind: Option<RecordKind>,
    /// Its key (plate, id, number …), when known.
    pub key: Option<String>,
    /// The field at fault (`-` for the record as a whole).
    pub field: String,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.origin)?;
        match (&self.kind, &self.key) {
            (Some(k), Some(key)) if !key.is_empty() => write!(f, "{k} {key}: ")?,
            (Some(k), _) => write!(f, "{k}: ")?,
            _ => {}
        }
        write!(f, "field `{}`: {}", self.field, self.reason)
    }
}

/// Inserted / updated / unchanged counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// New records.
    pub inserted: u64,
    /// Records that replaced a different stored one.
    pub updated: u64,
    /// Records equal to the stored one (nothing written).
    pub unchanged: u64,
}

/// What an import or a platform feed did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImportReport {
    /// Records read.
    pub records: u64,
    /// Per kind.
    pub by_kind: BTreeMap<RecordKind, Counts>,
    /// Everything refused; when not empty nothing was applied.
    pub rejected: Vec<Rejection>,
    /// The records were written (false when anything was rejected, or on a dry run).
    pub applied: bool,
}

impl ImportReport {
    /// Totals over all kinds.
    pub fn totals(&self) -> Counts {
        let mut t = Counts::default();
        for c in self.by_kind.values() {
            t.inserted += c.inserted;
            t.updated += c.updated;
            t.unchanged += c.unchanged;
        }
        t
    }

    /// Records that changed the store (or would have, on a dry run).
    pub fn changed(&self) -> u64 {
        let t = self.totals();
        t.inserted + t.updated
    }
}

/// Who applies the records, and when.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Written in the audit log (an operator id, or `platform`).
    pub who: String,
    /// Unix ms, for the audit log, parameter versions and control orders.
    pub at_ms: i64,
    /// Validate and count, write nothing.
    pub dry_run: bool,
    /// What is being applied (a file name, a feed), for the audit log.
    pub source: String,
    /// The site's parameter catalogue: when given, a parameter record whose name nothing on
    /// the site reads, or whose value does not fit its declaration, is refused, and accepted
    /// values are stored in their canonical spelling. The daemon's platform feed gives it;
    /// `kakou data import` works on a store without a site and does not.
    pub catalog: Option<Arc<ParameterCatalog>>,
}

impl ApplyOptions {
    /// Options for `who` at `at_ms`.
    pub fn new(who: impl Into<String>, at_ms: i64) -> Self {
        ApplyOptions {
            who: who.into(),
            at_ms,
            dry_run: false,
            source: "platform".into(),
            catalog: None,
        }
    }

    /// The same options, checking parameter records against `catalog`.
    pub fn with_catalog(mut self, catalog: Arc<ParameterCatalog>) -> Self {
        self.catalog = Some(catalog);
        self
    }
}

/// Progress of a long import, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Reading the file: bytes done of total.
    Reading(u64, u64),
    /// Validating: records done of total.
    Validating(u64, u64),
    /// Writing: records done of total.
    Applying(u64, u64),
}

/// Records read from a file with where each came from, and the lines that are not records.
pub type Parsed = (Vec<(Origin, Record)>, Vec<Rejection>);

/// Reads a JSON lines or CSV file into records, with a rejection for each line that is not a
/// record. CSV is chosen by the `.csv` extension or when the file does not start with `{`.
pub fn read_file(
    path: &Path,
    kind: Option<RecordKind>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Parsed, StoreError> {
    let bytes = std::fs::read(path).map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let source = path.display().to_string();
    let Some(text) = decode_text(&bytes) else {
        let rejection = Rejection {
            origin: Origin { source, line: 1 },
            kind: None,
            key: None,
            field: "-".into(),
            reason: "the file is neither UTF-8 nor GBK (GB 18030) text".into(),
        };
        return Ok((Vec::new(), vec![rejection]));
    };
    let csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        || !text.trim_start().starts_with('{') && !text.trim().is_empty();
    if csv {
        Ok(read_csv(&source, &text, kind, progress))
    } else {
        Ok(read_json_lines(&source, &text, kind, progress))
    }
}

/// File text: UTF-8 (a byte-order mark is dropped, as spreadsheet programs write one), or
/// GBK / GB 18030 as Chinese Windows tools export it.
fn decode_text(bytes: &[u8]) -> Option<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Some(text.to_owned());
    }
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
    (!had_errors).then(|| text.into_owned())
}

/// Parses JSON lines (blank lines are skipped). With `kind` given, lines without a `kind`
/// field are read as that kind.
pub fn read_json_lines(
    source: &str,
    text: &str,
    kind: Option<RecordKind>,
    progress: &mut dyn FnMut(Progress),
) -> Parsed {
    let total = text.len() as u64;
    let mut done = 0u64;
    let mut records = Vec::new();
    let mut rejected = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        done += line.len() as u64 + 1;
        if i % 1000 == 0 {
            progress(Progress::Reading(done.min(total), total));
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let origin = Origin {
            source: source.to_owned(),
            line: i as u64 + 1,
        };
        let value: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                rejected.push(Rejection {
                    origin,
                    kind: None,
                    key: None,
                    field: "-".into(),
                    reason: format!("not JSON: {e}"),
                });
                continue;
            }
        };
        let (k, key) = peek(&value, kind);
        let parsed = match (value, kind) {
            (Value::Object(mut obj), Some(default)) if !obj.contains_key("kind") => {
                obj.insert("kind".into(), Value::from(default.name()));
                Record::from_json(Value::Object(obj))
            }
            (v, _) => Record::from_json(v),
        };
        match parsed {
            Ok(r) => records.push((origin, r)),
            Err(errors) => rejected.extend(errors.into_iter().map(|e| Rejection {
                origin: origin.clone(),
                kind: k,
                key: key.clone(),
                field: e.field,
                reason: e.reason,
            })),
        }
    }
    progress(Progress::Reading(total, total));
    (records, rejected)
}

/// Kind and key of a raw record, for rejection messages.
fn peek(value: &Value, default: Option<RecordKind>) -> (Option<RecordKind>, Option<String>) {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .and_then(RecordKind::parse)
        .or(default);
    let key = kind
        .and_then(|k| value.get(k.key_field()))
        .and_then(Value::as_str)
        .map(str::to_owned);
    (kind, key)
}

/// Parses a CSV file of one kind (see the module documentation).
pub fn read_csv(
    source: &str,
    text: &str,
    kind: Option<RecordKind>,
    progress: &mut dyn FnMut(Progress),
) -> Parsed {
    let total = text.len() as u64;
    let mut records = Vec::new();
    let mut rejected = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(text.as_bytes());
    let reject =
        |line: u64, kind: Option<RecordKind>, key: Option<String>, field: &str, reason: String| {
            Rejection {
                origin: Origin {
                    source: source.to_owned(),
                    line,
                },
                kind,
                key,
                field: field.to_owned(),
                reason,
            }
        };
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_lowercase()).collect(),
        Err(e) => {
            rejected.push(reject(
                1,
                kind,
                None,
                "-",
                format!("cannot read the CSV header: {e}"),
            ));
            return (records, rejected);
        }
    };
    let kind_col = headers.iter().position(|h| h == "kind");
    let file_kind = kind.or_else(|| {
        if kind_col.is_some() {
            None
        } else {
            detect_kind(&headers)
        }
    });
    if file_kind.is_none() && kind_col.is_none() {
        rejected.push(reject(
            1,
            None,
            None,
            "-",
            format!(
                "cannot tell the kind of record from the header ({}); give it with --kind ({})",
                headers.join(","),
                RecordKind::names()
            ),
        ));
        return (records, rejected);
    }
    for (n, row) in reader.records().enumerate() {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                rejected.push(reject(
                    line,
                    file_kind,
                    None,
                    "-",
                    format!("bad CSV row: {e}"),
                ));
                continue;
            }
        };
        let line = row.position().map_or(n as u64 + 2, |p| p.line());
        if n % 1000 == 0 {
            let at = row.position().map_or(0, |p| p.byte());
            progress(Progress::Reading(at.min(total), total));
        }
        if row.iter().all(str::is_empty) {
            continue;
        }
        let row_kind = match (kind_col.and_then(|i| row.get(i)), file_kind) {
            (Some(k), _) if !k.is_empty() => match RecordKind::parse(k) {
                Some(k) => k,
                None => {
                    rejected.push(reject(
                        line,
                        None,
                        None,
                        "kind",
                        format!("unknown kind {k:?}; one of {}", RecordKind::names()),
                    ));
                    continue;
                }
            },
            (_, Some(k)) => k,
            (_, None) => {
                rejected.push(reject(line, None, None, "kind", "missing".into()));
                continue;
            }
        };
        let mut obj = Map::new();
        for (i, cell) in row.iter().enumerate() {
            let Some(field) = headers.get(i) else {
                continue;
            };
            if Some(i) == kind_col || cell.is_empty() {
                continue;
            }
            obj.insert(field.clone(), csv_cell(row_kind, field, cell));
        }
        let key = obj
            .get(row_kind.key_field())
            .and_then(Value::as_str)
            .map(str::to_owned);
        match Record::from_fields(row_kind, obj) {
            Ok(r) => records.push((
                Origin {
                    source: source.to_owned(),
                    line,
                },
                r,
            )),
            Err(errors) => {
                for e in errors {
                    rejected.push(reject(
                        line,
                        Some(row_kind),
                        key.clone(),
                        &e.field,
                        e.reason,
                    ));
                }
            }
        }
    }
    progress(Progress::Reading(total, total));
    (records, rejected)
}

/// The one kind whose fields hold every column and whose required fields are all columns.
pub fn detect_kind(headers: &[String]) -> Option<RecordKind> {
    let fits: Vec<RecordKind> = RecordKind::ALL
        .into_iter()
        .filter(|k| {
            let t = template_of(*k);
            headers.iter().all(|h| t.contains_key(h))
                && k.required().iter().all(|r| headers.iter().any(|h| h == r))
        })
        .collect();
    match fits.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// A CSV cell as the JSON value its field takes.
fn csv_cell(kind: RecordKind, field: &str, cell: &str) -> Value {
    let template = template_of(kind);
    let text = Value::String(cell.to_owned());
    match template.get(field) {
        Some(Value::Bool(_)) => match cell.to_lowercase().as_str() {
            "true" | "yes" | "y" | "1" => Value::Bool(true),
            "false" | "no" | "n" | "0" => Value::Bool(false),
            _ => text,
        },
        Some(Value::Number(_)) => number(cell).unwrap_or(text),
        Some(Value::Array(_)) => Value::Array(
            cell.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        Some(Value::Null) => {
            // An optional field: a number if the field takes one, else text.
            if let Some(n) = number(cell) {
                let mut probe = template.clone();
                probe.insert(field.to_owned(), n.clone());
                if deserialize(kind, probe).is_ok() {
                    return n;
                }
            }
            text
        }
        _ => text,
    }
}

fn number(cell: &str) -> Option<Value> {
    if let Ok(i) = cell.parse::<i64>() {
        return Some(Value::from(i));
    }
    cell.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
}

// ---------------------------------------------------------------------------------------------
// Validation and application.

/// A record after its own checks, normalised as the store keeps it.
struct Checked {
    origin: Origin,
    record: Record,
}

struct Validator {
    rejected: Vec<Rejection>,
}

impl Validator {
    fn reject(
        &mut self,
        origin: &Origin,
        r: &Record,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.rejected.push(Rejection {
            origin: origin.clone(),
            kind: Some(r.kind()),
            key: Some(r.key()),
            field: field.into(),
            reason: reason.into(),
        });
    }
}

/// Why an identifier is refused: a container number, plate, card UID, e-plate EPC or driver.
/// The same rules hold wherever one comes from (a platform record, a control order, a reading
/// an operator keys in), so they are written once, here, beside the registrations they must
/// match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// Not an ISO 6346 container number (a wrong check digit says the digit expected).
    #[error(transparent)]
    Container(#[from] iso6346::ContainerError),
    /// Not a mainland plate.
    #[error(transparent)]
    Plate(#[from] plate::PlateError),
    /// Not a card UID (the text after normalisation).
    #[error("{0:?} is not a card UID: 8 to 32 hexadecimal digits, an even number")]
    CardUid(String),
    /// Not an EPC (the text after normalisation).
    #[error("{0:?} is not an EPC: 8 to 64 hexadecimal digits, an even number")]
    Epc(String),
    /// An empty driver id.
    #[error("the driver id or card UID is empty")]
    EmptyDriver,
}

/// A container number, normalised (`csqu 305438-3` → `CSQU3054383`), if its ISO 6346 check
/// digit holds.
pub fn container_number(text: &str) -> Result<String, IdentifierError> {
    Ok(iso6346::validate(text)?.to_string())
}

/// A mainland plate, parsed and normalised.
pub fn mainland_plate(text: &str) -> Result<plate::Plate, IdentifierError> {
    Ok(plate::parse(text)?)
}

/// An IC card UID as registrations hold it: upper-case hex without separators.
pub fn card_uid(text: &str) -> Result<String, IdentifierError> {
    let uid = hex_key(text);
    if hex_ok(&uid, 8, 32) {
        Ok(uid)
    } else {
        Err(IdentifierError::CardUid(uid))
    }
}

/// An e-plate tag EPC as registrations hold it: upper-case hex without separators.
pub fn epc(text: &str) -> Result<String, IdentifierError> {
    let tag = hex_key(text);
    if hex_ok(&tag, 8, 64) {
        Ok(tag)
    } else {
        Err(IdentifierError::Epc(tag))
    }
}

/// A driver as a control order names one: a card UID (normalised as registrations hold it,
/// so `62:e3:08:6c:ed` matches the card read) or a driver id (upper case, as the order index
/// keys it).
pub fn driver_subject(text: &str) -> Result<String, IdentifierError> {
    if let Ok(uid) = card_uid(text) {
        return Ok(uid);
    }
    let id = text.trim().to_uppercase();
    if id.is_empty() {
        return Err(IdentifierError::EmptyDriver);
    }
    Ok(id)
}

/// A control order's subject, checked and normalised as its kind requires: an ISO 6346
/// container number, a mainland plate, a driver id or card UID.
pub fn control_subject(kind: SubjectKind, text: &str) -> Result<String, IdentifierError> {
    match kind {
        SubjectKind::Container => container_number(text.trim()),
        SubjectKind::Vehicle => mainland_plate(text.trim()).map(|p| p.text),
        SubjectKind::Driver => driver_subject(text),
    }
}

fn hex_ok(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.len().is_multiple_of(2)
        && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn foreign_ok(s: &str) -> bool {
    (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn parameter_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        })
}

/// Checks one record on its own and normalises it. Returns the problems as (field, reason).
fn check_fields(record: &mut Record) -> Vec<(String, String)> {
    let mut bad: Vec<(String, String)> = Vec::new();
    let mut e = |f: &str, r: String| bad.push((f.to_owned(), r));
    match record {
        Record::Vehicle(v) => {
            match mainland_plate(&v.plate) {
                Ok(p) => {
                    if p.is_two_plate() && !v.two_plate {
                        e(
                            "two_plate",
                            format!(
                                "{} is a Guangdong–HK/Macau two-plate vehicle's plate: set two_plate",
                                p.text
                            ),
                        );
                    }
                    if v.two_plate && !p.is_two_plate() {
                        e(
                            "two_plate",
                            format!("set, but {} is not a 粤Z…港/澳 plate", p.text),
                        );
                    }
                    v.plate = p.text;
                }
                Err(err) => e("plate", err.to_string()),
            }
            v.enterprise = v.enterprise.trim().to_owned();
            v.tag_epc = v.tag_epc.as_deref().map(hex_key).filter(|t| !t.is_empty());
            if let Some(t) = &v.tag_epc
                && let Err(err) = epc(t)
            {
                e("tag_epc", err.to_string());
            }
            if let Some(t) = v.tare_kg
                && !(t.is_finite() && t > 0.0 && t <= 100_000.0)
            {
                e(
                    "tare_kg",
                    format!("{t} kg is not a vehicle tare (0 to 100 000 kg)"),
                );
            }
            v.foreign_plate = v
                .foreign_plate
                .as_deref()
                .map(foreign_plate_key)
                .filter(|t| !t.is_empty());
            match (&v.foreign_plate, v.two_plate) {
                (None, true) => e(
                    "foreign_plate",
                    "a two-plate vehicle needs its Hong Kong or Macau plate".into(),
                ),
                (Some(f), true) if !foreign_ok(f) => {
                    e(
                        "foreign_plate",
                        format!(
                            "{f:?} is not a Hong Kong or Macau plate (1 to 8 letters and digits)"
                        ),
                    );
                }
                (Some(_), false) => e(
                    "foreign_plate",
                    "only two-plate vehicles carry a foreign plate".into(),
                ),
                _ => {}
            }
            v.customs_code = v
                .customs_code
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned);
        }
        Record::Driver(d) => {
            d.id = d.id.trim().to_owned();
            d.name = d.name.trim().to_owned();
            d.enterprise = d.enterprise.trim().to_owned();
            match card_uid(&d.card_uid) {
                Ok(uid) => d.card_uid = uid,
                Err(err) => {
                    d.card_uid = hex_key(&d.card_uid);
                    e("card_uid", err.to_string());
                }
            }
            for (i, p) in d.vehicles.iter_mut().enumerate() {
                match mainland_plate(p) {
                    Ok(parsed) => *p = parsed.text,
                    Err(err) => e(&format!("vehicles[{i}]"), err.to_string()),
                }
            }
        }
        Record::Enterprise(x) => {
            x.code = x.code.trim().to_owned();
            x.name = x.name.trim().to_owned();
        }
        Record::Station(s) => {
            s.code = s.code.trim().to_owned();
            s.name = s.name.trim().to_owned();
            s.office = s.office.trim().to_owned();
        }
        Record::Document(d) => {
            d.number = d.number.trim().to_owned();
            d.station = d.station.trim().to_owned();
            for (i, c) in d.containers.iter_mut().enumerate() {
                match container_number(c) {
                    Ok(n) => *c = n,
                    Err(err) => e(&format!("containers[{i}]"), format!("{c:?}: {err}")),
                }
            }
            let mut seen = d.containers.clone();
            seen.sort();
            seen.dedup();
            if seen.len() != d.containers.len() {
                e("containers", "a container is listed twice".into());
            }
            d.plate = d
                .plate
                .as_deref()
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned);
            if let Some(p) = &mut d.plate {
                match mainland_plate(p) {
                    Ok(parsed) => *p = parsed.text,
                    Err(err) => e("plate", err.to_string()),
                }
            }
            if d.containers.is_empty() && d.plate.is_none() {
                e(
                    "containers",
                    "the document covers no container and names no vehicle".into(),
                );
            }
            if let Some(kg) = d.declared_kg
                && !(kg.is_finite() && kg >= 0.0)
            {
                e("declared_kg", format!("{kg} is not a weight"));
            }
            if let (Some(r), Some(dl)) = (d.released_ms, d.deadline_ms)
                && dl < r
            {
                e(
                    "deadline_ms",
                    format!("{dl} is before the release time {r}"),
                );
            }
        }
        Record::ControlOrder(o) => {
            o.order.id = o.order.id.trim().to_owned();
            o.order.reason = o.order.reason.trim().to_owned();
            let s = o.order.subject.trim().to_owned();
            match control_subject(o.order.subject_kind, &s) {
                Ok(subject) => o.order.subject = subject,
                Err(err @ IdentifierError::Container(_)) => {
                    e("subject", format!("{s:?}: {err}"));
                }
                Err(err) => e("subject", err.to_string()),
            }
            if o.order.action == Outcome::Release {
                e(
                    "action",
                    "a control order demands manual, inspect or refuse, not release".into(),
                );
            }
        }
        Record::Parameter(p) => {
            p.name = p.name.trim().to_owned();
            if !parameter_name_ok(&p.name) {
                e(
                    "name",
                    format!("{:?}: lower-case letters, digits, `.`, `-`, `_`", p.name),
                );
            }
        }
    }
    bad
}

/// Where a key is already taken, in the batch or in the store.
#[derive(Default)]
struct Batch {
    first: HashMap<(RecordKind, String), usize>,
    enterprises: HashMap<String, usize>,
    stations: HashMap<String, usize>,
    vehicles: HashMap<String, usize>,
    tags: HashMap<String, String>,
    foreign: HashMap<String, String>,
    cards: HashMap<String, String>,
}

/// Platform records checked on their own (fields, and parameter values against the
/// catalogue when the options give one), ready to be checked against the store and applied
/// in a transaction ([`PlatformBatch::apply`]). The checks that need no store run once, here,
/// off the transaction: a store writer job then only does what must see the store.
pub struct PlatformBatch {
    checked: Vec<Checked>,
    rejected: Vec<Rejection>,
    records: u64,
    options: ApplyOptions,
}

impl PlatformBatch {
    /// `records` as a platform feed gives them: each record's origin is its position in the
    /// list, under `options.source`.
    pub fn new(records: &[Record], options: &ApplyOptions) -> Self {
        let located = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    Origin {
                        source: options.source.clone(),
                        line: i as u64 + 1,
                    },
                    r.clone(),
                )
            })
            .collect();
        Self::located(located, Vec::new(), options, &mut |_| {})
    }

    /// `records` with where each came from, and `rejected`, the lines already refused while
    /// reading them.
    pub fn located(
        records: Vec<(Origin, Record)>,
        rejected: Vec<Rejection>,
        options: &ApplyOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Self {
        let total = records.len() as u64;
        let unreadable: std::collections::HashSet<(&str, u64)> = rejected
            .iter()
            .map(|r| (r.origin.source.as_str(), r.origin.line))
            .collect();
        let count = total + unreadable.len() as u64;
        let mut v = Validator { rejected };
        let mut checked = Vec::with_capacity(records.len());
        for (i, (origin, mut record)) in records.into_iter().enumerate() {
            if i % 1000 == 0 {
                progress(Progress::Validating(i as u64, total));
            }
            let bad = check_fields(&mut record);
            let clean = bad.is_empty();
            for (field, reason) in bad {
                v.reject(&origin, &record, field, reason);
            }
            if let (true, Some(catalog), Record::Parameter(p)) =
                (clean, &options.catalog, &mut record)
            {
                match catalog.validate(&p.name, &p.value) {
                    Ok(n) => p.value = n.value,
                    Err(e) => v.reject(&origin, &record, e.field(), e.to_string()),
                }
            }
            checked.push(Checked { origin, record });
        }
        PlatformBatch {
            checked,
            rejected: v.rejected,
            records: count,
            options: options.clone(),
        }
    }

    /// Checks the records against each other and against the store as `tx` sees it, and
    /// writes them all with one audit entry, or nothing when any is refused (the report then
    /// lists why; the transaction is left unchanged, so committing it is harmless). With
    /// `dry_run` in the options nothing is written either way.
    ///
    /// Depends only on the batch and the store's contents, so a store writer job may run it
    /// again on a fresh transaction.
    pub fn apply(&self, tx: &mut WriteTx) -> Result<ImportReport, StoreError> {
        if self.options.dry_run {
            self.process(&mut DryRun(tx.read()), &mut |_| {})
        } else {
            self.process(tx, &mut |_| {})
        }
    }

    fn process<T: Target>(
        &self,
        target: &mut T,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImportReport, StoreError> {
        let report = ImportReport {
            records: self.records,
            ..Default::default()
        };
        let v = Validator {
            rejected: self.rejected.clone(),
        };
        process(target, &self.checked, v, report, &self.options, progress)
    }
}

impl Store {
    /// Validates platform records and applies them all in one transaction, or none when any
    /// is refused. Each record's origin is its position in `records` (source `platform`).
    /// The daemon's platform feed uses [`PlatformBatch`] through its store writer instead.
    pub fn apply_platform_records(
        &self,
        records: &[Record],
        options: &ApplyOptions,
    ) -> Result<ImportReport, StoreError> {
        self.apply_batch(&PlatformBatch::new(records, options), &mut |_| {})
    }

    /// Reads, validates and applies a file (JSON lines or CSV): `kakou data import`.
    pub fn import_file(
        &self,
        path: &Path,
        kind: Option<RecordKind>,
        options: &ApplyOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImportReport, StoreError> {
        let (records, rejected) = read_file(path, kind, progress)?;
        let mut options = options.clone();
        options.source = path.display().to_string();
        self.apply_located(records, rejected, &options, progress)
    }

    /// Validates `records` (with `rejected` already found while reading them) and applies them
    /// all in one transaction, or none when anything is rejected.
    pub fn apply_located(
        &self,
        records: Vec<(Origin, Record)>,
        rejected: Vec<Rejection>,
        options: &ApplyOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImportReport, StoreError> {
        let batch = PlatformBatch::located(records, rejected, options, progress);
        self.apply_batch(&batch, progress)
    }

    /// A dry run reads a snapshot (a store opened read-only can be checked); the rest writes
    /// in a transaction of its own.
    fn apply_batch(
        &self,
        batch: &PlatformBatch,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImportReport, StoreError> {
        if batch.options.dry_run {
            let snapshot = self.snapshot()?;
            batch.process(&mut DryRun(snapshot.view()), progress)
        } else {
            // A rejected batch makes no change in the transaction: committing it is harmless.
            self.write(|tx| batch.process(tx, progress))
        }
    }
}

/// Where validated records go: a write transaction, or nowhere (a dry run on a snapshot).
trait Target {
    fn reader(&self) -> Reader<'_>;
    fn put(&mut self, record: &Record, options: &ApplyOptions) -> Result<(), StoreError>;
    fn log(&mut self, entry: AuditEntry) -> Result<(), StoreError>;
}

impl Target for WriteTx {
    fn reader(&self) -> Reader<'_> {
        self.read()
    }
    fn put(&mut self, record: &Record, options: &ApplyOptions) -> Result<(), StoreError> {
        write_one(self, record, options)
    }
    fn log(&mut self, entry: AuditEntry) -> Result<(), StoreError> {
        self.audit(entry).map(|_| ())
    }
}

/// Reads through a snapshot or a transaction, writes nothing.
struct DryRun<'t>(Reader<'t>);

impl Target for DryRun<'_> {
    fn reader(&self) -> Reader<'_> {
        self.0.view()
    }
    fn put(&mut self, _: &Record, _: &ApplyOptions) -> Result<(), StoreError> {
        Ok(())
    }
    fn log(&mut self, _: AuditEntry) -> Result<(), StoreError> {
        Ok(())
    }
}

fn process<T: Target>(
    target: &mut T,
    checked: &[Checked],
    mut v: Validator,
    mut report: ImportReport,
    options: &ApplyOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportReport, StoreError> {
    let total = checked.len() as u64;
    cross_check(&target.reader(), checked, &mut v)?;
    progress(Progress::Validating(total, total));
    if !v.rejected.is_empty() {
        v.rejected.sort_by(|a, b| {
            (a.origin.source.as_str(), a.origin.line)
                .cmp(&(b.origin.source.as_str(), b.origin.line))
        });
        report.rejected = v.rejected;
        return Ok(report);
    }
    let mut seen = std::collections::HashSet::new();
    for (i, c) in checked.iter().enumerate() {
        if i % 1000 == 0 {
            progress(Progress::Applying(i as u64, total));
        }
        let counts = report.by_kind.entry(c.record.kind()).or_default();
        // A record repeated in the batch (identical, or it was rejected) counts once.
        if !seen.insert((c.record.kind(), c.record.key())) {
            counts.unchanged += 1;
            continue;
        }
        let change = classify(&target.reader(), &c.record)?;
        match change {
            Change::Inserted => counts.inserted += 1,
            Change::Updated => counts.updated += 1,
            Change::Unchanged => counts.unchanged += 1,
        }
        if !matches!(change, Change::Unchanged) {
            target.put(&c.record, options)?;
        }
    }
    progress(Progress::Applying(total, total));
    report.applied = !options.dry_run;
    if report.changed() > 0 {
        let t = report.totals();
        let by_kind: Map<String, Value> = report
            .by_kind
            .iter()
            .map(|(k, c)| {
                (
                    k.name().to_owned(),
                    serde_json::json!({"inserted": c.inserted, "updated": c.updated, "unchanged": c.unchanged}),
                )
            })
            .collect();
        target.log(AuditEntry {
            who: options.who.clone(),
            when_ms: options.at_ms,
            action: "data.import".into(),
            subject: options.source.clone(),
            before: None,
            after: Some(serde_json::json!({
                "inserted": t.inserted, "updated": t.updated, "unchanged": t.unchanged,
                "by_kind": by_kind,
            })),
        })?;
    }
    Ok(report)
}

/// Checks records against each other and against the store.
fn cross_check(
    read: &Reader<'_>,
    checked: &[Checked],
    v: &mut Validator,
) -> Result<(), StoreError> {
    let mut b = Batch::default();
    // Duplicates, and what the batch itself registers.
    for (i, c) in checked.iter().enumerate() {
        let key = (c.record.kind(), c.record.key());
        if let Some(&j) = b.first.get(&key) {
            if checked[j].record != c.record {
                let first = checked[j].origin.clone();
                v.reject(
                    &c.origin,
                    &c.record,
                    c.record.kind().key_field(),
                    format!(
                        "conflicts with {first}: same {}, different content",
                        c.record.kind().key_field()
                    ),
                );
            }
            continue;
        }
        b.first.insert(key, i);
        match &c.record {
            Record::Enterprise(e) => {
                b.enterprises.insert(e.code.clone(), i);
            }
            Record::Station(s) => {
                b.stations.insert(s.code.clone(), i);
            }
            Record::Vehicle(x) => {
                b.vehicles.insert(x.plate.clone(), i);
                for (map, val, field) in [
                    (&mut b.tags, &x.tag_epc, "tag_epc"),
                    (&mut b.foreign, &x.foreign_plate, "foreign_plate"),
                ] {
                    if let Some(t) = val
                        && let Some(other) = map.insert(t.clone(), x.plate.clone())
                    {
                        v.reject(
                            &c.origin,
                            &c.record,
                            field,
                            format!("{t} is also given to vehicle {other} in this batch"),
                        );
                    }
                }
            }
            Record::Driver(d) => {
                if let Some(other) = b.cards.insert(d.card_uid.clone(), d.id.clone()) {
                    v.reject(
                        &c.origin,
                        &c.record,
                        "card_uid",
                        format!(
                            "card {} is also given to driver {other} in this batch",
                            d.card_uid
                        ),
                    );
                }
            }
            _ => {}
        }
    }
    let enterprise_known = |code: &str, b: &Batch| -> Result<bool, StoreError> {
        Ok(b.enterprises.contains_key(code) || read.enterprise(code)?.is_some())
    };
    for c in checked {
        match &c.record {
            Record::Vehicle(x) => {
                if !enterprise_known(&x.enterprise, &b)? {
                    v.reject(
                        &c.origin,
                        &c.record,
                        "enterprise",
                        format!(
                            "enterprise {} is not registered (not in this batch, not in the store)",
                            x.enterprise
                        ),
                    );
                }
                if let Some(t) = &x.tag_epc
                    && let Some(owner) = read.index_str(super::schema::V_BY_TAG, t)?
                    && owner != x.plate
                    && still_holds(&b, checked, &owner, |o| o.tag_epc.as_ref() == Some(t))
                {
                    v.reject(
                        &c.origin,
                        &c.record,
                        "tag_epc",
                        format!("tag {t} is bound to vehicle {owner}"),
                    );
                }
                if let Some(f) = &x.foreign_plate
                    && let Some(owner) = read.index_str(super::schema::V_BY_FOREIGN, f)?
                    && owner != x.plate
                    && still_holds(&b, checked, &owner, |o| o.foreign_plate.as_ref() == Some(f))
                {
                    v.reject(
                        &c.origin,
                        &c.record,
                        "foreign_plate",
                        format!("{f} is the foreign plate of vehicle {owner}"),
                    );
                }
            }
            Record::Driver(d) => {
                if !enterprise_known(&d.enterprise, &b)? {
                    v.reject(
                        &c.origin,
                        &c.record,
                        "enterprise",
                        format!(
                            "enterprise {} is not registered (not in this batch, not in the store)",
                            d.enterprise
                        ),
                    );
                }
                for (i, p) in d.vehicles.iter().enumerate() {
                    if !b.vehicles.contains_key(p) && read.vehicle(p)?.is_none() {
                        v.reject(
                            &c.origin,
                            &c.record,
                            format!("vehicles[{i}]"),
                            format!("vehicle {p} is not registered"),
                        );
                    }
                }
                if let Some(owner) = read.index_str(super::schema::D_BY_CARD, &d.card_uid)?
                    && owner != d.id
                {
                    let moved = b.first.get(&(RecordKind::Driver, owner.clone())).is_some_and(|&j| {
                        matches!(&checked[j].record, Record::Driver(o) if o.card_uid != d.card_uid)
                    });
                    if !moved {
                        v.reject(
                            &c.origin,
                            &c.record,
                            "card_uid",
                            format!("card {} is bound to driver {owner}", d.card_uid),
                        );
                    }
                }
            }
            Record::Document(d)
                if !b.stations.contains_key(&d.station) && read.station(&d.station)?.is_none() =>
            {
                v.reject(
                    &c.origin,
                    &c.record,
                    "station",
                    format!(
                        "station {} is not registered (not in this batch, not in the store)",
                        d.station
                    ),
                );
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether stored vehicle `owner` still holds something after the batch: it does unless the
/// batch re-registers it without it.
fn still_holds(
    b: &Batch,
    checked: &[Checked],
    owner: &str,
    holds: impl Fn(&Vehicle) -> bool,
) -> bool {
    match b.vehicles.get(owner) {
        Some(&j) => matches!(&checked[j].record, Record::Vehicle(o) if holds(o)),
        None => true,
    }
}

enum Change {
    Inserted,
    Updated,
    Unchanged,
}

fn classify(read: &Reader<'_>, record: &Record) -> Result<Change, StoreError> {
    fn change<T: PartialEq>(old: Option<T>, new: &T) -> Change {
        match old {
            None => Change::Inserted,
            Some(o) if o == *new => Change::Unchanged,
            Some(_) => Change::Updated,
        }
    }
    Ok(match record {
        Record::Vehicle(x) => change(read.vehicle(&x.plate)?, x),
        Record::Driver(d) => change(read.driver(&d.id)?, d),
        Record::Enterprise(e) => change(read.enterprise(&e.code)?, e),
        Record::Station(s) => change(read.station(&s.code)?, s),
        Record::Document(d) => change(read.document(&d.number)?, d),
        Record::ControlOrder(o) => change(
            read.control_order(&o.order.id)?.map(|old| PlatformOrder {
                order: old.order,
                revoked_ms: old.revoked_ms,
            }),
            o,
        ),
        Record::Parameter(p) => change(
            read.parameter(&p.name)?.map(|old| PlatformParameter {
                name: old.name,
                value: old.value,
            }),
            p,
        ),
    })
}

fn write_one(tx: &mut WriteTx, record: &Record, options: &ApplyOptions) -> Result<(), StoreError> {
    match record {
        Record::Vehicle(x) => tx.put_vehicle(x),
        Record::Driver(d) => tx.put_driver(d),
        Record::Enterprise(e) => tx.put_enterprise(e),
        Record::Station(s) => tx.put_station(s),
        Record::Document(d) => tx.put_document(d),
        Record::ControlOrder(o) => {
            let old = tx.read().control_order(&o.order.id)?;
            let rec = ControlOrderRecord {
                order: o.order.clone(),
                issued_ms: old.as_ref().map_or(options.at_ms, |x| x.issued_ms),
                issued_by: old
                    .as_ref()
                    .map_or_else(|| options.who.clone(), |x| x.issued_by.clone()),
                revoked_ms: o.revoked_ms,
                revoked_by: o.revoked_ms.map(|_| {
                    old.as_ref()
                        .and_then(|x| x.revoked_by.clone())
                        .unwrap_or_else(|| options.who.clone())
                }),
            };
            tx.put_control_order(&rec)
        }
        Record::Parameter(p) => tx
            .set_parameter(&p.name, &p.value, &options.who, options.at_ms)
            .map(|_| ()),
    }
}

#[cfg(test)]
#[path = "platform_tests.rs"]
mod tests;
