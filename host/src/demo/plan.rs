//! The demo's trucks: who drives through which lane, with what, and what the operator does.
//!
//! Every truck is built from the sample platform data in the store (its registration, tare,
//! driver card and release document), so the devices show what a real truck would and the
//! rules decide on real records.

use kakou_plugin_sdk::model::{Container, Plate, Reading};

use crate::store::{Snapshot, StoreError};

/// What the operator does when a passage waits for them.
#[derive(Debug, Clone, PartialEq)]
pub enum OperatorPlan {
    /// Nothing is expected of the operator.
    None,
    /// Key in these readings (a failed read, or a B/C lane's keyed data).
    Complete(Vec<Reading>),
    /// Turn the truck away.
    Refuse(String),
    /// After the inspection: passed or not, with the findings.
    Inspected(bool, String),
}

/// One truck.
#[derive(Debug, Clone, PartialEq)]
pub struct Truck {
    /// Lane index: 0 = L01 (A), 1 = L02 (B), 2 = L03 (C).
    pub lane: usize,
    /// What this truck shows.
    pub note: String,
    /// Plate the camera reads (none on B/C lanes).
    pub plate_read: Option<(String, String)>,
    /// The registered plate (what an operator keys in).
    pub plate: String,
    /// E-plate tag.
    pub tag: Option<String>,
    /// Container as the OCR reads it (may be a misread), with ISO type and confidence.
    pub container_read: Option<(String, String, u8)>,
    /// The true container number.
    pub container: Option<String>,
    /// Gross weight on the scale, kg.
    pub gross_kg: f64,
    /// Driver's card UID.
    pub card: String,
    /// What the operator does if the passage waits (manual).
    pub on_manual: OperatorPlan,
    /// What the operator does after an inspection.
    pub on_inspect: OperatorPlan,
}

/// Why the plan cannot be made from the store.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sample data lacks a record the demo needs.
    #[error("the sample data has no {0}; import manifests/data/sample.jsonl")]
    Missing(String),
}

fn container_tare(iso: &str) -> f64 {
    if iso.starts_with('4') || iso.starts_with('L') {
        3800.0
    } else {
        2200.0
    }
}

struct Builder<'a> {
    s: &'a Snapshot,
}

impl Builder<'_> {
    /// A truck carrying `container` (or bulk when none) with `cargo_kg` loaded.
    fn truck(
        &self,
        lane: usize,
        note: &str,
        plate: &str,
        container: Option<(&str, &str)>,
        cargo_kg: f64,
    ) -> Result<Truck, PlanError> {
        let v = self
            .s
            .vehicle(plate)?
            .ok_or_else(|| PlanError::Missing(format!("vehicle {plate}")))?;
        let drivers = self.s.drivers()?;
        let driver = drivers
            .iter()
            .find(|d| d.active && d.vehicles.contains(&v.plate))
            .or_else(|| {
                drivers
                    .iter()
                    .find(|d| d.active && d.enterprise == v.enterprise && d.vehicles.is_empty())
            })
            .ok_or_else(|| PlanError::Missing(format!("driver for {plate}")))?;
        let tare = v.tare_kg.unwrap_or(15_000.0);
        let box_tare = container.map_or(0.0, |(_, iso)| container_tare(iso));
        let colour = if v.two_plate { "black" } else { "yellow" };
        Ok(Truck {
            lane,
            note: note.to_owned(),
            plate_read: (lane == 0).then(|| (v.plate.clone(), colour.to_owned())),
            plate: v.plate.clone(),
            tag: v.tag_epc.clone(),
            container_read: container
                .filter(|_| lane == 0)
                .map(|(n, iso)| (n.to_owned(), iso.to_owned(), 93)),
            container: container.map(|(n, _)| n.to_owned()),
            gross_kg: tare + box_tare + cargo_kg,
            card: driver.card_uid.clone(),
            on_manual: OperatorPlan::None,
            on_inspect: OperatorPlan::None,
        })
    }

    /// Declared cargo weight of the document covering a container or naming a plate.
    fn declared(&self, container: Option<&str>, plate: &str) -> Result<f64, PlanError> {
        let docs = match container {
            Some(c) => self.s.documents_by_container(c)?,
            None => self.s.documents_by_plate(plate)?,
        };
        Ok(docs.iter().filter_map(|d| d.declared_kg).sum())
    }
}

