//! Rules world bindings, the [`Rules`] adapter and [`Lookups`] through host imports.

use std::marker::PhantomData;

use crate::mirror::Mirror;
use crate::model;
use crate::rules::{Lookups, Rules};

#[allow(missing_docs, unsafe_code, unused_qualifications, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "rules",
        pub_export_macro: true,
        export_macro_name: "__export_rules_world",
        default_bindings_module: "kakou_plugin_sdk::guest::rules::bindings",
    });
}

use bindings::exports::kakou::plugin::evaluation as e;
use bindings::kakou::plugin::controls as c;
use bindings::kakou::plugin::documents as d;
use bindings::kakou::plugin::history as h;
use bindings::kakou::plugin::log as l;
use bindings::kakou::plugin::parameters as pm;
use bindings::kakou::plugin::passage as p;
use bindings::kakou::plugin::registrations as r;
use bindings::kakou::plugin::types as t;

crate::__mirror_types!(t, l);
crate::__mirror_rules!(p, r, d, c, e);

/// Exports a [`Rules`] type as the plugin's rule set.
#[doc(hidden)]
pub struct RulesExport<T>(PhantomData<T>);

impl<T: Rules> e::Guest for RulesExport<T> {
    fn describe() -> e::RulesDescription {
        T::describe().mirror()
    }

    fn evaluate(passage: p::Passage) -> Result<p::Verdict, String> {
        let passage: model::Passage = passage.mirror();
        T::evaluate(&passage, &HostLookups).map(Mirror::mirror)
    }
}

/// [`Lookups`] served by the host through the rules world's imports.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostLookups;

impl Lookups for HostLookups {
    fn vehicle(&self, plate: &str) -> Option<model::Vehicle> {
        r::vehicle_by_plate(plate).mirror()
    }
    fn vehicle_by_tag(&self, epc: &str) -> Option<model::Vehicle> {
        r::vehicle_by_tag(epc).mirror()
    }
    fn driver_by_card(&self, uid: &str) -> Option<model::TruckDriver> {
        r::driver_by_card(uid).mirror()
    }
    fn enterprise(&self, code: &str) -> Option<model::Enterprise> {
        r::enterprise_by_code(code).mirror()
    }
    fn station(&self, code: &str) -> Option<model::Station> {
        r::station_by_code(code).mirror()
    }
    fn documents_by_container(&self, number: &str) -> Vec<model::Document> {
        d::by_container(number).mirror()
    }
    fn documents_by_vehicle(&self, plate: &str) -> Vec<model::Document> {
        d::by_vehicle(plate).mirror()
    }
    fn document(&self, number: &str) -> Option<model::Document> {
        d::by_number(number).mirror()
    }
    fn control_orders(&self, kind: model::SubjectKind, subject: &str) -> Vec<model::ControlOrder> {
        c::active(kind.mirror(), subject).mirror()
    }
    fn parameter(&self, name: &str) -> Option<String> {
        pm::get(name)
    }
    fn vehicle_balance(&self, plate: &str) -> i32 {
        h::vehicle_balance(plate)
    }
    fn log(&self, level: model::Level, message: &str) {
        l::log(level.mirror(), message);
    }
}

/// Exports a type implementing [`Rules`](crate::Rules) as this plugin's rule set.
///
/// ```ignore
/// kakou_plugin_sdk::export_rules!(WeightCheck);
/// ```
#[macro_export]
macro_rules! export_rules {
    ($rules:ty) => {
        // Only a wasm build exports the world: native builds (tests) keep the plain Rust.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __KakouRulesExport = $crate::guest::rules::RulesExport<$rules>;
            $crate::guest::rules::bindings::__export_rules_world!(
                __KakouRulesExport with_types_in $crate::guest::rules::bindings
            );
        };
    };
}
