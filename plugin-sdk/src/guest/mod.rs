//! Guest side of the contract: wit-bindgen bindings and the adapters behind
//! [`export_driver!`](crate::export_driver) and [`export_rules!`](crate::export_rules).
//!
//! Plugin authors never use this module directly. It turns the generated traits into calls on
//! [`Driver`](crate::Driver) and [`Rules`](crate::Rules) and converts between generated types and
//! [`crate::model`]. It must not hold any plugin logic.

#[cfg(feature = "driver")]
pub mod driver;
#[cfg(feature = "rules")]
pub mod rules;
