//! Vehicle: registered and active, found by plate, by e-plate tag or by the foreign plate of a
//! two-plate vehicle; the e-plate tag bound to that plate.

use crate::model::{Outcome, Passage, Vehicle, Verdict};
use crate::proto::plate;
use crate::rules::Lookups;

use super::Code;

/// The vehicle is registered and its registration is in force.
pub const REGISTERED: Code = Code::new(
    "vehicle.registered",
    Outcome::Inspect,
    "vehicle registered and active",
);
/// The e-plate tag read and the plate read belong to the same vehicle.
pub const TAG_BINDING: Code = Code::new(
    "vehicle.tag-binding",
    Outcome::Inspect,
    "e-plate tag bound to the plate read",
);

/// Who the truck is: the plate and e-plate tag read, and the registered vehicles they lead to.
///
/// Every check that needs the vehicle builds one of these, so all of them identify it the
/// same way.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VehicleId {
    /// The plate in force, normalised (`粤B12345`); `None` when no plate was read or keyed in.
    pub plate: Option<String>,
    /// The e-plate tag's EPC in force, upper case; `None` when none was read.
    pub tag: Option<String>,
    /// The vehicle registered under the plate read (the host also finds two-plate vehicles by
    /// their Hong Kong / Macau plate).
    pub by_plate: Option<Vehicle>,
    /// The vehicle the tag is bound to.
    pub by_tag: Option<Vehicle>,
}

impl VehicleId {
    /// Reads the passage's plate and tag and looks both up.
    pub fn read(passage: &Passage, host: &dyn Lookups) -> Self {
        let plate = passage
            .plate()
            .map(|p| plate::normalize(&p.text))
            .filter(|t| !t.is_empty());
        let tag = passage
            .tag()
            .map(|t| t.epc.trim().to_ascii_uppercase())
            .filter(|t| !t.is_empty());
        VehicleId {
            by_plate: plate.as_deref().and_then(|p| host.vehicle(p)),
            by_tag: tag.as_deref().and_then(|t| host.vehicle_by_tag(t)),
            plate,
            tag,
        }
    }

    /// The registered vehicle: the plate's, else the tag's. When the two disagree,
    /// [`TAG_BINDING`] fails, so this choice never passes a truck on its own.
    pub fn vehicle(&self) -> Option<&Vehicle> {
        self.by_plate.as_ref().or(self.by_tag.as_ref())
    }

    /// Neither plate nor tag was read.
    pub fn nothing_read(&self) -> bool {
        self.plate.is_none() && self.tag.is_none()
    }

    /// Every plate the truck is known by: the plate read, and the registered vehicle's
    /// mainland and foreign plates. Control orders are matched against all of them.
    pub fn plates(&self) -> Vec<String> {
        let mut out: Vec<String> = self.plate.iter().cloned().collect();
        if let Some(v) = self.vehicle() {
            out.push(plate::normalize(&v.plate));
            out.extend(v.foreign_plate.as_deref().map(plate::normalize));
        }
        let mut unique: Vec<String> = Vec::new();
        for p in out {
            if !p.is_empty() && !unique.contains(&p) {
                unique.push(p);
            }
        }
        unique
    }
}

/// Whether `v` carries the plate `text`: its mainland plate, or the Hong Kong / Macau plate of
/// a two-plate vehicle (compared after normalisation).
pub fn carries(v: &Vehicle, text: &str) -> bool {
    let text = plate::normalize(text);
    !text.is_empty()
        && (plate::normalize(&v.plate) == text
            || v.foreign_plate
                .as_deref()
                .is_some_and(|f| plate::normalize(f) == text))
}

/// How a vehicle is named in messages: `粤B12345`, or `粤Z1234港 / KT8848` for two-plate ones.
pub fn label(v: &Vehicle) -> String {
    match &v.foreign_plate {
        Some(f) if !f.is_empty() => format!("{} / {f}", v.plate),
        _ => v.plate.clone(),
    }
}

/// Records [`REGISTERED`] and, when both a plate and a tag were read, [`TAG_BINDING`].
///
/// No plate and no tag is a missing read: manual processing, or release with a backfill alarm
/// in congestion mode.
pub fn vehicle(passage: &Passage, host: &dyn Lookups, verdict: &mut Verdict) -> Result<(), String> {
    let id = VehicleId::read(passage, host);
    if let Some(policy) = REGISTERED.policy(host)? {
        registered(&id, passage, policy, verdict);
    }
    if let Some(policy) = TAG_BINDING.policy(host)? {
        tag_binding(&id, policy, verdict);
    }
    Ok(())
}

fn registered(id: &VehicleId, passage: &Passage, policy: super::Policy, verdict: &mut Verdict) {
    if id.nothing_read() {
        policy.missing_read(
            verdict,
            passage,
            "vehicle",
            "neither a plate nor an e-plate tag was read",
        );
        return;
    }
    match id.vehicle() {
        Some(v) if v.active => {
            let how = if id.by_plate.is_some() {
                "plate"
            } else {
                "e-plate tag"
            };
            policy.pass(
                verdict,
                Some(&v.plate),
                format!(
                    "vehicle {} found by {how}, registered to enterprise {}",
                    label(v),
                    v.enterprise
                ),
            );
        }
        Some(v) => policy.fail(
            verdict,
            Some(&v.plate),
            format!(
                "vehicle {} is registered, but its registration is not in force",
                label(v)
            ),
        ),
        None => {
            let mut what = Vec::new();
            if let Some(p) = &id.plate {
                what.push(format!("plate {p}"));
            }
            if let Some(t) = &id.tag {
                what.push(format!("e-plate tag {t}"));
            }
            let subject = id.plate.as_deref().or(id.tag.as_deref());
            policy.fail(
                verdict,
                subject,
                format!(
                    "no registered vehicle has {}",
                    super::documents::list(&what)
                ),
            );
        }
    }
}

fn tag_binding(id: &VehicleId, policy: super::Policy, verdict: &mut Verdict) {
    // Only a truck read both ways can show a mismatch; B/C lanes without an RFID reader
    // identify by plate alone and are not held for it.
    let (Some(plate), Some(tag)) = (&id.plate, &id.tag) else {
        return;
    };
    match (&id.by_tag, &id.by_plate) {
        (Some(t), _) if carries(t, plate) => policy.pass(
            verdict,
            Some(plate),
            format!("e-plate tag {tag} is bound to {}, the plate read", label(t)),
        ),
        (Some(t), _) => policy.fail(
            verdict,
            Some(plate),
            format!(
                "e-plate tag {tag} is bound to {}, but the plate read is {plate}",
                label(t)
            ),
        ),
        (None, Some(v)) => {
            let bound = v
                .tag_epc
                .as_deref()
                .map_or_else(|| "no tag".to_owned(), |e| format!("tag {e}"));
            policy.fail(
                verdict,
                Some(plate),
                format!(
                    "e-plate tag {tag} is not bound to any vehicle; {} is registered with {bound}",
                    label(v)
                ),
            );
        }
        // Neither resolves: REGISTERED already fails; there is no binding to compare.
        (None, None) => {}
    }
}
