//! Driver world bindings and the [`Driver`] adapter.

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::driver::{Config, Driver};
use crate::mirror::Mirror;
use crate::model;

#[allow(missing_docs, unsafe_code, unused_qualifications, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "driver",
        pub_export_macro: true,
        export_macro_name: "__export_driver_world",
        default_bindings_module: "kakou_plugin_sdk::guest::driver::bindings",
    });
}

use bindings::exports::kakou::plugin::decoding as d;
use bindings::kakou::plugin::log as l;
use bindings::kakou::plugin::types as t;

crate::__mirror_types!(t, l);
crate::__mirror_decoding!(d);

/// Exports a [`Driver`] type as the plugin's decoder.
#[doc(hidden)]
pub struct DriverExport<T>(PhantomData<T>);

/// One device's decoder behind the resource handle.
#[doc(hidden)]
pub struct DecoderCell<T>(RefCell<T>);

impl<T: Driver> d::Guest for DriverExport<T> {
    type Decoder = DecoderCell<T>;

    fn describe() -> d::DriverDescription {
        T::describe().mirror()
    }

    fn open(config: Vec<t::Setting>) -> Result<d::Decoder, String> {
        let settings: Vec<model::Setting> = config.mirror();
        let config = Config::new(settings, &T::describe().settings)?;
        let driver = T::open(&config)?;
        Ok(d::Decoder::new(DecoderCell(RefCell::new(driver))))
    }
}

impl<T: Driver> d::GuestDecoder for DecoderCell<T> {
    fn feed(&self, data: Vec<u8>) -> t::FeedOutput {
        self.0.borrow_mut().feed(&data).mirror()
    }

    fn drain(&self) -> Vec<u8> {
        self.0.borrow_mut().drain()
    }

    fn poll(&self) -> Option<Vec<u8>> {
        self.0.borrow_mut().poll()
    }

    fn encode(&self, command: t::Command) -> Result<Vec<u8>, String> {
        let command: model::Command = command.mirror();
        self.0.borrow_mut().encode(&command)
    }
}

/// Writes a line to the host's log from a driver.
pub fn log(level: model::Level, message: &str) {
    l::log(level.mirror(), message);
}

/// Exports a type implementing [`Driver`](crate::Driver) as this plugin's driver.
///
/// ```ignore
/// kakou_plugin_sdk::export_driver!(MyScale);
/// ```
#[macro_export]
macro_rules! export_driver {
    ($driver:ty) => {
        // Only a wasm build exports the world: native builds (tests) keep the plain Rust.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __KakouDriverExport = $crate::guest::driver::DriverExport<$driver>;
            $crate::guest::driver::bindings::__export_driver_world!(
                __KakouDriverExport with_types_in $crate::guest::driver::bindings
            );
        };
    };
}
