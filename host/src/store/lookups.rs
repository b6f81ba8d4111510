//! [`StoreLookups`]: the store serving a rule set's look-ups, on one snapshot at one moment.

use std::sync::Mutex;

use kakou_plugin_sdk::Lookups;
use kakou_plugin_sdk::model::{
    ControlOrder, Document, Enterprise, Level, Station, SubjectKind, TruckDriver, Vehicle,
};

use super::{Snapshot, Store, StoreError};

/// Registrations, documents, control orders, parameters and vehicle balances for rules, read
/// from one snapshot (so one evaluation sees one consistent state) as of `now_ms` (control
/// orders in force are judged at that time, never by a clock).
///
/// [`Lookups`] cannot return errors: a failed read answers "nothing found" and is kept;
/// [`StoreLookups::take_error`] tells the caller afterwards, so the lane can fall back to manual
/// processing instead of trusting a verdict built on a failed read.
pub struct StoreLookups {
    snapshot: Snapshot,
    now_ms: i64,
    error: Mutex<Option<StoreError>>,
}

impl std::fmt::Debug for StoreLookups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLookups")
            .field("path", &self.snapshot.path())
            .field("now_ms", &self.now_ms)
            .finish()
    }
}

impl StoreLookups {
    /// Look-ups on a new snapshot of `store`, as of `now_ms`.
    pub fn new(store: &Store, now_ms: i64) -> Result<Self, StoreError> {
        Ok(StoreLookups {
            snapshot: store.snapshot()?,
            now_ms,
            error: Mutex::new(None),
        })
    }

    /// The moment the look-ups judge control orders at.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// A parameter's value as it stood at `at_ms` (the last version set at or before then).
    pub fn parameter_as_of(&self, name: &str, at_ms: i64) -> Option<String> {
        self.keep("parameter_history", self.snapshot.parameter_history(name))
            .into_iter()
            .rfind(|v| v.set_ms <= at_ms)
            .map(|v| v.value)
    }

    /// The first read error met so far, if any (and forgets it).
    pub fn take_error(&self) -> Option<StoreError> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn keep<T: Default>(&self, what: &str, r: Result<T, StoreError>) -> T {
        r.unwrap_or_else(|e| {
            tracing::warn!("store look-up {what} failed: {e}");
            let mut slot = self.error.lock().unwrap_or_else(|e| e.into_inner());
            slot.get_or_insert(e);
            T::default()
        })
    }
}

impl Lookups for StoreLookups {
    fn vehicle(&self, plate: &str) -> Option<Vehicle> {
        self.keep("vehicle", self.snapshot.vehicle_by_any_plate(plate))
    }

    fn vehicle_by_tag(&self, epc: &str) -> Option<Vehicle> {
        self.keep("vehicle_by_tag", self.snapshot.vehicle_by_tag(epc))
    }

    fn driver_by_card(&self, uid: &str) -> Option<TruckDriver> {
        self.keep("driver_by_card", self.snapshot.driver_by_card(uid))
    }

    fn enterprise(&self, code: &str) -> Option<Enterprise> {
        self.keep("enterprise", self.snapshot.enterprise(code))
    }

    fn station(&self, code: &str) -> Option<Station> {
        self.keep("station", self.snapshot.station(code))
    }

    fn documents_by_container(&self, number: &str) -> Vec<Document> {
        self.keep(
            "documents_by_container",
            self.snapshot.documents_by_container(number),
        )
    }

    fn documents_by_vehicle(&self, plate: &str) -> Vec<Document> {
        self.keep(
            "documents_by_vehicle",
            self.snapshot.documents_by_plate(plate),
        )
    }

    fn document(&self, number: &str) -> Option<Document> {
        self.keep("document", self.snapshot.document(number))
    }

    fn control_orders(&self, kind: SubjectKind, subject: &str) -> Vec<ControlOrder> {
        let found = self
            .snapshot
            .control_orders_in_force(kind, subject, self.now_ms);
        self.keep("control_orders", found)
            .into_iter()
            .map(|o| o.order)
            .collect()
    }

    fn parameter(&self, name: &str) -> Option<String> {
        self.keep("parameter", self.snapshot.parameter(name))
            .map(|p| p.value)
    }

    fn vehicle_balance(&self, plate: &str) -> i32 {
        // A two-plate vehicle may be read by its HK/Macau plate: count its registered plate.
        let registered = self.keep("vehicle_balance", self.snapshot.vehicle_by_any_plate(plate));
        let key = registered.map_or_else(|| plate.to_owned(), |v| v.plate);
        let n = self.keep("vehicle_balance", self.snapshot.balance(&key));
        n.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    }

    fn log(&self, level: Level, message: &str) {
        match level {
            Level::Trace => tracing::trace!(target: "kakou_host::rules", "{message}"),
            Level::Debug => tracing::debug!(target: "kakou_host::rules", "{message}"),
            Level::Info => tracing::info!(target: "kakou_host::rules", "{message}"),
            Level::Warn => tracing::warn!(target: "kakou_host::rules", "{message}"),
            Level::Error => tracing::error!(target: "kakou_host::rules", "{message}"),
        }
    }
}
