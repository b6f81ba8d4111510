//! Native test harness: run a driver or a rule set with `cargo test`, no sandbox.
//!
//! [`Dataset`] is an in-memory set of registrations, documents, control orders and parameters
//! that implements [`Lookups`]; the host also loads it from JSON for `kakou plugin eval`.
//! [`feed_split`] checks that a driver gives the same readings however its input is chunked.

use std::ops::Deref;

use crate::driver::{Config, Driver};
use crate::model::{
    ControlOrder, Document, Enterprise, FeedOutput, Level, Setting, Station, SubjectKind,
    TruckDriver, Vehicle,
};
use crate::rules::Lookups;

/// Registrations, documents, control orders and parameters held in memory.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct Dataset {
    /// Vehicles.
    pub vehicles: Vec<Vehicle>,
    /// Truck drivers.
    pub drivers: Vec<TruckDriver>,
    /// Transport enterprises.
    pub enterprises: Vec<Enterprise>,
    /// Stations and yards.
    pub stations: Vec<Station>,
    /// Release documents.
    pub documents: Vec<Document>,
    /// Control orders (expired ones are filtered by the view's time).
    pub control_orders: Vec<ControlOrder>,
    /// Parameters by name.
    pub parameters: Vec<Setting>,
    /// Entry/exit balance by plate.
    pub balances: Vec<(String, i32)>,
}

impl Dataset {
    /// A view of the data as of `now_ms` (control-order expiry is judged at that time).
    pub fn at(&self, now_ms: i64) -> DatasetView<&Dataset> {
        DatasetView { data: self, now_ms }
    }
}

/// A [`Dataset`] (borrowed or shared, e.g. `Arc<Dataset>`) seen at one moment; implements
/// [`Lookups`].
#[derive(Debug, Clone, Copy)]
pub struct DatasetView<D> {
    data: D,
    now_ms: i64,
}

impl<D: Deref<Target = Dataset>> DatasetView<D> {
    /// A view of `data` as of `now_ms`.
    pub fn new(data: D, now_ms: i64) -> Self {
        DatasetView { data, now_ms }
    }
}

impl<D: Deref<Target = Dataset>> Lookups for DatasetView<D> {
    fn vehicle(&self, plate: &str) -> Option<Vehicle> {
        self.data
            .vehicles
            .iter()
            .find(|v| v.plate == plate)
            .cloned()
    }
    fn vehicle_by_tag(&self, epc: &str) -> Option<Vehicle> {
        let epc = epc.to_ascii_uppercase();
        self.data
            .vehicles
            .iter()
            .find(|v| v.tag_epc.as_deref() == Some(&epc))
            .cloned()
    }
    fn driver_by_card(&self, uid: &str) -> Option<TruckDriver> {
        let uid = uid.to_ascii_uppercase();
        self.data
            .drivers
            .iter()
            .find(|d| d.card_uid == uid)
            .cloned()
    }
    fn enterprise(&self, code: &str) -> Option<Enterprise> {
        self.data
            .enterprises
            .iter()
            .find(|e| e.code == code)
            .cloned()
    }
    fn station(&self, code: &str) -> Option<Station> {
        self.data.stations.iter().find(|s| s.code == code).cloned()
    }
    fn documents_by_container(&self, number: &str) -> Vec<Document> {
        let docs = self.data.documents.iter();
        docs.filter(|d| d.containers.iter().any(|c| c == number))
            .cloned()
            .collect()
    }
    fn documents_by_vehicle(&self, plate: &str) -> Vec<Document> {
        let docs = self.data.documents.iter();
        docs.filter(|d| d.plate.as_deref() == Some(plate))
            .cloned()
            .collect()
    }
    fn document(&self, number: &str) -> Option<Document> {
        self.data
            .documents
            .iter()
            .find(|d| d.number == number)
            .cloned()
    }
    fn control_orders(&self, kind: SubjectKind, subject: &str) -> Vec<ControlOrder> {
        let orders = self.data.control_orders.iter();
        orders
            .filter(|o| o.subject_kind == kind && o.subject == subject && o.in_force(self.now_ms))
            .cloned()
            .collect()
    }
    fn parameter(&self, name: &str) -> Option<String> {
        self.data
            .parameters
            .iter()
            .rev()
            .find(|p| p.key == name)
            .map(|p| p.value.clone())
    }
    fn vehicle_balance(&self, plate: &str) -> i32 {
        self.data
            .balances
            .iter()
            .find(|(p, _)| p == plate)
            .map_or(0, |(_, b)| *b)
    }
    fn log(&self, _level: Level, _message: &str) {}
}

/// Opens a driver with `settings` (checked against its declared settings).
pub fn open<D: Driver>(settings: &[(&str, &str)]) -> Result<D, String> {
    let settings = settings.iter().map(|(k, v)| Setting::new(*k, v)).collect();
    D::open(&Config::new(settings, &D::describe().settings)?)
}

/// Feeds `input` in chunks of `chunk` bytes and collects everything decoded.
pub fn feed_chunks<D: Driver>(driver: &mut D, input: &[u8], chunk: usize) -> FeedOutput {
    let mut out = FeedOutput::default();
    for piece in input.chunks(chunk.max(1)) {
        let part = driver.feed(piece);
        out.readings.extend(part.readings);
        out.rejected.extend(part.rejected);
    }
    out
}

/// Feeds `input` whole, then split at every byte boundary and byte by byte, each time into a
/// freshly opened driver, and asserts that the readings are the same every time. Returns the
/// output of the whole feed.
///
/// # Panics
///
/// When the driver cannot be opened or a split changes the readings (this is a test helper).
pub fn feed_split<D: Driver>(settings: &[(&str, &str)], input: &[u8]) -> FeedOutput {
    let fresh = || open::<D>(settings).unwrap_or_else(|e| panic!("cannot open driver: {e}"));
    let whole = fresh().feed(input);
    for cut in 1..input.len() {
        let mut d = fresh();
        let mut got = d.feed(&input[..cut]).readings;
        got.extend(d.feed(&input[cut..]).readings);
        assert_eq!(
            got, whole.readings,
            "readings differ when the input is split at byte {cut}"
        );
    }
    let bytewise = feed_chunks(&mut fresh(), input, 1);
    assert_eq!(
        bytewise.readings, whole.readings,
        "readings differ when fed byte by byte"
    );
    whole
}
