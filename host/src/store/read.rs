//! Reading the store: [`Reader`] answers every query, from a snapshot (a redb read
//! transaction) or from inside a write transaction, so a write sees its own changes.

use std::borrow::Borrow;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::Arc;

use kakou_plugin_sdk::model::{Document, Enterprise, Station, SubjectKind, TruckDriver, Vehicle};
use kakou_plugin_sdk::proto::{iso6346, plate};
use redb::{
    AccessGuard, Key, MultimapTableDefinition, MultimapValue, Range, ReadOnlyMultimapTable,
    ReadOnlyTable, ReadTransaction, ReadableMultimapTable, ReadableTable, ReadableTableMetadata,
    TableDefinition, TableError, Value, WriteTransaction,
};
use serde::de::DeserializeOwned;

use super::StoreError;
use super::records::{
    AlarmRecord, AuditEntry, AuditRecord, ControlOrderRecord, OutboxEntry, OutboxMessage,
    ParameterVersion, PassageRecord, StoredReply, document_kind_key, subject_key,
    subject_kind_name,
};
use super::schema::*;
use crate::config::Equipment;

/// The transaction a [`Reader`] reads through.
pub(crate) enum Txn<'t> {
    Read(ReadTransaction),
    ReadRef(&'t ReadTransaction),
    Write(&'t WriteTransaction),
}

/// A table opened through either kind of transaction; a table a read-only snapshot lacks (an
/// older file) reads as empty.
pub(crate) enum Tbl<'t, K: Key + 'static, V: Value + 'static> {
    Read(ReadOnlyTable<K, V>),
    Write(redb::Table<'t, K, V>),
    Missing,
}

impl<K: Key + 'static, V: Value + 'static> Tbl<'_, K, V> {
    pub(crate) fn get<'a>(
        &self,
        key: impl Borrow<K::SelfType<'a>>,
    ) -> redb::Result<Option<AccessGuard<'_, V>>> {
        match self {
            Tbl::Read(t) => ReadableTable::get(t, key),
            Tbl::Write(t) => ReadableTable::get(t, key),
            Tbl::Missing => Ok(None),
        }
    }

    pub(crate) fn range<'a, KR>(
        &self,
        range: impl RangeBounds<KR> + 'a,
    ) -> redb::Result<Option<Range<'_, K, V>>>
    where
        KR: Borrow<K::SelfType<'a>> + 'a,
    {
        match self {
            Tbl::Read(t) => ReadableTable::range(t, range).map(Some),
            Tbl::Write(t) => ReadableTable::range(t, range).map(Some),
            Tbl::Missing => Ok(None),
        }
    }

    pub(crate) fn iter(&self) -> redb::Result<Option<Range<'_, K, V>>> {
        match self {
            Tbl::Read(t) => t.iter().map(Some),
            Tbl::Write(t) => t.iter().map(Some),
            Tbl::Missing => Ok(None),
        }
    }

    pub(crate) fn len(&self) -> redb::Result<u64> {
        match self {
            Tbl::Read(t) => t.len(),
            Tbl::Write(t) => t.len(),
            Tbl::Missing => Ok(0),
        }
    }

    pub(crate) fn exists(&self) -> bool {
        !matches!(self, Tbl::Missing)
    }
}

/// A multimap table opened through either kind of transaction.
pub(crate) enum MTbl<'t, K: Key + 'static, V: Key + 'static> {
    Read(ReadOnlyMultimapTable<K, V>),
    Write(redb::MultimapTable<'t, K, V>),
    Missing,
}

impl<K: Key + 'static, V: Key + 'static> MTbl<'_, K, V> {
    pub(crate) fn get<'a>(
        &self,
        key: impl Borrow<K::SelfType<'a>>,
    ) -> redb::Result<Option<MultimapValue<'_, V>>> {
        match self {
            MTbl::Read(t) => ReadableMultimapTable::get(t, key).map(Some),
            MTbl::Write(t) => ReadableMultimapTable::get(t, key).map(Some),
            MTbl::Missing => Ok(None),
        }
    }

    pub(crate) fn iter(&self) -> redb::Result<Option<redb::MultimapRange<'_, K, V>>> {
        match self {
            MTbl::Read(t) => t.iter().map(Some),
            MTbl::Write(t) => t.iter().map(Some),
            MTbl::Missing => Ok(None),
        }
    }

    pub(crate) fn len(&self) -> redb::Result<u64> {
        match self {
            MTbl::Read(t) => t.len(),
            MTbl::Write(t) => t.len(),
            MTbl::Missing => Ok(0),
        }
    }
}

/// Which index of passages to query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassageIndex {
    /// By container number (ISO 6346, normalised).
    Container,
    /// By plate: the plate read, and the registered plate the lane resolved.
    Plate,
    /// By station / yard code of the lane.
    Station,
    /// By lane id.
    Lane,
}

