//! The store: one redb file per daemon holding passages and everything they are judged against.
//!
//! This module owns the file: its tables and indexes, the encoding of values (a schema version
//! byte + JSON), migrations between schema versions, integrity checks, backups and exports, and
//! the validation and application of platform data (registrations, release documents, control
//! orders, parameters), and alarms with their state (raised, repeated, acknowledged, cleared). It knows nothing of the bus, lanes or plugins: callers hand it records
//! and outbox messages, and it serves look-ups to rules through [`StoreLookups`]. It does not
//! publish or decide, takes every record's times from its callers (only a new file's
//! `created_ms` comes from the clock), and no other module opens the redb file.
//!
//! # Tables (schema 4)
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | name | `schema_version`, `outbox_seq`, `created_ms` |
//! | `passages` | passage id | [`PassageRecord`] |
//! | `passages_by_container` / `_by_plate` / `_by_station` / `_by_lane_time` | (value, started_ms, id) | () |
//! | `passages_by_document` | (kind, number, started_ms, id) | () |
//! | `vehicle_balances` | plate | entries − exits (i64) |
//! | `vehicles` | plate | [`Vehicle`](kakou_plugin_sdk::model::Vehicle) |
//! | `vehicles_by_tag` / `vehicles_by_foreign_plate` | EPC / HK-Macau plate | plate |
//! | `drivers` | driver id | [`TruckDriver`](kakou_plugin_sdk::model::TruckDriver) |
//! | `drivers_by_card` | card UID | driver id |
//! | `enterprises` / `stations` | code | the registration |
//! | `documents` | number | [`Document`](kakou_plugin_sdk::model::Document) |
//! | `documents_by_container` / `_by_plate` (multimap) | container / plate | numbers |
//! | `parameters` | (name, version) | [`ParameterVersion`] |
//! | `control_orders` | order id | [`ControlOrderRecord`] |
//! | `control_orders_by_subject` (multimap) | (kind, subject) | order ids |
//! | `equipment` | (lane, device) | [`Equipment`](crate::config::Equipment) |
//! | `outbox` | message id | [`OutboxMessage`] waiting for its acknowledgement |
//! | `outbox_done` | message id | [`OutboxMessage`] delivered (the last 100,000, with their times) |
//! | `inbox` | received message id | applied at (ms) |
//! | `requests` | operator request id, `platform:`message id | [`StoredReply`]: the first answer (a platform message's report), given again to a retry |
//! | `alarms` | alarm id | [`AlarmRecord`]: raised (first and last time, count of repeats), acknowledged, cleared |
//! | `alarms_by_time` | (first raised ms, id) | () |
//! | `alarms_open` | code, lane, device, passage | alarm id, while not cleared |
//! | `audit` | sequence (1, 2, …) | [`AuditEntry`] |
//! | `audit_by_who` | (who, when_ms, seq) | () |
//!
//! Every write is one redb transaction committed with `Durability::Immediate`, so a state
//! change, its index entries, its outbox message and its audit entry reach the disk together
//! or not at all.
//!
//! # Writing: the [`Writer`] in the daemon, [`Store::write`] elsewhere
//!
//! Inside the daemon every write goes through the [`Writer`]: one OS thread that owns all
//! writes, takes the jobs queued by lanes, the outbox and operators in order, runs as many as
//! are waiting (up to [`MAX_BATCH`]) in one transaction and answers each after the commit
//! that holds it. Three reasons. redb allows one write transaction at a time anyway, so
//! writers on several threads only queue on its lock. A durable commit costs the same fsyncs
//! however much it holds, so concurrent lanes sharing one commit (group commit) multiply
//! throughput instead of each paying for its own. And a commit blocks for those fsyncs,
//! which must never happen on the async executor's worker threads, where it would stall
//! every other task of the thread. A write's answer still means "on disk", so a lane lifts a
//! barrier only once its passage is stored.
//!
//! [`Store::write`] commits one closure alone, on the calling thread: for CLI tools, tests
//! and start-up work (opening and migrating a file) where nothing else writes. Its writes
//! still serialise with the Writer's on redb's lock, so mixing them is safe, only slower.
//!
//! # Sharing the file
//!
//! The daemon opens the file in redb's `SingleWriter` mode: it is the one writer, and other
//! processes may open the same file read-only at the same time and follow its commits. That is
//! what lets `kakou store backup`, `check` and `export` run beside a live daemon: each takes
//! one read transaction, a consistent snapshot that never blocks the daemon. The price is that
//! redb always commits in two phases (two fsyncs) in this mode; [`StoreOptions::shared`] turns
//! it off for a process that wants the file to itself.

