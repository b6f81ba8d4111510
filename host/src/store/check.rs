//! Integrity check: every record decodes and sits under its own key, every index entry names a
//! record that owns it, every record is indexed, counters match the records they count, the
//! audit log has no gaps.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use kakou_plugin_sdk::model::{Document, TruckDriver, Vehicle};
use kakou_plugin_sdk::proto::plate;
use serde::de::DeserializeOwned;

use super::StoreError;
use super::read::{Reader, foreign_plate_key, hex_key};
use super::records::{
    AlarmRecord, AuditEntry, ControlOrderRecord, OutboxMessage, ParameterVersion, PassageRecord,
    subject_key, subject_kind_name,
};
use super::schema::*;
use crate::config::Equipment;

/// Problems listed in a report (all are counted).
const MAX_LISTED: usize = 200;

/// One thing wrong in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The table.
    pub table: &'static str,
    /// The key, as text.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [{}]: {}", self.table, self.key, self.message)
    }
}

/// What `kakou store check` found.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The file.
    pub path: PathBuf,
    /// Its schema version.
    pub schema_version: Option<u64>,
    /// Entries per table.
    pub counts: Vec<(&'static str, u64)>,
    /// The first problems found.
    pub problems: Vec<Problem>,
    /// All problems found.
    pub problem_count: u64,
    /// redb's page checksums: verified (true), damaged and repaired (false), not run (none:
    /// another process holds the file).
    pub pages_verified: Option<bool>,
    /// Remarks that are not problems.
    pub notes: Vec<String>,
}

impl CheckReport {
    /// No problem found.
    pub fn is_clean(&self) -> bool {
        self.problem_count == 0 && self.pages_verified != Some(false)
    }
}

struct Checker<'r, 't> {
    r: &'r Reader<'t>,
    problems: Vec<Problem>,
    count: u64,
}