/// Operator keys in the container and plate (B/C lanes).
fn keyed(t: &Truck) -> OperatorPlan {
    let mut readings: Vec<Reading> = Vec::new();
    if let Some(c) = &t.container {
        readings.push(
            Container {
                number: c.clone(),
                iso_type: Some("22G1".into()),
                confidence: 100,
                ..Default::default()
            }
            .into(),
        );
    }
    readings.push(
        Plate {
            text: t.plate.clone(),
            confidence: 100,
            ..Default::default()
        }
        .into(),
    );
    OperatorPlan::Complete(readings)
}

/// The realistic mix, one round: every outcome the demo must show, across the three lanes.
pub fn round(s: &Snapshot) -> Result<Vec<Truck>, PlanError> {
    let b = Builder { s };
    let mut trucks = Vec::new();

    let clean = b.truck(
        0,
        "clean pass",
        "粤B12345",
        Some(("CSQU3054383", "22G1")),
        20_150.0,
    )?;
    trucks.push(clean.clone());

    let mut misread = b.truck(
        0,
        "container misread, keyed in by hand",
        "粤B77Q02",
        Some(("MSKU1234565", "22G1")),
        12_480.0,
    )?;
    misread.container_read = Some(("MSKU1234566".into(), "22G1".into(), 71));
    misread.on_manual = OperatorPlan::Complete(vec![
        Container {
            number: "MSKU1234565".into(),
            iso_type: Some("22G1".into()),
            confidence: 100,
            ..Default::default()
        }
        .into(),
    ]);
    trucks.push(misread);

    // Export lane B: the operator keys in container and plate.
    let declared = b.declared(Some("COSU6028454"), "粤B6N315")?;
    let mut export = b.truck(
        1,
        "export, container and plate keyed in (category B)",
        "粤B6N315",
        Some(("COSU6028454", "22G1")),
        declared + 90.0,
    )?;
    export.on_manual = keyed(&export);
    trucks.push(export);

    let mut heavy_export = b.truck(
        1,
        "export, 4 t more than declared",
        "粤B6N315",
        Some(("COSU6028454", "22G1")),
        declared + 4_000.0,
    )?;
    heavy_export.on_manual = keyed(&heavy_export);
    heavy_export.on_inspect =
        OperatorPlan::Inspected(false, "cargo exceeds the declaration".into());
    trucks.push(heavy_export);

    let mut overweight = b.truck(
        0,
        "overweight: 14.5 t over the declaration",
        "粤BH3306",
        Some(("MSCU5520188", "22G1")),
        24_000.0,
    )?;
    overweight.on_inspect =
        OperatorPlan::Inspected(false, "undeclared cargo found, goods held".into());
    trucks.push(overweight);

    let declared = b.declared(None, "粤E7Q218")?;
    let mut bulk = b.truck(
        2,
        "bulk cargo, plate keyed in (category C)",
        "粤E7Q218",
        None,
        declared - 120.0,
    )?;
    bulk.on_manual = keyed(&bulk);
    trucks.push(bulk);

    let declared = b.declared(Some("OOLU8812348"), "粤B31D86")?;
    let mut controlled = b.truck(
        0,
        "control orders on the container and the driver",
        "粤B31D86",
        Some(("OOLU8812348", "22G1")),
        declared + 40.0,
    )?;
    controlled.on_inspect = OperatorPlan::Inspected(true, "seal intact, cargo as declared".into());
    trucks.push(controlled);

    let mut stranger = clean.clone();
    stranger.note = "unregistered driver card".into();
    stranger.card = "0A1B2C3D4E".into();
    stranger.on_manual = OperatorPlan::Refuse("driver card not registered".into());
    stranger.on_inspect = OperatorPlan::Inspected(false, "driver not registered".into());
    trucks.push(stranger);

    let declared = b.declared(Some("YMLU7177331"), "粤Z1234港")?;
    trucks.push(b.truck(
        0,
        "Guangdong–Hong Kong two-plate vehicle entering",
        "粤Z1234港",
        Some(("YMLU7177331", "22G1")),
        declared + 60.0,
    )?);

    let declared = b.declared(Some("HLXU8703125"), "粤B2K590")?;
    let mut late = b.truck(
        0,
        "transit past its time limit",
        "粤B2K590",
        Some(("HLXU8703125", "22G1")),
        declared - 30.0,
    )?;
    late.on_inspect = OperatorPlan::Inspected(true, "late arrival explained, goods intact".into());
    late.on_manual = OperatorPlan::Refuse("transit time limit exceeded".into());
    trucks.push(late);

    Ok(trucks)
}