mod check;
mod copy;
mod error;
mod lookups;
pub mod platform;
mod read;
mod records;
pub mod sample;
mod schema;
mod write;
mod writer;

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{
    Builder, ConcurrencyMode, Database, DatabaseError, ReadOnlyDatabase, ReadableDatabase,
    ReadableTable,
};

pub use check::{CheckReport, Problem};
pub use copy::{BackupReport, export_tables, exportable_tables};
pub use error::StoreError;
pub use lookups::StoreLookups;
pub use platform::{
    ApplyOptions, ImportReport, Origin, PlatformBatch, Record, RecordKind, Rejection,
};
pub use read::{PassageIndex, Reader, Snapshot, foreign_plate_key, hex_key};
pub use records::*;
pub use schema::{OLDEST_SCHEMA, RECORD_TABLES, SCHEMA_VERSION, TABLES};
pub use write::WriteTx;
pub use writer::{LAZY_HOLD, MAX_BATCH, Writer, WriterStats};

use read::Txn;
use schema::*;

/// How to open a store for writing.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Let other processes open the file read-only while this one writes (redb
    /// `SingleWriter`); needed for backups, checks and exports of a running daemon. On by
    /// default. Off, the file is locked whole (`ExclusiveWriter`) and commits are one-phase.
    pub shared: bool,
    /// redb page cache, bytes.
    pub cache_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            shared: true,
            cache_bytes: 64 << 20,
        }
    }
}

enum Db {
    Rw(Database),
    Ro(ReadOnlyDatabase),
}

struct Inner {
    db: Db,
    path: Arc<Path>,
}

/// The store: a handle on one redb file. Cheap to clone and share between threads; writes
/// are serialised by redb (one write transaction at a time), reads never wait.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("writable", &self.is_writable())
            .finish()
    }
}

fn open_error(path: &Path, e: DatabaseError) -> StoreError {
    match e {
        DatabaseError::DatabaseAlreadyOpen => StoreError::Busy {
            path: path.to_path_buf(),
        },
        DatabaseError::RepairAborted => StoreError::NeedsRecovery {
            path: path.to_path_buf(),
        },
        e => StoreError::Open {
            path: path.to_path_buf(),
            source: Box::new(e),
        },
    }
}

fn builder(options: &StoreOptions) -> Builder {
    let mut b = Builder::new();
    b.set_cache_size(options.cache_bytes);
    b.set_concurrency_mode(if options.shared {
        ConcurrencyMode::SingleWriter
    } else {
        ConcurrencyMode::ExclusiveWriter
    });
    b
}