impl Checker<'_, '_> {
    fn problem(&mut self, table: &'static str, key: impl Into<String>, message: impl Into<String>) {
        self.count += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(Problem {
                table,
                key: key.into(),
                message: message.into(),
            });
        }
    }

    /// Every record of a string-keyed table; undecodable ones are reported and skipped.
    fn records<T: DeserializeOwned>(
        &mut self,
        def: redb::TableDefinition<'static, &'static str, &'static [u8]>,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let name = super::read::table_name(&def);
        let t = self.r.table(def)?;
        let mut out = Vec::new();
        let mut bad = Vec::new();
        if let Some(range) = t.iter().map_err(self.r.err(name))? {
            for item in range {
                let (k, v) = item.map_err(self.r.err(name))?;
                match decode::<T>(name, v.value()) {
                    Ok(rec) => out.push((k.value().to_owned(), rec)),
                    Err(e) => bad.push((k.value().to_owned(), e)),
                }
            }
        }
        for (k, e) in bad {
            self.problem(name, k, format!("cannot decode: {e}"));
        }
        Ok(out)
    }

    fn str_index(
        &mut self,
        def: redb::TableDefinition<'static, &'static str, &'static str>,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let name = super::read::table_name(&def);
        let t = self.r.table(def)?;
        let mut out = BTreeMap::new();
        if let Some(range) = t.iter().map_err(self.r.err(name))? {
            for item in range {
                let (k, v) = item.map_err(self.r.err(name))?;
                out.insert(k.value().to_owned(), v.value().to_owned());
            }
        }
        Ok(out)
    }

    fn multi_index(
        &mut self,
        def: redb::MultimapTableDefinition<'static, &'static str, &'static str>,
    ) -> Result<HashSet<(String, String)>, StoreError> {
        let name = super::read::multimap_name(&def);
        let t = self.r.multimap(def)?;
        let mut out = HashSet::new();
        if let Some(range) = t.iter().map_err(self.r.err(name))? {
            for item in range {
                let (k, values) = item.map_err(self.r.err(name))?;
                for v in values {
                    let v = v.map_err(self.r.err(name))?;
                    out.insert((k.value().to_owned(), v.value().to_owned()));
                }
            }
        }
        Ok(out)
    }

    /// A unique index (`entry → owner`) against what the records say it should hold.
    fn compare_unique(
        &mut self,
        table: &'static str,
        expected: BTreeMap<String, String>,
        actual: BTreeMap<String, String>,
        what: &str,
    ) {
        for (k, owner) in &expected {
            match actual.get(k) {
                None => self.problem(table, k, format!("missing: {what} {owner} is not indexed")),
                Some(o) if o != owner => self.problem(
                    table,
                    k,
                    format!("names {what} {o}, but {what} {owner} holds it"),
                ),
                Some(_) => {}
            }
        }
        for (k, owner) in &actual {
            if !expected.contains_key(k) {
                self.problem(
                    table,
                    k,
                    format!("stale: names {what} {owner}, which does not hold it"),
                );
            }
        }
    }

    fn compare_multi(
        &mut self,
        table: &'static str,
        expected: HashSet<(String, String)>,
        actual: HashSet<(String, String)>,
    ) {
        let mut missing: Vec<_> = expected.difference(&actual).collect();
        missing.sort();
        for (k, v) in missing {
            self.problem(table, k, format!("missing entry for {v}"));
        }
        let mut stale: Vec<_> = actual.difference(&expected).collect();
        stale.sort();
        for (k, v) in stale {
            self.problem(table, k, format!("stale entry: {v} does not hold it"));
        }
    }

    fn passages(&mut self) -> Result<(), StoreError> {
        let r = self.r;
        let passages = r.table(PASSAGES)?;
        let by_container = r.table(P_BY_CONTAINER)?;
        let by_plate = r.table(P_BY_PLATE)?;
        let by_station = r.table(P_BY_STATION)?;
        let by_lane = r.table(P_BY_LANE)?;
        let by_doc = r.table(P_BY_DOCUMENT)?;
        let mut expected = [0u64; 5];
        let mut balances: BTreeMap<String, i64> = BTreeMap::new();
        let mut found = Vec::new();
        if let Some(range) = passages.iter().map_err(r.err("passages"))? {
            for item in range {
                let (k, v) = item.map_err(r.err("passages"))?;
                let id = k.value();
                let rec: PassageRecord = match decode("passages", v.value()) {
                    Ok(rec) => rec,
                    Err(e) => {
                        found.push(("passages", id.to_owned(), format!("cannot decode: {e}")));
                        continue;
                    }
                };
                if rec.id() != id {
                    found.push((
                        "passages",
                        id.to_owned(),
                        format!("record says its id is {:?}", rec.id()),
                    ));
                }
                let keys = rec.keys();
                let t = keys.time;
                let mut need = |table: &'static str,
                                tbl: &super::read::Tbl<'_, _, ()>,
                                vals: &[String],
                                slot: usize|
                 -> Result<(), StoreError> {
                    for val in vals {
                        expected[slot] += 1;
                        if tbl
                            .get((val.as_str(), t, id))
                            .map_err(r.err(table))?
                            .is_none()
                        {
                            found.push((
                                table,
                                val.clone(),
                                format!("passage {id} is not indexed"),
                            ));
                        }
                    }
                    Ok(())
                };
                need("passages_by_container", &by_container, &keys.containers, 0)?;
                need("passages_by_plate", &by_plate, &keys.plates, 1)?;
                need(
                    "passages_by_station",
                    &by_station,
                    keys.station.as_slice(),
                    2,
                )?;
                need(
                    "passages_by_lane_time",
                    &by_lane,
                    std::slice::from_ref(&keys.lane),
                    3,
                )?;
                for (kind, number) in &keys.documents {
                    expected[4] += 1;
                    let hit = by_doc
                        .get((kind.as_str(), number.as_str(), t, id))
                        .map_err(r.err("passages_by_document"))?;
                    if hit.is_none() {
                        found.push((
                            "passages_by_document",
                            format!("{kind}/{number}"),
                            format!("passage {id} is not indexed"),
                        ));
                    }
                }
                if let Some((plate, d)) = keys.movement {
                    *balances.entry(plate).or_default() += d;
                }
            }
        }
        for (table, key, message) in found.drain(..) {
            self.problem(table, key, message);
        }
        // Every expected entry is there; equal counts mean there is nothing else.
        let tables: [(&'static str, u64); 5] = [
            (
                "passages_by_container",
                by_container.len().map_err(r.err("passages_by_container"))?,
            ),
            (
                "passages_by_plate",
                by_plate.len().map_err(r.err("passages_by_plate"))?,
            ),
            (
                "passages_by_station",
                by_station.len().map_err(r.err("passages_by_station"))?,
            ),
            (
                "passages_by_lane_time",
                by_lane.len().map_err(r.err("passages_by_lane_time"))?,
            ),
            (
                "passages_by_document",
                by_doc.len().map_err(r.err("passages_by_document"))?,
            ),
        ];
        for (slot, (name, len)) in tables.iter().enumerate() {
            if *len != expected[slot] {
                self.stale_passage_entries(name)?;
            }
        }
        drop((
            by_container,
            by_plate,
            by_station,
            by_lane,
            by_doc,
            passages,
        ));
        self.balances(balances)
    }

    /// Finds index entries no passage owns (only run when the counts disagree).
    fn stale_passage_entries(&mut self, table: &'static str) -> Result<(), StoreError> {
        let r = self.r;
        let mut entries: Vec<(String, i64, String, String)> = Vec::new();
        if table == "passages_by_document" {
            let t = r.table(P_BY_DOCUMENT)?;
            if let Some(range) = t.iter().map_err(r.err(table))? {
                for item in range {
                    let (k, _) = item.map_err(r.err(table))?;
                    let (kind, number, time, id) = k.value();
                    entries.push((
                        format!("{kind}\u{0}{number}"),
                        time,
                        id.to_owned(),
                        format!("{kind}/{number}"),
                    ));
                }
            }
        } else {
            let def = match table {
                "passages_by_container" => P_BY_CONTAINER,
                "passages_by_plate" => P_BY_PLATE,
                "passages_by_station" => P_BY_STATION,
                _ => P_BY_LANE,
            };
            let t = r.table(def)?;
            if let Some(range) = t.iter().map_err(r.err(table))? {
                for item in range {
                    let (k, _) = item.map_err(r.err(table))?;
                    let (value, time, id) = k.value();
                    entries.push((value.to_owned(), time, id.to_owned(), value.to_owned()));
                }
            }
        }
        let mut cache: Option<(String, Option<PassageRecord>)> = None;
        for (value, time, id, shown) in entries {
            if cache.as_ref().is_none_or(|(cid, _)| *cid != id) {
                let rec = r.passage(&id).ok().flatten();
                cache = Some((id.clone(), rec));
            }
            let Some((_, rec)) = &cache else { continue };
            let Some(rec) = rec else {
                self.problem(
                    table,
                    shown,
                    format!("names passage {id}, which does not exist"),
                );
                continue;
            };
            let k = rec.keys();
            let owned = k.time == time
                && match table {
                    "passages_by_container" => k.containers.contains(&value),
                    "passages_by_plate" => k.plates.contains(&value),
                    "passages_by_station" => k.station.as_deref() == Some(value.as_str()),
                    "passages_by_lane_time" => k.lane == value,
                    _ => k
                        .documents
                        .iter()
                        .any(|(kind, n)| format!("{kind}\u{0}{n}") == value),
                };
            if !owned {
                self.problem(
                    table,
                    shown,
                    format!("stale: passage {id} no longer has it"),
                );
            }
        }
        Ok(())
    }

    fn balances(&mut self, expected: BTreeMap<String, i64>) -> Result<(), StoreError> {
        let r = self.r;
        let t = r.table(BALANCES)?;
        if !t.exists() {
            return Ok(());
        }
        let mut actual = BTreeMap::new();
        if let Some(range) = t.iter().map_err(r.err("vehicle_balances"))? {
            for item in range {
                let (k, v) = item.map_err(r.err("vehicle_balances"))?;
                actual.insert(k.value().to_owned(), v.value());
            }
        }
        drop(t);
        for (plate, n) in &expected {
            let got = actual.get(plate).copied().unwrap_or(0);
            if got != *n {
                self.problem(
                    "vehicle_balances",
                    plate,
                    format!("counter says {got}, passages say {n}"),
                );
            }
        }
        for (plate, got) in &actual {
            if !expected.contains_key(plate) && *got != 0 {
                self.problem(
                    "vehicle_balances",
                    plate,
                    format!("counter says {got}, passages say 0"),
                );
            }
        }
        Ok(())
    }

    fn registrations(&mut self) -> Result<(), StoreError> {
        let vehicles: Vec<(String, Vehicle)> = self.records(VEHICLES)?;
        let mut tags = BTreeMap::new();
        let mut foreign = BTreeMap::new();
        for (k, v) in &vehicles {
            if plate::normalize(&v.plate) != *k {
                self.problem(
                    "vehicles",
                    k,
                    format!("record says its plate is {:?}", v.plate),
                );
            }
            if let Some(t) = v.tag_epc.as_deref().map(hex_key).filter(|t| !t.is_empty())
                && let Some(other) = tags.insert(t.clone(), k.clone())
            {
                self.problem(
                    "vehicles_by_tag",
                    &t,
                    format!("tag held by both {other} and {k}"),
                );
            }
            if let Some(f) = v
                .foreign_plate
                .as_deref()
                .map(foreign_plate_key)
                .filter(|t| !t.is_empty())
                && let Some(other) = foreign.insert(f.clone(), k.clone())
            {
                self.problem(
                    "vehicles_by_foreign_plate",
                    &f,
                    format!("foreign plate held by both {other} and {k}"),
                );
            }
        }
        let actual = self.str_index(V_BY_TAG)?;
        self.compare_unique("vehicles_by_tag", tags, actual, "vehicle");
        let actual = self.str_index(V_BY_FOREIGN)?;
        self.compare_unique("vehicles_by_foreign_plate", foreign, actual, "vehicle");

        let drivers: Vec<(String, TruckDriver)> = self.records(DRIVERS)?;
        let mut cards = BTreeMap::new();
        for (k, d) in &drivers {
            if d.id != *k {
                self.problem("drivers", k, format!("record says its id is {:?}", d.id));
            }
            let card = hex_key(&d.card_uid);
            if !card.is_empty()
                && let Some(other) = cards.insert(card.clone(), k.clone())
            {
                self.problem(
                    "drivers_by_card",
                    &card,
                    format!("card held by both {other} and {k}"),
                );
            }
        }
        let actual = self.str_index(D_BY_CARD)?;
        self.compare_unique("drivers_by_card", cards, actual, "driver");

        for (k, e) in self.records::<kakou_plugin_sdk::model::Enterprise>(ENTERPRISES)? {
            if e.code != k {
                self.problem(
                    "enterprises",
                    &k,
                    format!("record says its code is {:?}", e.code),
                );
            }
        }
        for (k, s) in self.records::<kakou_plugin_sdk::model::Station>(STATIONS)? {
            if s.code != k {
                self.problem(
                    "stations",
                    &k,
                    format!("record says its code is {:?}", s.code),
                );
            }
        }
        Ok(())
    }

    fn documents(&mut self) -> Result<(), StoreError> {
        let docs: Vec<(String, Document)> = self.records(DOCUMENTS)?;
        let mut by_c = HashSet::new();
        let mut by_p = HashSet::new();
        for (k, d) in &docs {
            if d.number != *k {
                self.problem(
                    "documents",
                    k,
                    format!("record says its number is {:?}", d.number),
                );
            }
            for c in &d.containers {
                by_c.insert((c.clone(), k.clone()));
            }
            if let Some(p) = &d.plate {
                by_p.insert((p.clone(), k.clone()));
            }
        }
        let actual = self.multi_index(DOC_BY_CONTAINER)?;
        self.compare_multi("documents_by_container", by_c, actual);
        let actual = self.multi_index(DOC_BY_PLATE)?;
        self.compare_multi("documents_by_plate", by_p, actual);
        Ok(())
    }

    fn control_orders(&mut self) -> Result<(), StoreError> {
        let orders: Vec<(String, ControlOrderRecord)> = self.records(CONTROL_ORDERS)?;
        let mut expected = HashSet::new();
        for (k, o) in &orders {
            if o.order.id != *k {
                self.problem(
                    "control_orders",
                    k,
                    format!("record says its id is {:?}", o.order.id),
                );
            }
            let kind = subject_kind_name(o.order.subject_kind);
            let subject = subject_key(o.order.subject_kind, &o.order.subject);
            expected.insert((format!("{kind}:{subject}"), k.clone()));
        }
        let r = self.r;
        let t = r.multimap(CO_BY_SUBJECT)?;
        let mut actual = HashSet::new();
        if let Some(range) = t.iter().map_err(r.err("control_orders_by_subject"))? {
            for item in range {
                let (k, values) = item.map_err(r.err("control_orders_by_subject"))?;
                let (kind, subject) = k.value();
                for v in values {
                    let v = v.map_err(r.err("control_orders_by_subject"))?;
                    actual.insert((format!("{kind}:{subject}"), v.value().to_owned()));
                }
            }
        }
        drop(t);
        self.compare_multi("control_orders_by_subject", expected, actual);
        Ok(())
    }

    fn parameters(&mut self) -> Result<(), StoreError> {
        let r = self.r;
        let t = r.table(PARAMETERS)?;
        let mut found = Vec::new();
        let mut last: Option<(String, u64)> = None;
        if let Some(range) = t.iter().map_err(r.err("parameters"))? {
            for item in range {
                let (k, v) = item.map_err(r.err("parameters"))?;
                let (name, version) = k.value();
                let key = format!("{name}@{version}");
                match decode::<ParameterVersion>("parameters", v.value()) {
                    Err(e) => found.push((key.clone(), format!("cannot decode: {e}"))),
                    Ok(p) if p.name != name || p.version != version => found.push((
                        key.clone(),
                        format!("record says it is {}@{}", p.name, p.version),
                    )),
                    Ok(_) => {}
                }
                let expected = match &last {
                    Some((n, v)) if n == name => v + 1,
                    _ => 1,
                };
                if version != expected {
                    found.push((
                        key,
                        format!("version {version} follows version {}", expected - 1),
                    ));
                }
                last = Some((name.to_owned(), version));
            }
        }
        drop(t);
        for (k, m) in found {
            self.problem("parameters", k, m);
        }
        Ok(())
    }

    fn rest(&mut self) -> Result<(), StoreError> {
        let r = self.r;
        let mut found: Vec<(&'static str, String, String)> = Vec::new();
        let t = r.table(EQUIPMENT)?;
        if let Some(range) = t.iter().map_err(r.err("equipment"))? {
            for item in range {
                let (k, v) = item.map_err(r.err("equipment"))?;
                if let Err(e) = decode::<Equipment>("equipment", v.value()) {
                    let (lane, device) = k.value();
                    found.push((
                        "equipment",
                        format!("{lane}/{device}"),
                        format!("cannot decode: {e}"),
                    ));
                }
            }
        }
        drop(t);
        let mut alarms = BTreeMap::new();
        let t = r.table(ALARMS)?;
        if let Some(range) = t.iter().map_err(r.err("alarms"))? {
            for item in range {
                let (k, v) = item.map_err(r.err("alarms"))?;
                match decode::<AlarmRecord>("alarms", v.value()) {
                    Ok(a) if a.id != k.value() => found.push((
                        "alarms",
                        k.value().to_owned(),
                        format!("holds alarm {:?}, not its own", a.id),
                    )),
                    Ok(a) => {
                        alarms.insert(a.id.clone(), a);
                    }
                    Err(e) => found.push((
                        "alarms",
                        k.value().to_owned(),
                        format!("cannot decode: {e}"),
                    )),
                }
            }
        }
        drop(t);
        let t = r.table(ALARMS_BY_TIME)?;
        let mut timed = 0usize;
        if let Some(range) = t.iter().map_err(r.err("alarms_by_time"))? {
            for item in range {
                let (k, _) = item.map_err(r.err("alarms_by_time"))?;
                let (at, id) = k.value();
                timed += 1;
                if alarms.get(id).is_none_or(|a| a.first_ms != at) {
                    found.push((
                        "alarms_by_time",
                        format!("{at}/{id}"),
                        "names no alarm first raised then".into(),
                    ));
                }
            }
        }
        drop(t);
        if timed != alarms.len() {
            found.push((
                "alarms_by_time",
                String::new(),
                format!("{timed} entries for {} alarms", alarms.len()),
            ));
        }
        let t = r.table(ALARMS_OPEN)?;
        let mut open = 0usize;
        if let Some(range) = t.iter().map_err(r.err("alarms_open"))? {
            for item in range {
                let (k, v) = item.map_err(r.err("alarms_open"))?;
                open += 1;
                let ok = alarms
                    .get(v.value())
                    .is_some_and(|a| a.is_open() && a.alarm.standing_key() == k.value());
                if !ok {
                    found.push((
                        "alarms_open",
                        v.value().to_owned(),
                        "names no open alarm of that code, lane, device and passage".into(),
                    ));
                }
            }
        }
        drop(t);
        let should = alarms.values().filter(|a| a.is_open()).count();
        if open != should {
            found.push((
                "alarms_open",
                String::new(),
                format!("{open} entries for {should} open alarms"),
            ));
        }
        let seq = r.meta(META_OUTBOX_SEQ)?.unwrap_or(0);
        for (def, name) in [(OUTBOX, "outbox"), (OUTBOX_DONE, "outbox_done")] {
            let t = r.table(def)?;
            if let Some(range) = t.iter().map_err(r.err(name))? {
                for item in range {
                    let (k, v) = item.map_err(r.err(name))?;
                    if let Err(e) = decode::<OutboxMessage>(name, v.value()) {
                        found.push((name, k.value().to_string(), format!("cannot decode: {e}")));
                    }
                    if k.value() > seq {
                        found.push((
                            name,
                            k.value().to_string(),
                            format!("id is past the outbox sequence ({seq}): ids could be reused"),
                        ));
                    }
                }
            }
        }
        let t = r.table(AUDIT)?;
        let idx = r.table(AUDIT_BY_WHO)?;
        let mut n = 0u64;
        if let Some(range) = t.iter().map_err(r.err("audit"))? {
            for item in range {
                let (k, v) = item.map_err(r.err("audit"))?;
                n += 1;
                let seq = k.value();
                if seq != n {
                    found.push(("audit", seq.to_string(), format!("gap: expected entry {n}")));
                    n = seq;
                }
                match decode::<AuditEntry>("audit", v.value()) {
                    Err(e) => found.push(("audit", seq.to_string(), format!("cannot decode: {e}"))),
                    Ok(a) => {
                        let hit = idx
                            .get((a.who.as_str(), a.when_ms, seq))
                            .map_err(r.err("audit_by_who"))?;
                        if hit.is_none() {
                            found.push((
                                "audit_by_who",
                                a.who.clone(),
                                format!("entry {seq} is not indexed"),
                            ));
                        }
                    }
                }
            }
        }
        let idx_len = idx.len().map_err(r.err("audit_by_who"))?;
        let audit_len = t.len().map_err(r.err("audit"))?;
        if idx_len != audit_len {
            found.push((
                "audit_by_who",
                String::new(),
                format!("{idx_len} index entries for {audit_len} audit entries"),
            ));
        }
        drop((t, idx));
        for (t, k, m) in found {
            self.problem(t, k, m);
        }
        Ok(())
    }
}

impl Reader<'_> {
    /// Checks the store's logical integrity (see the module documentation); the caller adds
    /// redb's page check when it can ([`Store::verify_file`](super::Store::verify_file)).
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let schema_version = self.schema_version()?;
        let mut c = Checker {
            r: self,
            problems: Vec::new(),
            count: 0,
        };
        let mut notes = Vec::new();
        match schema_version {
            None => c.problem("meta", META_SCHEMA, "no schema version"),
            Some(v) if v < SCHEMA_VERSION => notes.push(format!(
                "schema {v} is older than {SCHEMA_VERSION}: it is migrated when a writer opens it"
            )),
            Some(_) => {}
        }
        c.passages()?;
        c.registrations()?;
        c.documents()?;
        c.control_orders()?;
        c.parameters()?;
        c.rest()?;
        Ok(CheckReport {
            path: self.path.to_path_buf(),
            schema_version,
            counts: self.counts()?,
            problems: c.problems,
            problem_count: c.count,
            pages_verified: None,
            notes,
        })
    }
}
