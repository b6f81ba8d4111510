//! Field-for-field conversion between the model types and generated bindings.
//!
//! The guest bindings (wit-bindgen) and the host bindings (wasmtime) are generated from the same
//! WIT, so their types have the same names and fields as [`crate::model`]. The macros here spell
//! out that correspondence once; both sides invoke them on their own generated modules. This
//! module knows nothing of either generator.

/// Converts a value into its twin type on the other side of the sandbox.
pub trait Mirror<T> {
    /// The converted value.
    fn mirror(self) -> T;
}

macro_rules! identity {
    ($($t:ty),*) => {$(
        impl Mirror<$t> for $t {
            #[inline]
            fn mirror(self) -> $t {
                self
            }
        }
    )*};
}
identity!(bool, u8, u16, u32, u64, i8, i16, i32, i64, f32, f64, String);

impl<A: Mirror<B>, B> Mirror<Vec<B>> for Vec<A> {
    fn mirror(self) -> Vec<B> {
        self.into_iter().map(Mirror::mirror).collect()
    }
}

impl<A: Mirror<B>, B> Mirror<Option<B>> for Option<A> {
    fn mirror(self) -> Option<B> {
        self.map(Mirror::mirror)
    }
}

impl<A: Mirror<B>, B, EA: Mirror<EB>, EB> Mirror<Result<B, EB>> for Result<A, EA> {
    fn mirror(self) -> Result<B, EB> {
        self.map(Mirror::mirror).map_err(Mirror::mirror)
    }
}

/// Mirrors a record both ways, field by field.
#[doc(hidden)]
#[macro_export]
macro_rules! __mirror_record {
    ($a:ty, $b:ty { $($f:ident),* $(,)? }) => {
        impl $crate::mirror::Mirror<$b> for $a {
            fn mirror(self) -> $b {
                type T = $b;
                T { $($f: $crate::mirror::Mirror::mirror(self.$f)),* }
            }
        }
        impl $crate::mirror::Mirror<$a> for $b {
            fn mirror(self) -> $a {
                type T = $a;
                T { $($f: $crate::mirror::Mirror::mirror(self.$f)),* }
            }
        }
    };
}

/// Mirrors an enum or variant both ways, case by case.
#[doc(hidden)]
#[macro_export]
macro_rules! __mirror_cases {
    ($a:ty, $b:ty { $($unit:ident),* $(,)? } { $($data:ident),* $(,)? }) => {
        impl $crate::mirror::Mirror<$b> for $a {
            #[allow(unreachable_patterns)]
            fn mirror(self) -> $b {
                type T = $b;
                match self {
                    $(Self::$unit => T::$unit,)*
                    $(Self::$data(x) => T::$data($crate::mirror::Mirror::mirror(x)),)*
                }
            }
        }
        impl $crate::mirror::Mirror<$a> for $b {
            #[allow(unreachable_patterns)]
            fn mirror(self) -> $a {
                type T = $a;
                match self {
                    $(Self::$unit => T::$unit,)*
                    $(Self::$data(x) => T::$data($crate::mirror::Mirror::mirror(x)),)*
                }
            }
        }
    };
}

/// Mirrors every type of the WIT interface `types` (and `log`'s level) to [`crate::model`].
#[doc(hidden)]
#[macro_export]
macro_rules! __mirror_types {
    ($t:ident, $log:ident) => {
        $crate::__mirror_record!($crate::model::Setting, $t::Setting { key, value });
        $crate::__mirror_cases!($crate::model::WeightKind, $t::WeightKind { Gross, Net, Tare } {});
        $crate::__mirror_record!($crate::model::Weight, $t::Weight { kg, stable, kind, tare_kg, out_of_range });
        $crate::__mirror_cases!($crate::model::PlateColour, $t::PlateColour {
            Blue, Yellow, Green, YellowGreen, White, Black, Unknown } {});
        $crate::__mirror_record!($crate::model::Plate, $t::Plate { text, colour, confidence, char_confidence });
        $crate::__mirror_record!($crate::model::Tag, $t::Tag { epc, antenna, rssi_dbm });
        $crate::__mirror_cases!($crate::model::ContainerPosition, $t::ContainerPosition {
            Front, Rear, Single, Unknown } {});
        $crate::__mirror_record!($crate::model::Container, $t::Container { number, iso_type, position, confidence });
        $crate::__mirror_cases!($crate::model::CardKind, $t::CardKind { Iso14443a, Em4100, Other } {});
        $crate::__mirror_record!($crate::model::Card, $t::Card { uid, kind });
        $crate::__mirror_record!($crate::model::Position, $t::Position {
            lat, lon, speed_kmh, course_deg, valid, utc });
        $crate::__mirror_cases!($crate::model::SealState, $t::SealState { Locked, Unlocked, Tampered, Unknown } {});
        $crate::__mirror_record!($crate::model::Seal, $t::Seal { id, state, position });
        $crate::__mirror_record!($crate::model::Presence, $t::Presence { present, zone });
        $crate::__mirror_cases!($crate::model::StatusLevel, $t::StatusLevel { Ok, Warning, Fault } {});
        $crate::__mirror_record!($crate::model::DeviceStatus, $t::DeviceStatus { level, code, message });
        $crate::__mirror_record!($crate::model::DocumentRef, $t::DocumentRef { kind, number });
        $crate::__mirror_record!($crate::model::Raw, $t::Raw { kind, data });
        $crate::__mirror_cases!($crate::model::ReadingValue, $t::ReadingValue {} {
            Weight, Plate, Tag, Container, Card, Position, Seal, Presence, Status, Document, Raw });
        $crate::__mirror_record!($crate::model::Reading, $t::Reading { value, attributes });
        $crate::__mirror_record!($crate::model::Rejected, $t::Rejected { reason, bytes });
        $crate::__mirror_record!($crate::model::FeedOutput, $t::FeedOutput { readings, rejected });
        $crate::__mirror_record!($crate::model::CustomCommand, $t::CustomCommand { name, args });
        $crate::__mirror_cases!($crate::model::Command, $t::Command { Open, Close } { Pulse, Display, Custom });
        $crate::__mirror_record!($crate::model::SettingSpec, $t::SettingSpec { key, default_value, doc });
        $crate::__mirror_cases!($crate::model::Level, $log::Level { Trace, Debug, Info, Warn, Error } {});
    };
}

