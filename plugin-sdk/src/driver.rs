//! What a driver author implements: [`Driver`], and [`Config`] for its settings.

use std::fmt::Display;
use std::str::FromStr;

use crate::model::{Command, DriverDescription, FeedOutput, Setting, SettingSpec};

/// A device driver: one value per device, fed the device's bytes in order.
///
/// Implement this on a plain struct and export it with [`export_driver!`](crate::export_driver).
/// The same code runs natively in `cargo test` (see [`crate::harness`]) and sandboxed in the host.
pub trait Driver: Sized + 'static {
    /// Name, version, device classes and settings. The host checks name and version against the
    /// plugin manifest.
    fn describe() -> DriverDescription;

    /// Builds the decoder for one device. Unknown settings are refused before this is called.
    fn open(config: &Config) -> Result<Self, String>;

    /// Decodes what can be decoded and keeps partial frames for the next call.
    fn feed(&mut self, data: &[u8]) -> FeedOutput;

    /// Hands back every buffered, unconsumed byte and forgets it.
    fn drain(&mut self) -> Vec<u8>;

    /// Bytes to send to the device now, for devices that must be asked.
    fn poll(&mut self) -> Option<Vec<u8>> {
        None
    }

    /// Bytes that carry out a command.
    fn encode(&mut self, command: &Command) -> Result<Vec<u8>, String> {
        Err(format!(
            "{} takes no commands (asked to {command:?})",
            Self::describe().name
        ))
    }
}

/// A device's settings, checked against what the driver declares.
#[derive(Debug, Clone, Default)]
pub struct Config {
    settings: Vec<Setting>,
    specs: Vec<SettingSpec>,
}

impl Config {
    /// Checks `settings` against `specs`: an unknown key is an error that lists the known ones.
    pub fn new(settings: Vec<Setting>, specs: &[SettingSpec]) -> Result<Self, String> {
        for s in &settings {
            if !specs.iter().any(|spec| spec.key == s.key) {
                let known: Vec<&str> = specs.iter().map(|s| s.key.as_str()).collect();
                return Err(if known.is_empty() {
                    format!("unknown setting `{}`: this plugin takes no settings", s.key)
                } else {
                    format!(
                        "unknown setting `{}`: expected one of {}",
                        s.key,
                        known.join(", ")
                    )
                });
            }
        }
        Ok(Config {
            settings,
            specs: specs.to_vec(),
        })
    }

    /// The raw text of a setting, falling back to its declared default.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .rev()
            .find(|s| s.key == key)
            .map(|s| s.value.as_str())
            .or_else(|| {
                self.specs
                    .iter()
                    .find(|s| s.key == key)
                    .and_then(|s| s.default_value.as_deref())
            })
    }

    /// A setting parsed as `T`, or `default` when neither set nor declared with a default.
    pub fn get<T>(&self, key: &str, default: T) -> Result<T, String>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.text(key) {
            None => Ok(default),
            Some(text) => text.trim().parse::<T>().map_err(|e| {
                format!(
                    "setting `{key}`: cannot read {text:?} as {}: {e}",
                    std::any::type_name::<T>()
                )
            }),
        }
    }
}

impl Config {
    /// A setting holding one byte (a device address, a register), in decimal or `0x` hex.
    pub fn byte(&self, key: &str, default: u8) -> Result<u8, String> {
        let Some(text) = self.text(key).map(str::trim) else {
            return Ok(default);
        };
        let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => u8::from_str_radix(hex, 16).ok(),
            None => text.parse::<u8>().ok(),
        };
        parsed.ok_or_else(|| {
            format!("setting `{key}`: {text:?} is not a byte value (0 to 255, or 0x00 to 0xFF)")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_in_decimal_or_hex() {
        let specs = [SettingSpec::new("address", Some("0x1F"), "device address")];
        let c = Config::new(vec![], &specs).unwrap();
        assert_eq!(c.byte("address", 0).unwrap(), 0x1F);
        let c = Config::new(vec![Setting::new("address", "300")], &specs).unwrap();
        assert_eq!(
            c.byte("address", 0).unwrap_err(),
            "setting `address`: \"300\" is not a byte value (0 to 255, or 0x00 to 0xFF)"
        );
    }

    fn specs() -> Vec<SettingSpec> {
        vec![
            SettingSpec::new("stable-count", Some("3"), "equal frames for stability"),
            SettingSpec::new("mode", None, "output mode"),
        ]
    }

    #[test]
    fn defaults_and_overrides() {
        let c = Config::new(vec![Setting::new("mode", "eq")], &specs()).unwrap();
        assert_eq!(c.get::<u32>("stable-count", 1).unwrap(), 3);
        assert_eq!(c.text("mode"), Some("eq"));
        assert_eq!(c.get::<u32>("absent", 7).unwrap(), 7);
    }

    #[test]
    fn unknown_key_lists_known_ones() {
        let e = Config::new(vec![Setting::new("baud", "9600")], &specs()).unwrap_err();
        assert_eq!(
            e,
            "unknown setting `baud`: expected one of stable-count, mode"
        );
    }

    #[test]
    fn bad_value_names_key_and_value() {
        let c = Config::new(vec![Setting::new("stable-count", "x")], &specs()).unwrap();
        let e = c.get::<u32>("stable-count", 1).unwrap_err();
        assert!(
            e.starts_with("setting `stable-count`: cannot read \"x\" as u32"),
            "{e}"
        );
    }
}
