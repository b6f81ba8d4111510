//! Registrations, release documents and control orders that rules look up (WIT interfaces
//! `registrations`, `documents`, `controls`).

use super::{CargoKind, Direction, Outcome, choice, record};

choice! {
    /// Standing of a transport enterprise.
    pub enum EnterpriseStatus {
        /// May operate.
        #[default]
        Active,
        /// Temporarily barred.
        Suspended,
        /// Permanently barred.
        Revoked,
    }
}

record! {
    /// A registered transport enterprise.
    pub struct Enterprise {
        /// Enterprise code.
        pub code: String,
        /// Name.
        pub name: String,
        /// Standing.
        pub status: EnterpriseStatus,
    }
}

record! {
    /// A registered vehicle.
    pub struct Vehicle {
        /// Mainland plate.
        pub plate: String,
        /// E-plate tag bound to it.
        pub tag_epc: Option<String>,
        /// Owning enterprise code.
        pub enterprise: String,
        /// Registered tare.
        pub tare_kg: Option<f64>,
        /// Guangdong–Hong Kong/Macau two-plate vehicle.
        pub two_plate: bool,
        /// Its Hong Kong or Macau plate.
        pub foreign_plate: Option<String>,
        /// Vehicle customs code.
        pub customs_code: Option<String>,
        /// Registration in force.
        pub active: bool,
    }
}

record! {
    /// A registered truck driver.
    pub struct TruckDriver {
        /// Driver id.
        pub id: String,
        /// Name.
        pub name: String,
        /// IC card bound to the driver.
        pub card_uid: String,
        /// Employer's enterprise code.
        pub enterprise: String,
        /// Plates the driver is bound to (empty: any).
        pub vehicles: Vec<String>,
        /// Registration in force.
        pub active: bool,
    }
}

record! {
    /// A registered station or yard.
    pub struct Station {
        /// Station code.
        pub code: String,
        /// Name.
        pub name: String,
        /// Customs office code.
        pub office: String,
        /// Registration in force.
        pub active: bool,
    }
}

choice! {
    /// Kind of release document.
    pub enum DocumentKind {
        /// Transit release (转关放行).
        TransitRelease,
        /// Local clearance (本地清关).
        LocalClearance,
        /// Port evacuation (疏港).
        PortEvacuation,
        /// Bonded zone.
        Bonded,
        /// Customs declaration (报关单).
        CustomsDeclaration,
        /// Anything else.
        #[default]
        Other,
    }
}

choice! {
    /// Life-cycle state of a document.
    pub enum DocumentStatus {
        /// Valid for passage.
        #[default]
        Open,
        /// Already used at a gate.
        Used,
        /// Written off.
        WrittenOff,
        /// Cancelled.
        Cancelled,
    }
}

record! {
    /// A release document.
    pub struct Document {
        /// Kind.
        pub kind: DocumentKind,
        /// Number.
        pub number: String,
        /// Import or export.
        pub direction: Direction,
        /// Cargo type.
        pub cargo: CargoKind,
        /// Station / yard.
        pub station: String,
        /// Containers covered.
        pub containers: Vec<String>,
        /// Vehicle named on it.
        pub plate: Option<String>,
        /// Declared cargo weight.
        pub declared_kg: Option<f64>,
        /// Release time (unix ms).
        pub released_ms: Option<i64>,
        /// Transit time limit (unix ms).
        pub deadline_ms: Option<i64>,
        /// Office of departure.
        pub origin_office: Option<String>,
        /// Office of destination.
        pub destination_office: Option<String>,
        /// Life-cycle state.
        pub status: DocumentStatus,
    }
}

choice! {
    /// What a control order is on.
    pub enum SubjectKind {
        /// A container number.
        #[default]
        Container,
        /// A plate.
        Vehicle,
        /// A driver id or card.
        Driver,
    }
}

record! {
    /// A control order (布控).
    pub struct ControlOrder {
        /// Order id.
        pub id: String,
        /// What it is on.
        pub subject_kind: SubjectKind,
        /// The container number, plate or driver.
        pub subject: String,
        /// Why.
        pub reason: String,
        /// What a match demands, at least.
        pub action: Outcome,
        /// Expiry (unix ms); none = until revoked.
        pub expires_ms: Option<i64>,
    }
}

impl ControlOrder {
    /// In force at `now_ms`.
    pub fn in_force(&self, now_ms: i64) -> bool {
        self.expires_ms.is_none_or(|e| now_ms < e)
    }
}