/// Mirrors the driver export (`decoding`'s description).
#[doc(hidden)]
#[macro_export]
macro_rules! __mirror_decoding {
    ($d:ident) => {
        $crate::__mirror_record!(
            $crate::model::DriverDescription,
            $d::DriverDescription {
                name,
                version,
                device_classes,
                summary,
                poll_interval_ms,
                settings
            }
        );
    };
}

/// Mirrors the rules world's types: passage, verdict, look-up records and the description.
#[doc(hidden)]
#[macro_export]
macro_rules! __mirror_rules {
    ($p:ident, $r:ident, $d:ident, $c:ident, $e:ident) => {
        $crate::__mirror_cases!($crate::model::Direction, $p::Direction { Import, Export } {});
        $crate::__mirror_cases!($crate::model::CargoKind, $p::CargoKind { Container, Bulk, Any } {});
        $crate::__mirror_cases!($crate::model::LaneCategory, $p::LaneCategory { A, B, C } {});
        $crate::__mirror_record!($crate::model::Lane, $p::Lane { id, category, direction, cargo, station });
        $crate::__mirror_cases!($crate::model::Source, $p::Source { Device, Manual, Backfill } {});
        $crate::__mirror_record!($crate::model::Observation, $p::Observation {
            device, at_ms, source, operator, superseded, reading });
        $crate::__mirror_record!($crate::model::Passage, $p::Passage {
            id, site, office, lane, started_ms, now_ms, observations, attributes });
        $crate::__mirror_cases!($crate::model::Outcome, $p::Outcome { Release, Manual, Inspect, Refuse } {});
        $crate::__mirror_cases!($crate::model::CheckResult, $p::CheckResult { Pass, Fail, Unknown } {});
        $crate::__mirror_record!($crate::model::Check, $p::Check { code, result, message, subject });
        $crate::__mirror_cases!($crate::model::Severity, $p::Severity { Info, Warning, Critical } {});
        $crate::__mirror_record!($crate::model::Alarm, $p::Alarm { code, severity, message });
        $crate::__mirror_record!($crate::model::Verdict, $p::Verdict { outcome, checks, alarms });
        $crate::__mirror_cases!($crate::model::EnterpriseStatus, $r::EnterpriseStatus {
            Active, Suspended, Revoked } {});
        $crate::__mirror_record!($crate::model::Enterprise, $r::Enterprise { code, name, status });
        $crate::__mirror_record!($crate::model::Vehicle, $r::Vehicle {
            plate, tag_epc, enterprise, tare_kg, two_plate, foreign_plate, customs_code, active });
        $crate::__mirror_record!($crate::model::TruckDriver, $r::TruckDriver {
            id, name, card_uid, enterprise, vehicles, active });
        $crate::__mirror_record!($crate::model::Station, $r::Station { code, name, office, active });
        $crate::__mirror_cases!($crate::model::DocumentKind, $d::DocumentKind {
            TransitRelease, LocalClearance, PortEvacuation, Bonded, CustomsDeclaration, Other } {});
        $crate::__mirror_cases!($crate::model::DocumentStatus, $d::DocumentStatus {
            Open, Used, WrittenOff, Cancelled } {});
        $crate::__mirror_record!($crate::model::Document, $d::Document {
            kind, number, direction, cargo, station, containers, plate, declared_kg, released_ms,
            deadline_ms, origin_office, destination_office, status });
        $crate::__mirror_cases!($crate::model::SubjectKind, $c::SubjectKind { Container, Vehicle, Driver } {});
        $crate::__mirror_record!($crate::model::ControlOrder, $c::ControlOrder {
            id, subject_kind, subject, reason, action, expires_ms });
        $crate::__mirror_record!($crate::model::RulesDescription, $e::RulesDescription {
            name, version, rule_codes, parameters });
    };
}
