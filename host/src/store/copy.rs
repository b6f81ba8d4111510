//! Backups and exports, both from one snapshot.
//!
//! A backup copies every table of a read transaction into a new redb file, entry by entry.
//! We do not copy the file's bytes: a writer may be half-way through a commit, and only redb
//! knows which pages belong to the last committed state. A read transaction is exactly that
//! state, it never blocks the daemon (in `SingleWriter` mode it can come from another
//! process), and the copy comes out compacted. The copy is written to `DEST.partial` and
//! renamed when complete, so a `DEST` that exists is a whole backup.

use std::io::Write;
use std::path::{Path, PathBuf};

use redb::{Builder, Durability};
use serde_json::{Value, json};

use super::StoreError;
use super::read::{Reader, multimap_name, table_name};
use super::schema::*;

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The backup file.
    pub dest: PathBuf,
    /// Entries copied, over all tables.
    pub entries: u64,
    /// Tables copied.
    pub tables: usize,
    /// Size of the backup file.
    pub bytes: u64,
}

/// Entries per intermediate commit of the copy (the last commit is the durable one).
const COPY_BATCH: u64 = 50_000;

impl Reader<'_> {
    /// Copies this snapshot into a new redb file `dest` (which must not exist).
    pub fn backup_to(&self, dest: &Path) -> Result<BackupReport, StoreError> {
        if dest.exists() {
            return Err(StoreError::Exists {
                path: dest.to_path_buf(),
            });
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e: std::io::Error| StoreError::Io { path, source: e }
        };
        let mut partial = dest.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        if partial.exists() {
            std::fs::remove_file(&partial).map_err(io(&partial))?;
        }
        let open_err = |e: redb::DatabaseError| StoreError::Open {
            path: partial.clone(),
            source: Box::new(e),
        };
        let db = Builder::new()
            .set_cache_size(64 << 20)
            .create(&partial)
            .map_err(open_err)?;
        let db_err = |table: &'static str| {
            let p = partial.clone();
            move |e: redb::Error| StoreError::db(&p, table, e)
        };
        let mut entries = 0u64;
        let mut tables = 0usize;
        let mut txn = db
            .begin_write()
            .map_err(|e| db_err("transaction")(e.into()))?;
        txn.set_durability(Durability::None)
            .map_err(|e| db_err("transaction")(e.into()))?;

        macro_rules! copy {
            ($($def:expr),* $(,)?) => {$({
                let name = table_name(&$def);
                let src = self.table($def)?;
                if src.exists() {
                    tables += 1;
                    if let Some(range) = src.iter().map_err(self.err(name))? {
                        let mut dst = txn.open_table($def).map_err(|e| db_err(name)(e.into()))?;
                        let mut n = 0u64;
                        for item in range {
                            let (k, v) = item.map_err(self.err(name))?;
                            dst.insert(k.value(), v.value()).map_err(|e| db_err(name)(e.into()))?;
                            n += 1;
                            entries += 1;
                            if n % COPY_BATCH == 0 {
                                drop(dst);
                                txn.commit().map_err(|e| db_err("commit")(e.into()))?;
                                txn = db.begin_write().map_err(|e| db_err("transaction")(e.into()))?;
                                txn.set_durability(Durability::None)
                                    .map_err(|e| db_err("transaction")(e.into()))?;
                                dst = txn.open_table($def).map_err(|e| db_err(name)(e.into()))?;
                            }
                        }
                    }
                }
            })*};
        }
        macro_rules! copy_multi {
            ($($def:expr),* $(,)?) => {$({
                let name = multimap_name(&$def);
                let src = self.multimap($def)?;
                if let Some(range) = src.iter().map_err(self.err(name))? {
                    tables += 1;
                    let mut dst = txn.open_multimap_table($def).map_err(|e| db_err(name)(e.into()))?;
                    for item in range {
                        let (k, values) = item.map_err(self.err(name))?;
                        for v in values {
                            let v = v.map_err(self.err(name))?;
                            dst.insert(k.value(), v.value()).map_err(|e| db_err(name)(e.into()))?;
                            entries += 1;
                        }
                    }
                }
            })*};
        }
        copy!(
            META,
            PASSAGES,
            P_BY_CONTAINER,
            P_BY_PLATE,
            P_BY_STATION,
            P_BY_LANE
        );
        copy!(
            P_BY_DOCUMENT,
            BALANCES,
            VEHICLES,
            V_BY_TAG,
            V_BY_FOREIGN,
            DRIVERS,
            D_BY_CARD
        );
        copy!(
            ENTERPRISES,
            STATIONS,
            DOCUMENTS,
            PARAMETERS,
            CONTROL_ORDERS,
            EQUIPMENT
        );
        copy!(OUTBOX, OUTBOX_DONE, INBOX, REQUESTS, AUDIT, AUDIT_BY_WHO);
        copy!(ALARMS, ALARMS_BY_TIME, ALARMS_OPEN);
        copy_multi!(DOC_BY_CONTAINER, DOC_BY_PLATE, CO_BY_SUBJECT);

        txn.set_durability(Durability::Immediate)
            .map_err(|e| db_err("transaction")(e.into()))?;
        txn.commit().map_err(|e| db_err("commit")(e.into()))?;
        db.close().map_err(open_err)?;
        std::fs::rename(&partial, dest).map_err(io(dest))?;
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(dir)
        {
            // Make the rename itself durable.
            let _ = d.sync_all();
        }
        let bytes = std::fs::metadata(dest).map_err(io(dest))?.len();
        Ok(BackupReport {
            dest: dest.to_path_buf(),
            entries,
            tables,
            bytes,
        })
    }
}

