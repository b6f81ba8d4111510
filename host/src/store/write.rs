//! Writing the store: [`WriteTx`] is one durable redb transaction. Every method keeps the
//! indexes and counters of the records it writes in step, inside the same transaction.

use std::path::Path;
use std::sync::Arc;

use kakou_plugin_sdk::model::{Document, Enterprise, Station, TruckDriver, Vehicle};
use kakou_plugin_sdk::proto::{iso6346, plate};
use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};
use serde::Serialize;

use super::StoreError;
use super::read::{Reader, Txn, foreign_plate_key, hex_key, table_name};
use super::records::{
    AlarmAck, AlarmClear, AlarmRecord, AlarmUpdate, AuditEntry, ControlOrderRecord, ManualAction,
    NewAlarm, OutboxMessage, ParameterVersion, PassageKeys, PassageRecord, subject_key,
    subject_kind_name,
};
use super::schema::*;
use crate::config::{Equipment, SiteManifest};

/// One write transaction. Nothing is visible to readers, and nothing reaches the disk, until
/// the closure given to [`Store::write`](super::Store::write) returns `Ok`; then everything
/// commits at once, durably. An `Err` (or a panic) aborts it all. Through the
/// [`Writer`](super::Writer), one transaction holds the writes of several callers, each
/// seeing the ones queued before it.
pub struct WriteTx {
    pub(crate) txn: WriteTransaction,
    pub(crate) path: Arc<Path>,
}

impl WriteTx {
    /// Begins a write transaction that commits with `Durability::Immediate` (the commit returns
    /// once the data is on disk). redb's error is returned as it is, for the caller to report
    /// in its own way.
    pub(crate) fn begin(db: &redb::Database, path: &Arc<Path>) -> Result<WriteTx, redb::Error> {
        let mut txn = db.begin_write()?;
        txn.set_durability(redb::Durability::Immediate)?;
        Ok(WriteTx {
            txn,
            path: path.clone(),
        })
    }

