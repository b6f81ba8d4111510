//! Host bindings generated from `plugin-sdk/wit`, and their mirror to the SDK's model types.
//!
//! Both worlds share the `types` and `log` interfaces; the rules bindings reuse the driver
//! bindings' modules for them so each WIT type has exactly one Rust type on the host.

#![allow(missing_docs, unused_qualifications, clippy::all)]

pub(crate) mod driver_world {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit",
        world: "driver",
        imports: { default: trappable },
    });
}

pub(crate) mod rules_world {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit",
        world: "rules",
        imports: { default: trappable },
        with: {
            "kakou:plugin/types": super::driver_world::kakou::plugin::types,
            "kakou:plugin/log": super::driver_world::kakou::plugin::log,
        },
    });
}

pub(crate) use driver_world::exports::kakou::plugin::decoding as wit_decoding;
pub(crate) use driver_world::kakou::plugin::log as wit_log;
pub(crate) use driver_world::kakou::plugin::types as wit_types;
pub(crate) use rules_world::exports::kakou::plugin::evaluation as wit_evaluation;
pub(crate) use rules_world::kakou::plugin::controls as wit_controls;
pub(crate) use rules_world::kakou::plugin::documents as wit_documents;
pub(crate) use rules_world::kakou::plugin::history as wit_history;
pub(crate) use rules_world::kakou::plugin::parameters as wit_parameters;
pub(crate) use rules_world::kakou::plugin::passage as wit_passage;
pub(crate) use rules_world::kakou::plugin::registrations as wit_registrations;

kakou_plugin_sdk::__mirror_types!(wit_types, wit_log);
kakou_plugin_sdk::__mirror_decoding!(wit_decoding);
kakou_plugin_sdk::__mirror_rules!(
    wit_passage,
    wit_registrations,
    wit_documents,
    wit_controls,
    wit_evaluation
);