impl PassageIndex {
    pub(crate) fn table(self) -> TimeIndex {
        match self {
            PassageIndex::Container => P_BY_CONTAINER,
            PassageIndex::Plate => P_BY_PLATE,
            PassageIndex::Station => P_BY_STATION,
            PassageIndex::Lane => P_BY_LANE,
        }
    }

    /// The value as indexed.
    pub(crate) fn normalize(self, value: &str) -> String {
        match self {
            PassageIndex::Container => iso6346::normalize(value),
            PassageIndex::Plate => plate::normalize(value),
            PassageIndex::Station | PassageIndex::Lane => value.trim().to_owned(),
        }
    }
}

/// Reads the store at one moment: every query of every table and index.
///
/// Get one from [`Store::snapshot`](super::Store::snapshot) (a consistent view that does not
/// block writers), or from [`WriteTx::read`](super::WriteTx::read) to see a transaction's own
/// changes. Within a write transaction, each call opens and closes its tables.
pub struct Reader<'t> {
    pub(crate) txn: Txn<'t>,
    pub(crate) path: Arc<Path>,
}

/// A consistent read-only view of the store (a redb read transaction).
pub type Snapshot = Reader<'static>;

impl<'t> Reader<'t> {
    pub(crate) fn err(
        &self,
        table: &'static str,
    ) -> impl Fn(redb::StorageError) -> StoreError + '_ {
        move |e| StoreError::db(&self.path, table, e)
    }

    pub(crate) fn corrupt(&self, table: &'static str, key: &str, reason: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.to_path_buf(),
            table,
            key: key.to_owned(),
            reason,
        }
    }

    pub(crate) fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<'static, K, V>,
    ) -> Result<Tbl<'t, K, V>, StoreError> {
        let name = table_name(&def);
        let read = match &self.txn {
            Txn::Read(r) => r,
            Txn::ReadRef(r) => *r,
            Txn::Write(w) => {
                return w
                    .open_table(def)
                    .map(Tbl::Write)
                    .map_err(|e| StoreError::db(&self.path, name, e));
            }
        };
        match read.open_table(def) {
            Ok(t) => Ok(Tbl::Read(t)),
            Err(TableError::TableDoesNotExist(_)) => Ok(Tbl::Missing),
            Err(e) => Err(StoreError::db(&self.path, name, e)),
        }
    }

    pub(crate) fn multimap<K: Key + 'static, V: Key + 'static>(
        &self,
        def: MultimapTableDefinition<'static, K, V>,
    ) -> Result<MTbl<'t, K, V>, StoreError> {
        let name = multimap_name(&def);
        let read = match &self.txn {
            Txn::Read(r) => r,
            Txn::ReadRef(r) => *r,
            Txn::Write(w) => {
                return w
                    .open_multimap_table(def)
                    .map(MTbl::Write)
                    .map_err(|e| StoreError::db(&self.path, name, e));
            }
        };
        match read.open_multimap_table(def) {
            Ok(t) => Ok(MTbl::Read(t)),
            Err(TableError::TableDoesNotExist(_)) => Ok(MTbl::Missing),
            Err(e) => Err(StoreError::db(&self.path, name, e)),
        }
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Another reader on the same transaction.
    pub fn view(&self) -> Reader<'_> {
        Reader {
            txn: match &self.txn {
                Txn::Read(r) => Txn::ReadRef(r),
                Txn::ReadRef(r) => Txn::ReadRef(r),
                Txn::Write(w) => Txn::Write(w),
            },
            path: self.path.clone(),
        }
    }

    /// The file's schema version (`meta.schema_version`), if it has one.
    pub fn schema_version(&self) -> Result<Option<u64>, StoreError> {
        self.meta(META_SCHEMA)
    }

    pub(crate) fn meta(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let t = self.table(META)?;
        Ok(t.get(key).map_err(self.err("meta"))?.map(|g| g.value()))
    }

    /// A record by string key in a table of versioned JSON values.
    pub(crate) fn record<T: DeserializeOwned>(
        &self,
        def: TableDefinition<'static, &'static str, &'static [u8]>,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let name = table_name(&def);
        let t = self.table(def)?;
        let Some(g) = t.get(key).map_err(self.err(name))? else {
            return Ok(None);
        };
        decode(name, g.value())
            .map(Some)
            .map_err(|r| self.corrupt(name, key, r))
    }

    /// Every record of a string-keyed table, in key order.
    pub(crate) fn all<T: DeserializeOwned>(
        &self,
        def: TableDefinition<'static, &'static str, &'static [u8]>,
    ) -> Result<Vec<T>, StoreError> {
        let name = table_name(&def);
        let t = self.table(def)?;
        let mut out = Vec::new();
        if let Some(range) = t.iter().map_err(self.err(name))? {
            for item in range {
                let (k, v) = item.map_err(self.err(name))?;
                out.push(decode(name, v.value()).map_err(|r| self.corrupt(name, k.value(), r))?);
            }
        }
        Ok(out)
    }

    // ---- passages ----

    /// A passage by id.
    pub fn passage(&self, id: &str) -> Result<Option<PassageRecord>, StoreError> {
        self.record(PASSAGES, id)
    }

    /// Number of passages.
    pub fn passage_count(&self) -> Result<u64, StoreError> {
        self.table(PASSAGES)?.len().map_err(self.err("passages"))
    }

    /// `(started_ms, passage id)` of the passages whose `index` value is `value` and whose start
    /// time is within `from_ms..=to_ms`, oldest first.
    pub fn passage_ids(
        &self,
        index: PassageIndex,
        value: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let def = index.table();
        let name = table_name(&def);
        let value = index.normalize(value);
        let t = self.table(def)?;
        let mut out = Vec::new();
        if from_ms > to_ms {
            return Ok(out);
        }
        let lo = (value.as_str(), from_ms, "");
        let range = if to_ms == i64::MAX {
            // (value, i64::MAX, "") is excluded; nothing real starts then.
            t.range(lo..(value.as_str(), i64::MAX, ""))
        } else {
            t.range(lo..(value.as_str(), to_ms + 1, ""))
        };
        if let Some(range) = range.map_err(self.err(name))? {
            for item in range {
                let (k, _) = item.map_err(self.err(name))?;
                let (_, time, id) = k.value();
                out.push((time, id.to_owned()));
            }
        }
        Ok(out)
    }

    fn passages_of(&self, ids: Vec<(i64, String)>) -> Result<Vec<PassageRecord>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for (_, id) in ids {
            match self.passage(&id)? {
                Some(p) => out.push(p),
                None => {
                    return Err(self.corrupt(
                        "passages",
                        &id,
                        "an index names this passage but it is missing (run `kakou store check`)"
                            .into(),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Passages that carried a container, oldest first.
    pub fn passages_by_container(&self, number: &str) -> Result<Vec<PassageRecord>, StoreError> {
        let ids = self.passage_ids(PassageIndex::Container, number, i64::MIN, i64::MAX)?;
        self.passages_of(ids)
    }

    /// Passages of a plate (read, or resolved), oldest first.
    pub fn passages_by_plate(&self, plate: &str) -> Result<Vec<PassageRecord>, StoreError> {
        let ids = self.passage_ids(PassageIndex::Plate, plate, i64::MIN, i64::MAX)?;
        self.passages_of(ids)
    }

    /// Passages at a station, oldest first.
    pub fn passages_by_station(&self, station: &str) -> Result<Vec<PassageRecord>, StoreError> {
        let ids = self.passage_ids(PassageIndex::Station, station, i64::MIN, i64::MAX)?;
        self.passages_of(ids)
    }

    /// Passages of a lane that started within `from_ms..=to_ms`, oldest first.
    pub fn passages_by_lane_between(
        &self,
        lane: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<PassageRecord>, StoreError> {
        let ids = self.passage_ids(PassageIndex::Lane, lane, from_ms, to_ms)?;
        self.passages_of(ids)
    }

    /// Passages that presented, or were matched against, a document (`kind` as the platform
    /// names it: `transit-release` and `transit_release` are the same), oldest first.
    pub fn passages_by_document(
        &self,
        kind: &str,
        number: &str,
    ) -> Result<Vec<PassageRecord>, StoreError> {
        let kind = document_kind_key(kind);
        let number = number.trim();
        let t = self.table(P_BY_DOCUMENT)?;
        let name = "passages_by_document";
        let mut ids = Vec::new();
        let range =
            t.range((kind.as_str(), number, i64::MIN, "")..(kind.as_str(), number, i64::MAX, ""));
        if let Some(range) = range.map_err(self.err(name))? {
            for item in range {
                let (k, _) = item.map_err(self.err(name))?;
                let (_, _, time, id) = k.value();
                ids.push((time, id.to_owned()));
            }
        }
        drop(t);
        self.passages_of(ids)
    }

    /// [`Reader::passage_ids`] that stops after `cap` entries: enough to tell which of several
    /// indexes narrows a query most without reading any of them whole.
    pub fn passage_ids_capped(
        &self,
        index: PassageIndex,
        value: &str,
        from_ms: i64,
        to_ms: i64,
        cap: usize,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let def = index.table();
        let name = table_name(&def);
        let value = index.normalize(value);
        let t = self.table(def)?;
        let mut out = Vec::new();
        if from_ms > to_ms {
            return Ok(out);
        }
        let lo = (value.as_str(), from_ms, "");
        let range = if to_ms == i64::MAX {
            t.range(lo..(value.as_str(), i64::MAX, ""))
        } else {
            t.range(lo..(value.as_str(), to_ms + 1, ""))
        };
        if let Some(range) = range.map_err(self.err(name))? {
            for item in range.take(cap) {
                let (k, _) = item.map_err(self.err(name))?;
                let (_, time, id) = k.value();
                out.push((time, id.to_owned()));
            }
        }
        Ok(out)
    }

    /// The distinct values of a passage index (every lane, every station …), in order. It
    /// seeks from one value to the next: one look-up per value, not one per passage.
    pub fn passage_index_values(&self, index: PassageIndex) -> Result<Vec<String>, StoreError> {
        let def = index.table();
        let name = table_name(&def);
        let t = self.table(def)?;
        let mut out: Vec<String> = Vec::new();
        loop {
            // The smallest string after `last` is `last` followed by NUL.
            let lo = out.last().map_or_else(String::new, |l| format!("{l}\0"));
            let Some(mut range) = t
                .range((lo.as_str(), i64::MIN, "")..)
                .map_err(self.err(name))?
            else {
                return Ok(out);
            };
            match range.next() {
                Some(item) => {
                    let (k, _) = item.map_err(self.err(name))?;
                    out.push(k.value().0.to_owned());
                }
                None => return Ok(out),
            }
        }
    }

    /// The distinct document kinds passages were indexed under, in order (one look-up each).
    pub fn passage_document_kinds(&self) -> Result<Vec<String>, StoreError> {
        let name = "passages_by_document";
        let t = self.table(P_BY_DOCUMENT)?;
        let mut out: Vec<String> = Vec::new();
        loop {
            let lo = out.last().map_or_else(String::new, |l| format!("{l}\0"));
            let Some(mut range) = t
                .range((lo.as_str(), "", i64::MIN, "")..)
                .map_err(self.err(name))?
            else {
                return Ok(out);
            };
            match range.next() {
                Some(item) => {
                    let (k, _) = item.map_err(self.err(name))?;
                    out.push(k.value().0.to_owned());
                }
                None => return Ok(out),
            }
        }
    }

    /// `(started_ms, passage id)` of passages that presented, or were matched against, a
    /// document of `kind` (any number, or `number` when given) and started within
    /// `from_ms..=to_ms`, oldest first, each passage once; at most `cap` index entries are
    /// read.
    pub fn passage_ids_by_document(
        &self,
        kind: &str,
        number: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        cap: usize,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let name = "passages_by_document";
        let kind = document_kind_key(kind);
        let t = self.table(P_BY_DOCUMENT)?;
        let mut out = Vec::new();
        if from_ms > to_ms {
            return Ok(out);
        }
        let range = match number.map(str::trim) {
            Some(n) => {
                let lo = (kind.as_str(), n, from_ms, "");
                if to_ms == i64::MAX {
                    t.range(lo..(kind.as_str(), n, i64::MAX, ""))
                } else {
                    t.range(lo..(kind.as_str(), n, to_ms + 1, ""))
                }
            }
            None => {
                let hi = format!("{kind}\0");
                t.range((kind.as_str(), "", i64::MIN, "")..(hi.as_str(), "", i64::MIN, ""))
            }
        };
        // Without a number, a passage is listed once per number of the kind it carried.
        let mut seen = std::collections::HashSet::new();
        if let Some(range) = range.map_err(self.err(name))? {
            for item in range {
                if out.len() >= cap {
                    break;
                }
                let (k, _) = item.map_err(self.err(name))?;
                let (_, _, time, id) = k.value();
                if (from_ms..=to_ms).contains(&time) && seen.insert((time, id.to_owned())) {
                    out.push((time, id.to_owned()));
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// A full scan of the passages table: every record for which `keep` is true, in id order.
    /// This is what an index saves; the benchmark compares the two.
    pub fn passages_scan(
        &self,
        mut keep: impl FnMut(&PassageRecord) -> bool,
    ) -> Result<Vec<PassageRecord>, StoreError> {
        let t = self.table(PASSAGES)?;
        let mut out = Vec::new();
        if let Some(range) = t.iter().map_err(self.err("passages"))? {
            for item in range {
                let (k, v) = item.map_err(self.err("passages"))?;
                let rec: PassageRecord = decode("passages", v.value())
                    .map_err(|r| self.corrupt("passages", k.value(), r))?;
                if keep(&rec) {
                    out.push(rec);
                }
            }
        }
        Ok(out)
    }

    /// Entries minus exits counted for a plate.
    pub fn balance(&self, plate: &str) -> Result<i64, StoreError> {
        let t = self.table(BALANCES)?;
        let plate = plate::normalize(plate);
        Ok(t.get(plate.as_str())
            .map_err(self.err("vehicle_balances"))?
            .map_or(0, |g| g.value()))
    }

    /// Every plate with a non-zero balance (e.g. two-plate vehicles not yet written off).
    pub fn balances(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let t = self.table(BALANCES)?;
        let mut out = Vec::new();
        if let Some(range) = t.iter().map_err(self.err("vehicle_balances"))? {
            for item in range {
                let (k, v) = item.map_err(self.err("vehicle_balances"))?;
                if v.value() != 0 {
                    out.push((k.value().to_owned(), v.value()));
                }
            }
        }
        Ok(out)
    }

    // ---- registrations ----

    /// A vehicle by its (mainland) plate.
    pub fn vehicle(&self, plate: &str) -> Result<Option<Vehicle>, StoreError> {
        self.record(VEHICLES, &plate::normalize(plate))
    }

    /// A vehicle by its plate, or by the Hong Kong / Macau plate of a two-plate vehicle.
    pub fn vehicle_by_any_plate(&self, text: &str) -> Result<Option<Vehicle>, StoreError> {
        if let Some(v) = self.vehicle(text)? {
            return Ok(Some(v));
        }
        let owner = self.index_str(V_BY_FOREIGN, &foreign_plate_key(text))?;
        match owner {
            Some(p) => self.vehicle(&p),
            None => Ok(None),
        }
    }

    /// A vehicle by its e-plate tag (EPC, any case).
    pub fn vehicle_by_tag(&self, epc: &str) -> Result<Option<Vehicle>, StoreError> {
        match self.index_str(V_BY_TAG, &hex_key(epc))? {
            Some(p) => self.vehicle(&p),
            None => Ok(None),
        }
    }

    pub(crate) fn index_str(
        &self,
        def: TableDefinition<'static, &'static str, &'static str>,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let name = table_name(&def);
        let t = self.table(def)?;
        Ok(t.get(key)
            .map_err(self.err(name))?
            .map(|g| g.value().to_owned()))
    }

    /// Every vehicle, by plate.
    pub fn vehicles(&self) -> Result<Vec<Vehicle>, StoreError> {
        self.all(VEHICLES)
    }

    /// A driver by id.
    pub fn driver(&self, id: &str) -> Result<Option<TruckDriver>, StoreError> {
        self.record(DRIVERS, id.trim())
    }

    /// A driver by IC card UID (any case).
    pub fn driver_by_card(&self, uid: &str) -> Result<Option<TruckDriver>, StoreError> {
        match self.index_str(D_BY_CARD, &hex_key(uid))? {
            Some(id) => self.driver(&id),
            None => Ok(None),
        }
    }

    /// Every driver, by id.
    pub fn drivers(&self) -> Result<Vec<TruckDriver>, StoreError> {
        self.all(DRIVERS)
    }

    /// A transport enterprise by code.
    pub fn enterprise(&self, code: &str) -> Result<Option<Enterprise>, StoreError> {
        self.record(ENTERPRISES, code.trim())
    }

    /// Every enterprise, by code.
    pub fn enterprises(&self) -> Result<Vec<Enterprise>, StoreError> {
        self.all(ENTERPRISES)
    }

    /// A station or yard by code.
    pub fn station(&self, code: &str) -> Result<Option<Station>, StoreError> {
        self.record(STATIONS, code.trim())
    }

    /// Every station, by code.
    pub fn stations(&self) -> Result<Vec<Station>, StoreError> {
        self.all(STATIONS)
    }

    // ---- documents ----

    /// A release document by number.
    pub fn document(&self, number: &str) -> Result<Option<Document>, StoreError> {
        self.record(DOCUMENTS, number.trim())
    }

    fn documents_via(
        &self,
        def: MultimapTableDefinition<'static, &'static str, &'static str>,
        key: &str,
    ) -> Result<Vec<Document>, StoreError> {
        let name = multimap_name(&def);
        let t = self.multimap(def)?;
        let mut numbers = Vec::new();
        if let Some(values) = t.get(key).map_err(self.err(name))? {
            for v in values {
                numbers.push(v.map_err(self.err(name))?.value().to_owned());
            }
        }
        drop(t);
        let mut out = Vec::with_capacity(numbers.len());
        for n in numbers {
            match self.document(&n)? {
                Some(d) => out.push(d),
                None => {
                    return Err(self.corrupt(
                        "documents",
                        &n,
                        format!("`{name}` names this document but it is missing"),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Release documents covering a container.
    pub fn documents_by_container(&self, number: &str) -> Result<Vec<Document>, StoreError> {
        self.documents_via(DOC_BY_CONTAINER, &iso6346::normalize(number))
    }

    /// Release documents naming a vehicle.
    pub fn documents_by_plate(&self, plate: &str) -> Result<Vec<Document>, StoreError> {
        self.documents_via(DOC_BY_PLATE, &plate::normalize(plate))
    }

    /// Every document, by number.
    pub fn documents(&self) -> Result<Vec<Document>, StoreError> {
        self.all(DOCUMENTS)
    }

    // ---- control orders ----

    /// A control order by id.
    pub fn control_order(&self, id: &str) -> Result<Option<ControlOrderRecord>, StoreError> {
        self.record(CONTROL_ORDERS, id.trim())
    }

    /// Every control order ever placed on a subject, revoked and expired ones included.
    pub fn control_orders_on(
        &self,
        kind: SubjectKind,
        subject: &str,
    ) -> Result<Vec<ControlOrderRecord>, StoreError> {
        let t = self.multimap(CO_BY_SUBJECT)?;
        let key = subject_key(kind, subject);
        let name = "control_orders_by_subject";
        let mut ids = Vec::new();
        if let Some(values) = t
            .get((subject_kind_name(kind), key.as_str()))
            .map_err(self.err(name))?
        {
            for v in values {
                ids.push(v.map_err(self.err(name))?.value().to_owned());
            }
        }
        drop(t);
        let mut out = Vec::new();
        for id in ids {
            match self.control_order(&id)? {
                Some(o) => out.push(o),
                None => {
                    return Err(self.corrupt(
                        "control_orders",
                        &id,
                        format!("`{name}` names this order but it is missing"),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Control orders on a subject in force at `now_ms` (not expired, not revoked).
    pub fn control_orders_in_force(
        &self,
        kind: SubjectKind,
        subject: &str,
        now_ms: i64,
    ) -> Result<Vec<ControlOrderRecord>, StoreError> {
        let mut all = self.control_orders_on(kind, subject)?;
        all.retain(|o| o.in_force(now_ms));
        Ok(all)
    }

    /// Every control order, by id.
    pub fn control_orders(&self) -> Result<Vec<ControlOrderRecord>, StoreError> {
        self.all(CONTROL_ORDERS)
    }

    // ---- parameters ----

    /// Every version of a parameter, oldest first.
    pub fn parameter_history(&self, name: &str) -> Result<Vec<ParameterVersion>, StoreError> {
        let t = self.table(PARAMETERS)?;
        let mut out = Vec::new();
        let range = t.range((name, 0u64)..=(name, u64::MAX));
        if let Some(range) = range.map_err(self.err("parameters"))? {
            for item in range {
                let (k, v) = item.map_err(self.err("parameters"))?;
                let (n, version) = k.value();
                out.push(
                    decode("parameters", v.value())
                        .map_err(|r| self.corrupt("parameters", &format!("{n}@{version}"), r))?,
                );
            }
        }
        Ok(out)
    }

    /// The current version of a parameter.
    pub fn parameter(&self, name: &str) -> Result<Option<ParameterVersion>, StoreError> {
        let t = self.table(PARAMETERS)?;
        let range = t.range((name, 0u64)..=(name, u64::MAX));
        let Some(mut range) = range.map_err(self.err("parameters"))? else {
            return Ok(None);
        };
        match range.next_back() {
            None => Ok(None),
            Some(item) => {
                let (k, v) = item.map_err(self.err("parameters"))?;
                let (n, version) = k.value();
                decode("parameters", v.value())
                    .map(Some)
                    .map_err(|r| self.corrupt("parameters", &format!("{n}@{version}"), r))
            }
        }
    }

    /// The current version of every parameter, by name.
    pub fn parameters(&self) -> Result<Vec<ParameterVersion>, StoreError> {
        let t = self.table(PARAMETERS)?;
        let mut out: Vec<ParameterVersion> = Vec::new();
        if let Some(range) = t.iter().map_err(self.err("parameters"))? {
            for item in range {
                let (k, v) = item.map_err(self.err("parameters"))?;
                let (n, version) = k.value();
                let p: ParameterVersion = decode("parameters", v.value())
                    .map_err(|r| self.corrupt("parameters", &format!("{n}@{version}"), r))?;
                match out.last_mut() {
                    Some(last) if last.name == p.name => *last = p,
                    _ => out.push(p),
                }
            }
        }
        Ok(out)
    }

    // ---- equipment ----

    /// The equipment file of a lane's device.
    pub fn equipment(&self, lane: &str, device: &str) -> Result<Option<Equipment>, StoreError> {
        let t = self.table(EQUIPMENT)?;
        let Some(g) = t.get((lane, device)).map_err(self.err("equipment"))? else {
            return Ok(None);
        };
        decode("equipment", g.value())
            .map(Some)
            .map_err(|r| self.corrupt("equipment", &format!("{lane}/{device}"), r))
    }

    /// Every equipment file: (lane, device, equipment).
    pub fn equipment_files(&self) -> Result<Vec<(String, String, Equipment)>, StoreError> {
        let t = self.table(EQUIPMENT)?;
        let mut out = Vec::new();
        if let Some(range) = t.iter().map_err(self.err("equipment"))? {
            for item in range {
                let (k, v) = item.map_err(self.err("equipment"))?;
                let (lane, device) = k.value();
                let e = decode("equipment", v.value())
                    .map_err(|r| self.corrupt("equipment", &format!("{lane}/{device}"), r))?;
                out.push((lane.to_owned(), device.to_owned(), e));
            }
        }
        Ok(out)
    }

    // ---- outbox, inbox, audit ----

    /// Up to `limit` messages waiting in the outbox, oldest first.
    pub fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let t = self.table(OUTBOX)?;
        let mut out = Vec::new();
        if let Some(range) = t.iter().map_err(self.err("outbox"))? {
            for item in range.take(limit) {
                let (k, v) = item.map_err(self.err("outbox"))?;
                let message: OutboxMessage = decode("outbox", v.value())
                    .map_err(|r| self.corrupt("outbox", &k.value().to_string(), r))?;
                out.push(OutboxEntry {
                    id: k.value(),
                    message,
                });
            }
        }
        Ok(out)
    }

    /// Messages waiting in the outbox.
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        self.table(OUTBOX)?.len().map_err(self.err("outbox"))
    }

    /// Up to `limit` messages still in the outbox with ids above `after`, oldest first: what
    /// the publisher reads when woken, so it never re-reads what it already holds.
    pub fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox_range(OUTBOX, "outbox", after, limit)
    }

    /// Up to `limit` delivered messages with ids above `after`, oldest first.
    pub fn outbox_delivered_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox_range(OUTBOX_DONE, "outbox_done", after, limit)
    }

    /// One message by id, waiting or delivered.
    pub fn outbox_message(&self, id: u64) -> Result<Option<OutboxMessage>, StoreError> {
        for (def, name) in [(OUTBOX, "outbox"), (OUTBOX_DONE, "outbox_done")] {
            let t = self.table(def)?;
            if let Some(g) = t.get(id).map_err(self.err(name))? {
                let m =
                    decode(name, g.value()).map_err(|r| self.corrupt(name, &id.to_string(), r))?;
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    fn outbox_range(
        &self,
        def: TableDefinition<'static, u64, &'static [u8]>,
        name: &'static str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let t = self.table(def)?;
        let mut out = Vec::new();
        if let Some(range) = t.range(after.saturating_add(1)..).map_err(self.err(name))? {
            for item in range.take(limit) {
                let (k, v) = item.map_err(self.err(name))?;
                let message: OutboxMessage = decode(name, v.value())
                    .map_err(|r| self.corrupt(name, &k.value().to_string(), r))?;
                out.push(OutboxEntry {
                    id: k.value(),
                    message,
                });
            }
        }
        Ok(out)
    }

    /// The stored answer to an operator's request id, if it was answered.
    pub fn request_answer(&self, id: &str) -> Result<Option<StoredReply>, StoreError> {
        let t = self.table(REQUESTS)?;
        match t.get(id).map_err(self.err("requests"))? {
            Some(g) => Ok(Some(
                decode("requests", g.value()).map_err(|r| self.corrupt("requests", id, r))?,
            )),
            None => Ok(None),
        }
    }

    /// [`Reader::request_answer`] decoded as the answer type it was stored from (a lane's or a
    /// site's reply, a platform report); an answer of another shape is reported as corrupt,
    /// so a caller never takes a request for unanswered because its answer does not decode.
    pub fn request_answer_as<T: DeserializeOwned>(
        &self,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        match self.request_answer(id)? {
            Some(stored) => serde_json::from_value(stored.reply)
                .map(Some)
                .map_err(|e| self.corrupt("requests", id, e.to_string())),
            None => Ok(None),
        }
    }

    /// One alarm by id.
    pub fn alarm(&self, id: &str) -> Result<Option<AlarmRecord>, StoreError> {
        let t = self.table(ALARMS)?;
        match t.get(id).map_err(self.err("alarms"))? {
            Some(g) => Ok(Some(
                decode("alarms", g.value()).map_err(|r| self.corrupt("alarms", id, r))?,
            )),
            None => Ok(None),
        }
    }

    /// Alarms not cleared (acknowledged or not), oldest first.
    pub fn open_alarms(&self) -> Result<Vec<AlarmRecord>, StoreError> {
        let t = self.table(ALARMS_OPEN)?;
        let mut ids = Vec::new();
        if let Some(range) = t.iter().map_err(self.err("alarms_open"))? {
            for item in range {
                ids.push(item.map_err(self.err("alarms_open"))?.1.value().to_owned());
            }
        }
        drop(t);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.alarm(&id)?);
        }
        out.sort_by(|a, b| (a.first_ms, &a.id).cmp(&(b.first_ms, &b.id)));
        Ok(out)
    }

    /// Alarms first raised within `from_ms..=to_ms`, in any state, oldest first.
    pub fn alarms_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<AlarmRecord>, StoreError> {
        let idx = self.table(ALARMS_BY_TIME)?;
        let mut ids = Vec::new();
        if from_ms <= to_ms {
            let range = idx.range((from_ms, "")..(to_ms.saturating_add(1), ""));
            if let Some(range) = range.map_err(self.err("alarms_by_time"))? {
                for item in range {
                    ids.push(
                        item.map_err(self.err("alarms_by_time"))?
                            .0
                            .value()
                            .1
                            .to_owned(),
                    );
                }
            }
        }
        drop(idx);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.alarm(&id)?);
        }
        Ok(out)
    }

    /// When a received message id was applied, if it was.
    pub fn inbox_seen(&self, id: &str) -> Result<Option<i64>, StoreError> {
        let t = self.table(INBOX)?;
        Ok(t.get(id).map_err(self.err("inbox"))?.map(|g| g.value()))
    }

    /// Up to `limit` audit entries from sequence number `from_seq` on.
    pub fn audit(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let t = self.table(AUDIT)?;
        let mut out = Vec::new();
        if let Some(range) = t.range(from_seq..).map_err(self.err("audit"))? {
            for item in range.take(limit) {
                let (k, v) = item.map_err(self.err("audit"))?;
                let entry: AuditEntry = decode("audit", v.value())
                    .map_err(|r| self.corrupt("audit", &k.value().to_string(), r))?;
                out.push(AuditRecord {
                    seq: k.value(),
                    entry,
                });
            }
        }
        Ok(out)
    }

    /// Audit entries by one person within `from_ms..=to_ms`, oldest first.
    pub fn audit_by_who(
        &self,
        who: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let idx = self.table(AUDIT_BY_WHO)?;
        let mut seqs = Vec::new();
        if from_ms <= to_ms {
            let range = idx.range((who, from_ms, 0u64)..=(who, to_ms, u64::MAX));
            if let Some(range) = range.map_err(self.err("audit_by_who"))? {
                for item in range {
                    seqs.push(item.map_err(self.err("audit_by_who"))?.0.value().2);
                }
            }
        }
        drop(idx);
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            out.extend(self.audit(seq, 1)?.into_iter().filter(|r| r.seq == seq));
        }
        Ok(out)
    }

    /// Number of entries in each table, in [`TABLES`] order.
    pub fn counts(&self) -> Result<Vec<(&'static str, u64)>, StoreError> {
        let mut out = Vec::new();
        macro_rules! count {
            ($($def:expr),* $(,)?) => {$(
                out.push((table_name(&$def), self.table($def)?.len().map_err(self.err(table_name(&$def)))?));
            )*};
        }
        macro_rules! count_multi {
            ($($def:expr),* $(,)?) => {$(
                out.push((multimap_name(&$def), self.multimap($def)?.len().map_err(self.err(multimap_name(&$def)))?));
            )*};
        }
        count!(
            META,
            PASSAGES,
            P_BY_CONTAINER,
            P_BY_PLATE,
            P_BY_STATION,
            P_BY_LANE
        );
        count!(
            P_BY_DOCUMENT,
            BALANCES,
            VEHICLES,
            V_BY_TAG,
            V_BY_FOREIGN,
            DRIVERS,
            D_BY_CARD
        );
        count!(ENTERPRISES, STATIONS, DOCUMENTS);
        count_multi!(DOC_BY_CONTAINER, DOC_BY_PLATE);
        count!(PARAMETERS, CONTROL_ORDERS);
        count_multi!(CO_BY_SUBJECT);
        count!(
            EQUIPMENT,
            OUTBOX,
            OUTBOX_DONE,
            INBOX,
            REQUESTS,
            ALARMS,
            ALARMS_BY_TIME,
            ALARMS_OPEN
        );
        count!(AUDIT, AUDIT_BY_WHO);
        Ok(out)
    }
}

/// A table definition's name as a `'static` string (every definition here is a constant).
pub(crate) fn table_name<K: Key + 'static, V: Value + 'static>(
    def: &TableDefinition<'static, K, V>,
) -> &'static str {
    static_name(redb::TableHandle::name(def))
}

pub(crate) fn multimap_name<K: Key + 'static, V: Key + 'static>(
    def: &MultimapTableDefinition<'static, K, V>,
) -> &'static str {
    static_name(redb::MultimapTableHandle::name(def))
}

fn static_name(name: &str) -> &'static str {
    TABLES
        .iter()
        .find(|t| **t == name)
        .copied()
        .unwrap_or("(unknown table)")
}

/// E-plate EPCs and card UIDs: hexadecimal, upper case, no spaces.
pub fn hex_key(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != ':' && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Hong Kong / Macau plates: upper case, no spaces or dashes.
pub fn foreign_plate_key(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}