/// Tables `kakou store export` can write (records, and the balance counters).
pub fn exportable_tables() -> Vec<&'static str> {
    let mut t: Vec<&'static str> = vec!["meta"];
    t.extend(RECORD_TABLES);
    t.push("vehicle_balances");
    t
}

/// Writes `tables` of a snapshot as JSON lines, `{"table": …, "key": …, "value": …}`, values
/// decoded and upgraded to the current schema. Returns the number of lines.
pub fn export_tables(
    r: &Reader<'_>,
    tables: &[&str],
    out: &mut dyn Write,
) -> Result<u64, StoreError> {
    let mut n = 0u64;
    let write_err = |e: std::io::Error| StoreError::Io {
        path: PathBuf::from("<output>"),
        source: e,
    };
    let mut line = |table: &str, key: Value, value: Value| -> Result<(), StoreError> {
        // Written by hand so that `table` comes first.
        let text = format!(
            "{{\"table\":{},\"key\":{},\"value\":{}}}\n",
            Value::from(table),
            key,
            value
        );
        out.write_all(text.as_bytes()).map_err(write_err)?;
        n += 1;
        Ok(())
    };
    let value_of = |table: &'static str, key: &str, bytes: &[u8]| -> Result<Value, StoreError> {
        decode::<Value>(table, bytes).map_err(|reason| StoreError::Corrupt {
            path: r.path().to_path_buf(),
            table,
            key: key.to_owned(),
            reason,
        })
    };
    for &table in tables {
        match table {
            "meta" => {
                let t = r.table(META)?;
                if let Some(range) = t.iter().map_err(r.err("meta"))? {
                    for item in range {
                        let (k, v) = item.map_err(r.err("meta"))?;
                        line("meta", json!(k.value()), json!(v.value()))?;
                    }
                }
            }
            "vehicle_balances" | "inbox" => {
                let def = if table == "inbox" { INBOX } else { BALANCES };
                let name = table_name(&def);
                let t = r.table(def)?;
                if let Some(range) = t.iter().map_err(r.err(name))? {
                    for item in range {
                        let (k, v) = item.map_err(r.err(name))?;
                        line(name, json!(k.value()), json!(v.value()))?;
                    }
                }
            }
            "parameters" => {
                let t = r.table(PARAMETERS)?;
                if let Some(range) = t.iter().map_err(r.err("parameters"))? {
                    for item in range {
                        let (k, v) = item.map_err(r.err("parameters"))?;
                        let (name, version) = k.value();
                        let value =
                            value_of("parameters", &format!("{name}@{version}"), v.value())?;
                        line("parameters", json!([name, version]), value)?;
                    }
                }
            }
            "equipment" => {
                let t = r.table(EQUIPMENT)?;
                if let Some(range) = t.iter().map_err(r.err("equipment"))? {
                    for item in range {
                        let (k, v) = item.map_err(r.err("equipment"))?;
                        let (lane, device) = k.value();
                        let value = value_of("equipment", &format!("{lane}/{device}"), v.value())?;
                        line("equipment", json!([lane, device]), value)?;
                    }
                }
            }
            "outbox" | "outbox_done" | "audit" => {
                let def = match table {
                    "outbox" => OUTBOX,
                    "outbox_done" => OUTBOX_DONE,
                    _ => AUDIT,
                };
                let name = table_name(&def);
                let t = r.table(def)?;
                if let Some(range) = t.iter().map_err(r.err(name))? {
                    for item in range {
                        let (k, v) = item.map_err(r.err(name))?;
                        let value = value_of(name, &k.value().to_string(), v.value())?;
                        line(name, json!(k.value()), value)?;
                    }
                }
            }
            other => {
                let def = match other {
                    "passages" => PASSAGES,
                    "vehicles" => VEHICLES,
                    "drivers" => DRIVERS,
                    "enterprises" => ENTERPRISES,
                    "stations" => STATIONS,
                    "documents" => DOCUMENTS,
                    "control_orders" => CONTROL_ORDERS,
                    "requests" => REQUESTS,
                    "alarms" => ALARMS,
                    _ => {
                        return Err(StoreError::Invalid {
                            path: r.path().to_path_buf(),
                            table: "export",
                            reason: format!(
                                "no table {other:?} to export; tables: {}",
                                exportable_tables().join(", ")
                            ),
                        });
                    }
                };
                let name = table_name(&def);
                let t = r.table(def)?;
                if let Some(range) = t.iter().map_err(r.err(name))? {
                    for item in range {
                        let (k, v) = item.map_err(r.err(name))?;
                        let value = value_of(name, k.value(), v.value())?;
                        line(name, json!(k.value()), value)?;
                    }
                }
            }
        }
    }
    Ok(n)
}