impl Store {
    /// Opens the store at `path` for writing, creating it (and its folder) if needed and
    /// migrating an older schema. A file from a newer kakou is refused.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Store::open_with(path, &StoreOptions::default())
    }

    /// [`Store::open`] with options.
    pub fn open_with(path: impl AsRef<Path>, options: &StoreOptions) -> Result<Store, StoreError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
                path: dir.to_path_buf(),
                source: e,
            })?;
        }
        let db = builder(options)
            .create(path)
            .map_err(|e| open_error(path, e))?;
        let store = Store {
            inner: Arc::new(Inner {
                db: Db::Rw(db),
                path: Arc::from(path),
            }),
        };
        store.prepare()?;
        Ok(store)
    }

    /// Opens an existing store read-only, beside a daemon that may be writing it. Nothing is
    /// migrated: older values are upgraded as they are read. A file that was not closed cleanly
    /// and has no writer to recover it is refused ([`StoreError::NeedsRecovery`]); see
    /// [`Store::open_for_reading`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref();
        if let Err(e) = std::fs::metadata(path) {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                source: e,
            });
        }
        let db = builder(&StoreOptions::default())
            .open_read_only(path)
            .map_err(|e| open_error(path, e))?;
        let store = Store {
            inner: Arc::new(Inner {
                db: Db::Ro(db),
                path: Arc::from(path),
            }),
        };
        store.check_version()?;
        Ok(store)
    }

    /// Opens a store read-only; when it needs recovery and no process holds it, recovers it
    /// first (redb's repair, which changes no record) and opens it again. What the CLI uses.
    pub fn open_for_reading(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref();
        match Store::open_read_only(path) {
            Err(StoreError::NeedsRecovery { .. }) => {
                Store::recover(path)?;
                Store::open_read_only(path)
            }
            other => other,
        }
    }

    /// Lets redb recover a file that was not closed cleanly (a crash, a power cut), without
    /// touching its schema.
    pub fn recover(path: &Path) -> Result<(), StoreError> {
        let db = builder(&StoreOptions::default())
            .open(path)
            .map_err(|e| open_error(path, e))?;
        db.close().map_err(|e| open_error(path, e))
    }

    /// Runs redb's own integrity check (every page checksum) on a file no process holds.
    /// Returns false when redb found damage and repaired it.
    pub fn verify_file(path: &Path) -> Result<bool, StoreError> {
        let mut db = builder(&StoreOptions::default())
            .open(path)
            .map_err(|e| open_error(path, e))?;
        let ok = db.check_integrity().map_err(|e| open_error(path, e))?;
        db.close().map_err(|e| open_error(path, e))?;
        Ok(ok)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether this handle can write.
    pub fn is_writable(&self) -> bool {
        matches!(self.inner.db, Db::Rw(_))
    }

    /// A consistent view of the store as of now. It never blocks writers; keep it short-lived
    /// (it holds on to the pages it sees).
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let path = &self.inner.path;
        let txn = match &self.inner.db {
            Db::Rw(db) => db.begin_read(),
            Db::Ro(db) => db.begin_read(),
        }
        .map_err(|e| StoreError::db(path, "transaction", e))?;
        Ok(Reader {
            txn: Txn::Read(txn),
            path: path.clone(),
        })
    }

    /// Runs `f` in one write transaction and commits it durably (`Durability::Immediate`) when
    /// `f` returns `Ok`. When `f` fails nothing is written. It blocks the calling thread for
    /// the commit's fsyncs: inside the daemon, write through the [`Writer`] instead.
    ///
    /// ```no_run
    /// # use kakou_host::store::*;
    /// # fn demo(store: &Store, rec: &PassageRecord) -> Result<(), StoreError> {
    /// store.write(|tx| {
    ///     tx.put_passage(rec)?;
    ///     tx.outbox_push(&OutboxMessage::new("kakou/site/lane/L01/passage", b"{}".to_vec(), 0))?;
    ///     Ok::<_, StoreError>(())
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteTx) -> Result<T, E>,
    ) -> Result<T, E> {
        let path = &self.inner.path;
        let Db::Rw(db) = &self.inner.db else {
            return Err(StoreError::ReadOnly {
                path: path.to_path_buf(),
            }
            .into());
        };
        let mut tx =
            WriteTx::begin(db, path).map_err(|e| StoreError::db(path, "transaction", e))?;
        let out = f(&mut tx)?;
        tx.txn
            .commit()
            .map_err(|e| StoreError::db(path, "commit", e))?;
        Ok(out)
    }

    // ---- shortcuts: one snapshot per call ----

    /// See [`Reader::passage`].
    pub fn passage(&self, id: &str) -> Result<Option<PassageRecord>, StoreError> {
        self.snapshot()?.passage(id)
    }

    /// See [`Reader::passages_by_container`].
    pub fn passages_by_container(&self, number: &str) -> Result<Vec<PassageRecord>, StoreError> {
        self.snapshot()?.passages_by_container(number)
    }

    /// See [`Reader::passages_by_plate`].
    pub fn passages_by_plate(&self, plate: &str) -> Result<Vec<PassageRecord>, StoreError> {
        self.snapshot()?.passages_by_plate(plate)
    }

    /// See [`Reader::passages_by_station`].
    pub fn passages_by_station(&self, station: &str) -> Result<Vec<PassageRecord>, StoreError> {
        self.snapshot()?.passages_by_station(station)
    }

    /// See [`Reader::passages_by_document`].
    pub fn passages_by_document(
        &self,
        kind: &str,
        number: &str,
    ) -> Result<Vec<PassageRecord>, StoreError> {
        self.snapshot()?.passages_by_document(kind, number)
    }

    /// See [`Reader::passages_by_lane_between`].
    pub fn passages_by_lane_between(
        &self,
        lane: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<PassageRecord>, StoreError> {
        self.snapshot()?
            .passages_by_lane_between(lane, from_ms, to_ms)
    }

    /// See [`Reader::outbox_pending`].
    pub fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.snapshot()?.outbox_pending(limit)
    }

    /// Delivers several acknowledged messages in one transaction; returns how many were
    /// still waiting.
    pub fn outbox_deliver_many(&self, ids: &[u64], at_ms: i64) -> Result<usize, StoreError> {
        self.write(|tx| {
            let mut n = 0;
            for &id in ids {
                n += usize::from(tx.outbox_deliver(id, at_ms)?);
            }
            Ok(n)
        })
    }

    /// Look-ups for rules, as of `now_ms`, on one snapshot.
    pub fn lookups(&self, now_ms: i64) -> Result<StoreLookups, StoreError> {
        StoreLookups::new(self, now_ms)
    }

    // ---- opening ----

    fn check_version(&self) -> Result<Option<u64>, StoreError> {
        let snap = self.snapshot()?;
        let version = snap.schema_version()?;
        let path = self.path();
        match version {
            Some(v) if v > SCHEMA_VERSION => Err(StoreError::NewerSchema {
                path: path.to_path_buf(),
                found: v,
                supported: SCHEMA_VERSION,
            }),
            Some(v) if v < OLDEST_SCHEMA => Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                table: "meta",
                key: META_SCHEMA.into(),
                reason: format!("unknown schema version {v}"),
            }),
            Some(v) => Ok(Some(v)),
            None => {
                let Txn::Read(txn) = &snap.txn else {
                    return Ok(None);
                };
                let tables = txn
                    .list_tables()
                    .map_err(|e| StoreError::db(path, "meta", e))?
                    .count()
                    + txn
                        .list_multimap_tables()
                        .map_err(|e| StoreError::db(path, "meta", e))?
                        .count();
                if tables == 0 && self.is_writable() {
                    // A new, empty file.
                    return Ok(None);
                }
                Err(StoreError::NotAStore {
                    path: path.to_path_buf(),
                })
            }
        }
    }

    /// Creates a new file's tables, or migrates an older file, in one transaction.
    fn prepare(&self) -> Result<(), StoreError> {
        let version = self.check_version()?;
        if version == Some(SCHEMA_VERSION) {
            return Ok(());
        }
        self.write(|tx| {
            // Checked again inside the transaction: another writer cannot have raced us (redb
            // allows one), but the read above was a separate transaction.
            let now = tx.read().schema_version()?;
            create_tables(&tx.txn).map_err(|(table, e)| StoreError::db(&tx.path, table, e))?;
            match now {
                None => {
                    let created = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    let mut meta = tx
                        .txn
                        .open_table(META)
                        .map_err(|e| StoreError::db(&tx.path, "meta", e))?;
                    meta.insert(META_SCHEMA, SCHEMA_VERSION)
                        .map_err(|e| StoreError::db(&tx.path, "meta", e))?;
                    meta.insert(META_CREATED, created)
                        .map_err(|e| StoreError::db(&tx.path, "meta", e))?;
                }
                Some(mut v) => {
                    while v < SCHEMA_VERSION {
                        match v {
                            1 => migrate_1_to_2(tx)?,
                            // Schemas 3 and 4 only added tables (created above).
                            2 | 3 => {}
                            _ => unreachable_version(&tx.path, v)?,
                        }
                        v += 1;
                    }
                    let mut meta = tx
                        .txn
                        .open_table(META)
                        .map_err(|e| StoreError::db(&tx.path, "meta", e))?;
                    meta.insert(META_SCHEMA, SCHEMA_VERSION)
                        .map_err(|e| StoreError::db(&tx.path, "meta", e))?;
                }
            }
            Ok(())
        })
    }
}

