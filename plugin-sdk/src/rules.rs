//! What a rule author implements: [`Rules`], reading the gate's data through [`Lookups`].

use crate::model::{
    ControlOrder, Document, Enterprise, Level, Passage, RulesDescription, Station, SubjectKind,
    TruckDriver, Vehicle, Verdict,
};

/// A customs rule set. Each evaluation runs on a fresh instance, so there is no state to keep.
///
/// Export it with [`export_rules!`](crate::export_rules).
pub trait Rules: 'static {
    /// Name, version, check codes and parameters. The host checks name and version against the
    /// plugin manifest.
    fn describe() -> RulesDescription;

    /// Decides on a passage, or says why no decision is possible (the lane then asks an
    /// operator). Use `passage.now_ms` for time, never a clock.
    fn evaluate(passage: &Passage, host: &dyn Lookups) -> Result<Verdict, String>;
}

/// The gate's data, as the host serves it to rules (registrations, documents, control orders,
/// parameters, history). Each group is a capability the plugin manifest must declare.
pub trait Lookups {
    /// A vehicle by plate.
    fn vehicle(&self, plate: &str) -> Option<Vehicle>;
    /// A vehicle by its e-plate tag.
    fn vehicle_by_tag(&self, epc: &str) -> Option<Vehicle>;
    /// A driver by IC card UID.
    fn driver_by_card(&self, uid: &str) -> Option<TruckDriver>;
    /// A transport enterprise by code.
    fn enterprise(&self, code: &str) -> Option<Enterprise>;
    /// A station or yard by code.
    fn station(&self, code: &str) -> Option<Station>;
    /// Release documents covering a container.
    fn documents_by_container(&self, number: &str) -> Vec<Document>;
    /// Release documents naming a vehicle.
    fn documents_by_vehicle(&self, plate: &str) -> Vec<Document>;
    /// A document by number.
    fn document(&self, number: &str) -> Option<Document>;
    /// Control orders in force on a subject at the passage's time.
    fn control_orders(&self, kind: SubjectKind, subject: &str) -> Vec<ControlOrder>;
    /// A parameter's value.
    fn parameter(&self, name: &str) -> Option<String>;
    /// Entries minus exits of a vehicle.
    fn vehicle_balance(&self, plate: &str) -> i32;
    /// A log line.
    fn log(&self, _level: Level, _message: &str) {}

    /// A numeric parameter, with a message that names it when it is not a number.
    fn number(&self, name: &str, default: f64) -> Result<f64, String> {
        match self.parameter(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("parameter `{name}` = {v:?} is not a number")),
        }
    }
}