    /// Reads through this transaction (sees its own writes).
    pub fn read(&self) -> Reader<'_> {
        Reader {
            txn: Txn::Write(&self.txn),
            path: self.path.clone(),
        }
    }

    fn err(&self, table: &'static str) -> impl Fn(redb::StorageError) -> StoreError + '_ {
        move |e| StoreError::db(&self.path, table, e)
    }

    fn table_err(&self, table: &'static str) -> impl Fn(redb::TableError) -> StoreError + '_ {
        move |e| StoreError::db(&self.path, table, e)
    }

    fn invalid(&self, table: &'static str, reason: impl Into<String>) -> StoreError {
        StoreError::Invalid {
            path: self.path.to_path_buf(),
            table,
            reason: reason.into(),
        }
    }

    fn encode<T: Serialize>(&self, table: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
        encode(value).map_err(|e| self.invalid(table, format!("cannot encode the record: {e}")))
    }

    fn put_bytes(
        &self,
        def: redb::TableDefinition<'static, &'static str, &'static [u8]>,
        key: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let name = table_name(&def);
        let mut t = self.txn.open_table(def).map_err(self.table_err(name))?;
        t.insert(key, bytes).map_err(self.err(name))?;
        Ok(())
    }

    fn set_meta(&self, key: &str, value: u64) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(META).map_err(self.table_err("meta"))?;
        t.insert(key, value).map_err(self.err("meta"))?;
        Ok(())
    }

    // ---- passages ----

    /// Writes a passage record (new, or a new state of an existing one), moving its index
    /// entries and its vehicle's balance along.
    pub fn put_passage(&mut self, rec: &PassageRecord) -> Result<(), StoreError> {
        let id = rec.id();
        if id.trim().is_empty() || id.trim() != id {
            return Err(self.invalid(
                "passages",
                format!("passage id {id:?} is empty or has surrounding spaces"),
            ));
        }
        let old = self.read().passage(id)?;
        let bytes = self.encode("passages", rec)?;
        self.put_bytes(PASSAGES, id, &bytes)?;
        let old_keys = old.as_ref().map(PassageRecord::keys).unwrap_or_default();
        let new_keys = rec.keys();
        if old.is_some() {
            self.unindex_passage(id, &old_keys, &new_keys)?;
        }
        self.index_passage(id, &new_keys)?;
        if old_keys.movement == new_keys.movement {
            return Ok(());
        }
        let mut moves: Vec<(String, i64)> = Vec::new();
        if let Some((p, d)) = old_keys.movement {
            moves.push((p, -d));
        }
        if let Some(m) = new_keys.movement {
            moves.push(m);
        }
        self.move_balances(&moves)
    }

    fn index_passage(&self, id: &str, k: &PassageKeys) -> Result<(), StoreError> {
        let t = k.time;
        let insert = |def: TimeIndex, values: &[String]| -> Result<(), StoreError> {
            let name = table_name(&def);
            let mut tbl = self.txn.open_table(def).map_err(self.table_err(name))?;
            for v in values {
                tbl.insert((v.as_str(), t, id), ())
                    .map_err(self.err(name))?;
            }
            Ok(())
        };
        insert(P_BY_CONTAINER, &k.containers)?;
        insert(P_BY_PLATE, &k.plates)?;
        insert(P_BY_STATION, k.station.as_slice())?;
        insert(P_BY_LANE, std::slice::from_ref(&k.lane))?;
        let mut docs = self
            .txn
            .open_table(P_BY_DOCUMENT)
            .map_err(self.table_err("passages_by_document"))?;
        for (kind, number) in &k.documents {
            docs.insert((kind.as_str(), number.as_str(), t, id), ())
                .map_err(self.err("passages_by_document"))?;
        }
        Ok(())
    }

    /// Removes the old entries the new keys do not keep.
    fn unindex_passage(
        &self,
        id: &str,
        old: &PassageKeys,
        new: &PassageKeys,
    ) -> Result<(), StoreError> {
        let same_time = old.time == new.time;
        let remove = |def: TimeIndex, olds: &[String], news: &[String]| -> Result<(), StoreError> {
            let name = table_name(&def);
            let mut tbl = self.txn.open_table(def).map_err(self.table_err(name))?;
            for v in olds {
                if !(same_time && news.contains(v)) {
                    tbl.remove((v.as_str(), old.time, id))
                        .map_err(self.err(name))?;
                }
            }
            Ok(())
        };
        remove(P_BY_CONTAINER, &old.containers, &new.containers)?;
        remove(P_BY_PLATE, &old.plates, &new.plates)?;
        remove(P_BY_STATION, old.station.as_slice(), new.station.as_slice())?;
        remove(
            P_BY_LANE,
            std::slice::from_ref(&old.lane),
            std::slice::from_ref(&new.lane),
        )?;
        let mut docs = self
            .txn
            .open_table(P_BY_DOCUMENT)
            .map_err(self.table_err("passages_by_document"))?;
        for d in &old.documents {
            if !(same_time && new.documents.contains(d)) {
                docs.remove((d.0.as_str(), d.1.as_str(), old.time, id))
                    .map_err(self.err("passages_by_document"))?;
            }
        }
        Ok(())
    }

    fn move_balances(&self, moves: &[(String, i64)]) -> Result<(), StoreError> {
        if moves.is_empty() {
            return Ok(());
        }
        let mut t = self
            .txn
            .open_table(BALANCES)
            .map_err(self.table_err("vehicle_balances"))?;
        for (plate, delta) in moves {
            let now = t
                .get(plate.as_str())
                .map_err(self.err("vehicle_balances"))?
                .map_or(0, |g| g.value());
            let next = now + delta;
            if next == 0 {
                t.remove(plate.as_str())
                    .map_err(self.err("vehicle_balances"))?;
            } else {
                t.insert(plate.as_str(), next)
                    .map_err(self.err("vehicle_balances"))?;
            }
        }
        Ok(())
    }

    /// An operator acts on a passage: `change` edits the record, the action is appended to its
    /// manual actions, and the audit log gets who, when, what, before and after, all in this
    /// transaction. Returns the new record.
    pub fn manual_update(
        &mut self,
        id: &str,
        action: ManualAction,
        change: impl FnOnce(&mut PassageRecord),
    ) -> Result<PassageRecord, StoreError> {
        let Some(before) = self.read().passage(id)? else {
            return Err(self.invalid("passages", format!("no passage {id:?}")));
        };
        let mut after = before.clone();
        change(&mut after);
        after.passage.id = before.passage.id.clone();
        after.updated_ms = after.updated_ms.max(action.at_ms);
        after.manual_actions.push(action.clone());
        self.put_passage(&after)?;
        self.audit(AuditEntry {
            who: action.who.clone(),
            when_ms: action.at_ms,
            action: format!("passage.{}", action.action),
            subject: id.to_owned(),
            before: serde_json::to_value(&before).ok(),
            after: serde_json::to_value(&after).ok(),
        })?;
        Ok(after)
    }

    // ---- registrations ----

    /// Writes a vehicle (keyed by its normalised plate), re-pointing its e-plate tag and foreign
    /// plate.
    pub fn put_vehicle(&mut self, v: &Vehicle) -> Result<(), StoreError> {
        let mut v = v.clone();
        v.plate = plate::normalize(&v.plate);
        if v.plate.is_empty() {
            return Err(self.invalid("vehicles", "vehicle without a plate"));
        }
        v.tag_epc = v.tag_epc.as_deref().map(hex_key).filter(|t| !t.is_empty());
        v.foreign_plate = v
            .foreign_plate
            .as_deref()
            .map(foreign_plate_key)
            .filter(|t| !t.is_empty());
        let old = self.read().vehicle(&v.plate)?;
        let bytes = self.encode("vehicles", &v)?;
        self.put_bytes(VEHICLES, &v.plate, &bytes)?;
        let old_tag = old.as_ref().and_then(|o| o.tag_epc.clone());
        let old_foreign = old.as_ref().and_then(|o| o.foreign_plate.clone());
        self.repoint(V_BY_TAG, old_tag.as_deref(), v.tag_epc.as_deref(), &v.plate)?;
        self.repoint(
            V_BY_FOREIGN,
            old_foreign.as_deref(),
            v.foreign_plate.as_deref(),
            &v.plate,
        )
    }

    /// Moves a unique index entry `old → owner` to `new → owner`. The old entry is removed only
    /// if it still names `owner` (another record may have taken it over in this transaction).
    fn repoint(
        &self,
        def: redb::TableDefinition<'static, &'static str, &'static str>,
        old: Option<&str>,
        new: Option<&str>,
        owner: &str,
    ) -> Result<(), StoreError> {
        let name = table_name(&def);
        let mut t = self.txn.open_table(def).map_err(self.table_err(name))?;
        if let Some(old) = old
            && Some(old) != new
        {
            let points_here = t
                .get(old)
                .map_err(self.err(name))?
                .is_some_and(|g| g.value() == owner);
            if points_here {
                t.remove(old).map_err(self.err(name))?;
            }
        }
        if let Some(new) = new {
            t.insert(new, owner).map_err(self.err(name))?;
        }
        Ok(())
    }

    /// Writes a driver (keyed by id), re-pointing the IC card index.
    pub fn put_driver(&mut self, d: &TruckDriver) -> Result<(), StoreError> {
        let mut d = d.clone();
        d.id = d.id.trim().to_owned();
        if d.id.is_empty() {
            return Err(self.invalid("drivers", "driver without an id"));
        }
        d.card_uid = hex_key(&d.card_uid);
        for p in &mut d.vehicles {
            *p = plate::normalize(p);
        }
        let old = self.read().driver(&d.id)?;
        let bytes = self.encode("drivers", &d)?;
        self.put_bytes(DRIVERS, &d.id, &bytes)?;
        let old_card = old.map(|o| o.card_uid).filter(|c| !c.is_empty());
        let new_card = (!d.card_uid.is_empty()).then_some(d.card_uid.as_str());
        self.repoint(D_BY_CARD, old_card.as_deref(), new_card, &d.id)
    }

    /// Writes a transport enterprise.
    pub fn put_enterprise(&mut self, e: &Enterprise) -> Result<(), StoreError> {
        let code = e.code.trim();
        if code.is_empty() {
            return Err(self.invalid("enterprises", "enterprise without a code"));
        }
        let mut e = e.clone();
        e.code = code.to_owned();
        let bytes = self.encode("enterprises", &e)?;
        self.put_bytes(ENTERPRISES, &e.code, &bytes)
    }

    /// Writes a station or yard.
    pub fn put_station(&mut self, s: &Station) -> Result<(), StoreError> {
        let code = s.code.trim();
        if code.is_empty() {
            return Err(self.invalid("stations", "station without a code"));
        }
        let mut s = s.clone();
        s.code = code.to_owned();
        let bytes = self.encode("stations", &s)?;
        self.put_bytes(STATIONS, &s.code, &bytes)
    }

    /// Writes a release document (keyed by number), re-indexing its containers and plate.
    pub fn put_document(&mut self, d: &Document) -> Result<(), StoreError> {
        let mut d = d.clone();
        d.number = d.number.trim().to_owned();
        if d.number.is_empty() {
            return Err(self.invalid("documents", "document without a number"));
        }
        for c in &mut d.containers {
            *c = iso6346::normalize(c);
        }
        d.plate = d
            .plate
            .as_deref()
            .map(plate::normalize)
            .filter(|p| !p.is_empty());
        let old = self.read().document(&d.number)?;
        let bytes = self.encode("documents", &d)?;
        self.put_bytes(DOCUMENTS, &d.number, &bytes)?;
        let number = d.number.as_str();
        let mut by_c = self
            .txn
            .open_multimap_table(DOC_BY_CONTAINER)
            .map_err(self.table_err("documents_by_container"))?;
        if let Some(old) = &old {
            for c in &old.containers {
                by_c.remove(c.as_str(), number)
                    .map_err(self.err("documents_by_container"))?;
            }
        }
        for c in &d.containers {
            by_c.insert(c.as_str(), number)
                .map_err(self.err("documents_by_container"))?;
        }
        drop(by_c);
        let mut by_p = self
            .txn
            .open_multimap_table(DOC_BY_PLATE)
            .map_err(self.table_err("documents_by_plate"))?;
        if let Some(p) = old.as_ref().and_then(|o| o.plate.as_deref()) {
            by_p.remove(p, number)
                .map_err(self.err("documents_by_plate"))?;
        }
        if let Some(p) = d.plate.as_deref() {
            by_p.insert(p, number)
                .map_err(self.err("documents_by_plate"))?;
        }
        Ok(())
    }

    // ---- control orders ----

    /// Writes a control order (keyed by id), re-indexing its subject.
    pub fn put_control_order(&mut self, o: &ControlOrderRecord) -> Result<(), StoreError> {
        let mut o = o.clone();
        o.order.id = o.order.id.trim().to_owned();
        if o.order.id.is_empty() {
            return Err(self.invalid("control_orders", "control order without an id"));
        }
        o.order.subject = subject_key(o.order.subject_kind, &o.order.subject);
        if o.order.subject.is_empty() {
            return Err(self.invalid(
                "control_orders",
                format!("control order {} has no subject", o.order.id),
            ));
        }
        let old = self.read().control_order(&o.order.id)?;
        let bytes = self.encode("control_orders", &o)?;
        self.put_bytes(CONTROL_ORDERS, &o.order.id, &bytes)?;
        let id = o.order.id.as_str();
        let mut idx = self
            .txn
            .open_multimap_table(CO_BY_SUBJECT)
            .map_err(self.table_err("control_orders_by_subject"))?;
        if let Some(old) = &old {
            idx.remove(
                (
                    subject_kind_name(old.order.subject_kind),
                    old.order.subject.as_str(),
                ),
                id,
            )
            .map_err(self.err("control_orders_by_subject"))?;
        }
        idx.insert(
            (
                subject_kind_name(o.order.subject_kind),
                o.order.subject.as_str(),
            ),
            id,
        )
        .map_err(self.err("control_orders_by_subject"))?;
        Ok(())
    }

    /// Revokes a control order from `at_ms` on, with an audit entry. False when there is no
    /// such order or it was already revoked.
    pub fn revoke_control_order(
        &mut self,
        id: &str,
        who: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let Some(before) = self.read().control_order(id)? else {
            return Ok(false);
        };
        if before.revoked_ms.is_some() {
            return Ok(false);
        }
        let mut after = before.clone();
        after.revoked_ms = Some(at_ms);
        after.revoked_by = Some(who.to_owned());
        self.put_control_order(&after)?;
        self.audit(AuditEntry {
            who: who.to_owned(),
            when_ms: at_ms,
            action: "control-order.revoke".into(),
            subject: id.to_owned(),
            before: serde_json::to_value(&before).ok(),
            after: serde_json::to_value(&after).ok(),
        })?;
        Ok(true)
    }

    // ---- parameters ----

    /// Sets a parameter. Keeps every earlier value; returns the new version number, or `None`
    /// when the value is already the current one (nothing is written).
    pub fn set_parameter(
        &mut self,
        name: &str,
        value: &str,
        who: &str,
        at_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(self.invalid("parameters", "parameter without a name"));
        }
        let current = self.read().parameter(name)?;
        if current.as_ref().is_some_and(|c| c.value == value) {
            return Ok(None);
        }
        let version = current.map_or(1, |c| c.version + 1);
        let p = ParameterVersion {
            name: name.to_owned(),
            version,
            value: value.to_owned(),
            set_ms: at_ms,
            set_by: who.to_owned(),
        };
        let bytes = self.encode("parameters", &p)?;
        let mut t = self
            .txn
            .open_table(PARAMETERS)
            .map_err(self.table_err("parameters"))?;
        t.insert((name, version), bytes.as_slice())
            .map_err(self.err("parameters"))?;
        Ok(Some(version))
    }

    // ---- equipment ----

    /// Writes the equipment file of a lane's device.
    pub fn put_equipment(
        &mut self,
        lane: &str,
        device: &str,
        e: &Equipment,
    ) -> Result<(), StoreError> {
        let bytes = self.encode("equipment", e)?;
        let mut t = self
            .txn
            .open_table(EQUIPMENT)
            .map_err(self.table_err("equipment"))?;
        t.insert((lane, device), bytes.as_slice())
            .map_err(self.err("equipment"))?;
        Ok(())
    }

    /// Makes the equipment table the site manifest's: every device's file written, and the
    /// files of devices the manifest no longer has removed, so the parameter library never
    /// lists equipment that left the site. Returns how many files it holds.
    pub fn put_site_equipment(&mut self, site: &SiteManifest) -> Result<usize, StoreError> {
        let keep: std::collections::BTreeSet<(&str, &str)> = site
            .lanes
            .iter()
            .flat_map(|l| l.devices.iter().map(|d| (l.id.as_str(), d.id.as_str())))
            .collect();
        let stale: Vec<(String, String)> = {
            let t = self
                .txn
                .open_table(EQUIPMENT)
                .map_err(self.table_err("equipment"))?;
            let mut stale = Vec::new();
            for item in t.iter().map_err(self.err("equipment"))? {
                let (k, _) = item.map_err(self.err("equipment"))?;
                let (lane, device) = k.value();
                if !keep.contains(&(lane, device)) {
                    stale.push((lane.to_owned(), device.to_owned()));
                }
            }
            stale
        };
        if !stale.is_empty() {
            let mut t = self
                .txn
                .open_table(EQUIPMENT)
                .map_err(self.table_err("equipment"))?;
            for (lane, device) in &stale {
                t.remove((lane.as_str(), device.as_str()))
                    .map_err(self.err("equipment"))?;
            }
        }
        for lane in &site.lanes {
            for d in &lane.devices {
                self.put_equipment(&lane.id, &d.id, &d.equipment)?;
            }
        }
        Ok(keep.len())
    }

    // ---- alarms ----

    /// Records an alarm raised at `at_ms`, `times` times (more than once for a device alarm
    /// whose repeats were held back). One like it still standing (same code, lane, device and
    /// passage, not cleared) counts the repeat and takes the new message and time; otherwise
    /// it is a new alarm with id `id`. Returns the alarm as stored.
    pub fn raise_alarm(
        &mut self,
        id: &str,
        alarm: &NewAlarm,
        at_ms: i64,
        times: u64,
    ) -> Result<AlarmRecord, StoreError> {
        let key = alarm.standing_key();
        let standing = {
            let open = self
                .txn
                .open_table(ALARMS_OPEN)
                .map_err(self.table_err("alarms_open"))?;
            open.get(key.as_str())
                .map_err(self.err("alarms_open"))?
                .map(|g| g.value().to_owned())
        };
        let standing = match standing {
            Some(sid) => self.read().alarm(&sid)?,
            None => None,
        };
        let record = match standing {
            Some(mut r) => {
                r.alarm = alarm.clone();
                r.last_ms = r.last_ms.max(at_ms);
                r.count += times.max(1);
                r
            }
            None => {
                let r = AlarmRecord {
                    id: id.to_owned(),
                    alarm: alarm.clone(),
                    first_ms: at_ms,
                    last_ms: at_ms,
                    count: times.max(1),
                    acknowledged: None,
                    cleared: None,
                };
                let mut by_time = self
                    .txn
                    .open_table(ALARMS_BY_TIME)
                    .map_err(self.table_err("alarms_by_time"))?;
                by_time
                    .insert((at_ms, id), ())
                    .map_err(self.err("alarms_by_time"))?;
                let mut open = self
                    .txn
                    .open_table(ALARMS_OPEN)
                    .map_err(self.table_err("alarms_open"))?;
                open.insert(key.as_str(), id)
                    .map_err(self.err("alarms_open"))?;
                r
            }
        };
        self.put_alarm(&record)?;
        Ok(record)
    }

    /// An operator acknowledges alarm `id`: seen, by whom, when, with a note. It stays open
    /// until it is cleared.
    pub fn acknowledge_alarm(
        &mut self,
        id: &str,
        by: &str,
        at_ms: i64,
        note: Option<&str>,
    ) -> Result<AlarmUpdate, StoreError> {
        let Some(mut r) = self.read().alarm(id)? else {
            return Ok(AlarmUpdate::Unknown);
        };
        if r.acknowledged.is_some() {
            return Ok(AlarmUpdate::AlreadyAcknowledged(r));
        }
        r.acknowledged = Some(AlarmAck {
            by: by.to_owned(),
            at_ms,
            note: note.map(str::to_owned),
        });
        self.put_alarm(&r)?;
        Ok(AlarmUpdate::Updated(r))
    }

    /// Clears alarm `id` at `at_ms`: by an operator, or by the daemon (`by` none) when its
    /// cause went away. A later alarm like it is a new one.
    pub fn clear_alarm(
        &mut self,
        id: &str,
        by: Option<&str>,
        at_ms: i64,
    ) -> Result<AlarmUpdate, StoreError> {
        let Some(mut r) = self.read().alarm(id)? else {
            return Ok(AlarmUpdate::Unknown);
        };
        if r.cleared.is_some() {
            return Ok(AlarmUpdate::AlreadyCleared(r));
        }
        r.cleared = Some(AlarmClear {
            at_ms,
            by: by.map(str::to_owned),
        });
        let key = r.alarm.standing_key();
        {
            let mut open = self
                .txn
                .open_table(ALARMS_OPEN)
                .map_err(self.table_err("alarms_open"))?;
            let mine = open
                .get(key.as_str())
                .map_err(self.err("alarms_open"))?
                .is_some_and(|g| g.value() == id);
            if mine {
                open.remove(key.as_str()).map_err(self.err("alarms_open"))?;
            }
        }
        self.put_alarm(&r)?;
        Ok(AlarmUpdate::Updated(r))
    }

    /// Clears, as the daemon, the open alarms of passage `passage` with one of the `codes`
    /// (those whose cause went away). Returns the alarms cleared.
    pub fn clear_passage_alarms(
        &mut self,
        passage: &str,
        codes: &[&str],
        at_ms: i64,
    ) -> Result<Vec<AlarmRecord>, StoreError> {
        let ids: Vec<String> = self
            .read()
            .open_alarms()?
            .into_iter()
            .filter(|a| {
                a.alarm.passage.as_deref() == Some(passage)
                    && codes.contains(&a.alarm.code.as_str())
            })
            .map(|a| a.id)
            .collect();
        let mut cleared = Vec::with_capacity(ids.len());
        for id in ids {
            if let AlarmUpdate::Updated(r) = self.clear_alarm(&id, None, at_ms)? {
                cleared.push(r);
            }
        }
        Ok(cleared)
    }

    fn put_alarm(&mut self, r: &AlarmRecord) -> Result<(), StoreError> {
        let bytes = self.encode("alarms", r)?;
        self.put_bytes(ALARMS, &r.id, &bytes)
    }

    // ---- outbox, inbox, audit ----

    /// Queues a message for publication, in this transaction; returns its id (increasing,
    /// never reused).
    pub fn outbox_push(&mut self, message: &OutboxMessage) -> Result<u64, StoreError> {
        let id = self.read().meta(META_OUTBOX_SEQ)?.unwrap_or(0) + 1;
        self.set_meta(META_OUTBOX_SEQ, id)?;
        let bytes = self.encode("outbox", message)?;
        let mut t = self
            .txn
            .open_table(OUTBOX)
            .map_err(self.table_err("outbox"))?;
        t.insert(id, bytes.as_slice()).map_err(self.err("outbox"))?;
        Ok(id)
    }

    /// Delivers a message: moves it from the outbox to the history (`outbox_done`) with its
    /// delivery time, dropping history entries older than the last
    /// [`OUTBOX_HISTORY`](super::schema::OUTBOX_HISTORY). False when it was not in the outbox
    /// (delivered before: a repeated acknowledgement).
    pub fn outbox_deliver(&mut self, id: u64, at_ms: i64) -> Result<bool, StoreError> {
        let mut t = self
            .txn
            .open_table(OUTBOX)
            .map_err(self.table_err("outbox"))?;
        let Some(bytes) = t
            .remove(id)
            .map_err(self.err("outbox"))?
            .map(|g| g.value().to_vec())
        else {
            return Ok(false);
        };
        drop(t);
        let mut m: OutboxMessage = decode("outbox", &bytes).map_err(|r| StoreError::Corrupt {
            path: self.path.to_path_buf(),
            table: "outbox",
            key: id.to_string(),
            reason: r,
        })?;
        m.delivered_ms = Some(at_ms);
        let bytes = self.encode("outbox_done", &m)?;
        let mut done = self
            .txn
            .open_table(OUTBOX_DONE)
            .map_err(self.table_err("outbox_done"))?;
        done.insert(id, bytes.as_slice())
            .map_err(self.err("outbox_done"))?;
        if id > OUTBOX_HISTORY {
            let horizon = id - OUTBOX_HISTORY;
            // Ids only grow, so at most a few entries fall off per delivery.
            loop {
                let first = done
                    .first()
                    .map_err(self.err("outbox_done"))?
                    .map(|(k, _)| k.value());
                match first {
                    Some(k) if k < horizon => {
                        done.remove(k).map_err(self.err("outbox_done"))?;
                    }
                    _ => break,
                }
            }
        }
        Ok(true)
    }

    /// Removes a message without delivering it (an operator's decision, or a test). False when
    /// it was not there.
    pub fn outbox_ack(&mut self, id: u64) -> Result<bool, StoreError> {
        let mut t = self
            .txn
            .open_table(OUTBOX)
            .map_err(self.table_err("outbox"))?;
        Ok(t.remove(id).map_err(self.err("outbox"))?.is_some())
    }

    /// Records that the broker acknowledged a message that waits for its receiver. False when
    /// it was not there (the receiver confirmed first).
    pub fn outbox_broker_acked(&mut self, id: u64, at_ms: i64) -> Result<bool, StoreError> {
        self.outbox_update(id, |m| {
            m.broker_acked_ms = Some(at_ms);
            m.last_error = None;
        })
    }

    /// Records a publish attempt that timed out or failed, with why.
    pub fn outbox_attempted(
        &mut self,
        id: u64,
        attempts: u32,
        at_ms: i64,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.outbox_update(id, |m| {
            m.attempts = m.attempts.max(attempts);
            m.last_attempt_ms = Some(at_ms);
            m.last_error = error.map(str::to_owned);
        })
    }

    /// Records the answer to an operator's request id, in the transaction that carries out
    /// the request. False when the id was answered before (the caller then aborts and gives
    /// the stored answer).
    pub fn request_answered(
        &mut self,
        id: &str,
        reply: &super::StoredReply,
    ) -> Result<bool, StoreError> {
        let bytes = self.encode("requests", reply)?;
        let mut t = self
            .txn
            .open_table(REQUESTS)
            .map_err(self.table_err("requests"))?;
        if t.get(id).map_err(self.err("requests"))?.is_some() {
            return Ok(false);
        }
        t.insert(id, bytes.as_slice())
            .map_err(self.err("requests"))?;
        Ok(true)
    }

    fn outbox_update(
        &mut self,
        id: u64,
        change: impl FnOnce(&mut OutboxMessage),
    ) -> Result<bool, StoreError> {
        let mut t = self
            .txn
            .open_table(OUTBOX)
            .map_err(self.table_err("outbox"))?;
        let Some(bytes) = t
            .get(id)
            .map_err(self.err("outbox"))?
            .map(|g| g.value().to_vec())
        else {
            return Ok(false);
        };
        let mut m: OutboxMessage = decode("outbox", &bytes).map_err(|r| StoreError::Corrupt {
            path: self.path.to_path_buf(),
            table: "outbox",
            key: id.to_string(),
            reason: r,
        })?;
        change(&mut m);
        let bytes = self.encode("outbox", &m)?;
        t.insert(id, bytes.as_slice()).map_err(self.err("outbox"))?;
        Ok(true)
    }

    /// Records that a received message id was applied. Returns false when it already was: the
    /// caller then skips it, so a message delivered twice takes effect once.
    pub fn inbox_mark(&mut self, id: &str, at_ms: i64) -> Result<bool, StoreError> {
        let mut t = self
            .txn
            .open_table(INBOX)
            .map_err(self.table_err("inbox"))?;
        if t.get(id).map_err(self.err("inbox"))?.is_some() {
            return Ok(false);
        }
        t.insert(id, at_ms).map_err(self.err("inbox"))?;
        Ok(true)
    }

    /// Forgets received message ids applied before `before_ms`; returns how many.
    pub fn inbox_prune(&mut self, before_ms: i64) -> Result<u64, StoreError> {
        let mut t = self
            .txn
            .open_table(INBOX)
            .map_err(self.table_err("inbox"))?;
        let before = t.len().map_err(self.err("inbox"))?;
        t.retain(|_, at| at >= before_ms)
            .map_err(self.err("inbox"))?;
        let after = t.len().map_err(self.err("inbox"))?;
        Ok(before - after)
    }

    /// Appends to the audit log; returns the entry's sequence number. Entries are never
    /// changed or removed.
    pub fn audit(&mut self, entry: AuditEntry) -> Result<u64, StoreError> {
        let bytes = self.encode("audit", &entry)?;
        let mut t = self
            .txn
            .open_table(AUDIT)
            .map_err(self.table_err("audit"))?;
        let seq = t
            .last()
            .map_err(self.err("audit"))?
            .map_or(0, |(k, _)| k.value())
            + 1;
        t.insert(seq, bytes.as_slice()).map_err(self.err("audit"))?;
        drop(t);
        let mut idx = self
            .txn
            .open_table(AUDIT_BY_WHO)
            .map_err(self.table_err("audit_by_who"))?;
        idx.insert((entry.who.as_str(), entry.when_ms, seq), ())
            .map_err(self.err("audit_by_who"))?;
        Ok(seq)
    }
}