fn unreachable_version(path: &Path, v: u64) -> Result<(), StoreError> {
    Err(StoreError::Corrupt {
        path: path.to_path_buf(),
        table: "meta",
        key: META_SCHEMA.into(),
        reason: format!("no migration from schema version {v}"),
    })
}

/// Schema 1 → 2: rewrites every passage in the new shape and builds the vehicle balance
/// counters from them (schema 1 had none). Index keys did not change.
fn migrate_1_to_2(tx: &mut WriteTx) -> Result<(), StoreError> {
    const BATCH: usize = 1000;
    let path: PathBuf = tx.path.to_path_buf();
    let db = |table: &'static str| {
        let path = path.clone();
        move |e: redb::StorageError| StoreError::db(&path, table, e)
    };
    let mut balances: std::collections::BTreeMap<String, i64> = Default::default();
    let mut after: Option<String> = None;
    loop {
        let mut batch: Vec<(String, PassageRecord)> = Vec::with_capacity(BATCH);
        {
            let t = tx
                .txn
                .open_table(PASSAGES)
                .map_err(|e| StoreError::db(&path, "passages", e))?;
            let range = match &after {
                None => t.range::<&str>(..),
                Some(a) => t.range::<&str>((Bound::Excluded(a.as_str()), Bound::Unbounded)),
            }
            .map_err(db("passages"))?;
            for item in range.take(BATCH) {
                let (k, v) = item.map_err(db("passages"))?;
                let rec: PassageRecord =
                    decode("passages", v.value()).map_err(|reason| StoreError::Corrupt {
                        path: path.clone(),
                        table: "passages",
                        key: k.value().to_owned(),
                        reason,
                    })?;
                batch.push((k.value().to_owned(), rec));
            }
        }
        let Some((last, _)) = batch.last() else { break };
        after = Some(last.clone());
        let mut t = tx
            .txn
            .open_table(PASSAGES)
            .map_err(|e| StoreError::db(&path, "passages", e))?;
        for (id, rec) in &batch {
            let bytes = encode(rec).map_err(|e| StoreError::Invalid {
                path: path.clone(),
                table: "passages",
                reason: format!("{id}: cannot encode the migrated record: {e}"),
            })?;
            t.insert(id.as_str(), bytes.as_slice())
                .map_err(db("passages"))?;
            if let Some((plate, d)) = rec.movement() {
                *balances.entry(plate).or_default() += d;
            }
        }
    }
    let mut t = tx
        .txn
        .open_table(BALANCES)
        .map_err(|e| StoreError::db(&path, "vehicle_balances", e))?;
    for (plate, n) in balances.into_iter().filter(|(_, n)| *n != 0) {
        t.insert(plate.as_str(), n)
            .map_err(db("vehicle_balances"))?;
    }
    Ok(())
}

#[cfg(test)]
mod alarm_tests;
#[cfg(test)]
mod tests;
