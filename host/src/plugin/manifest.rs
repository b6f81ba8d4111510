//! `plugin.toml`: what a plugin is, what it needs, and what it may do.
//!
//! Parsing is strict: unknown keys, wrong types, a missing field, a bad name, version or API
//! requirement are refused with the file, the line and the field. This module only reads and
//! validates the manifest; it does not look at the wasm.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use kakou_plugin_sdk::model::Setting;
use semver::{Version, VersionReq};
use serde::Deserialize;
use toml::Spanned;

/// File name of a plugin manifest inside a plugin folder.
pub const FILE_NAME: &str = "plugin.toml";

/// A manifest that cannot be accepted: where and why.
pub type ManifestError = crate::diag::SourceError;

/// Driver or rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// A device driver (world `kakou:plugin/driver`).
    Driver,
    /// A rule set (world `kakou:plugin/rules`).
    Rules,
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginKind::Driver => "driver",
            PluginKind::Rules => "rules",
        })
    }
}

/// A host import group a rules plugin may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Vehicles, tags, drivers and cards, enterprises, stations.
    Registrations,
    /// Release documents.
    Documents,
    /// Control orders.
    ControlOrders,
    /// The parameter library.
    Parameters,
    /// Past passages (entry/exit balance).
    History,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Capability; 5] = [
        Capability::Registrations,
        Capability::Documents,
        Capability::ControlOrders,
        Capability::Parameters,
        Capability::History,
    ];

    /// The manifest name.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Registrations => "registrations",
            Capability::Documents => "documents",
            Capability::ControlOrders => "control-orders",
            Capability::Parameters => "parameters",
            Capability::History => "history",
        }
    }

    /// The WIT interface it grants.
    pub fn interface(self) -> &'static str {
        match self {
            Capability::Registrations => "registrations",
            Capability::Documents => "documents",
            Capability::ControlOrders => "controls",
            Capability::Parameters => "parameters",
            Capability::History => "history",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Resource limits for every call into the plugin (`[limits]` in `plugin.toml`). A call that
/// exceeds one ends with a typed [`CallErrorKind`](super::CallErrorKind); the next call runs
/// on a fresh instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory ceiling, bytes (`memory-mb`).
    pub memory_bytes: usize,
    /// Fuel (roughly, wasm instructions) per call: the bound on the work a call may do,
    /// whatever the clocks say.
    pub fuel: u64,
    /// Deadline per call, milliseconds (`deadline-ms`), counted in CPU time of the thread
    /// running the call: the plugin's code and the host imports it calls, but not time the
    /// thread spends descheduled or blocked waiting (a loaded gate PC freezing threads must
    /// not kill a barrier command for time it was not running). It is checked on the epoch
    /// tick (2 ms), so a call is stopped within a few ms of it. Independently, a call still
    /// running after 20 times this in wall-clock time is stopped whatever CPU time it used
    /// (the backstop for a call that makes no progress).
    pub deadline_ms: u32,
    /// Largest result a call may return, bytes.
    pub max_output_bytes: usize,
}

impl Limits {
    /// Defaults for a kind of plugin.
    pub fn defaults(kind: PluginKind) -> Self {
        match kind {
            PluginKind::Driver => Limits {
                memory_bytes: 16 << 20,
                fuel: 200_000_000,
                deadline_ms: 100,
                max_output_bytes: 1 << 20,
            },
            PluginKind::Rules => Limits {
                memory_bytes: 32 << 20,
                fuel: 500_000_000,
                deadline_ms: 500,
                max_output_bytes: 1 << 20,
            },
        }
    }
}

/// When a device sends bytes: what its silence means, and so how its online status is known.
///
/// The host knows a device is there only from what it receives, unless the device never
/// sends anything; this says which case a device is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sends {
    /// All the time: a continuous output (weighbridge indicators, GPS) or an answer to every
    /// poll (polled RFID readers, MT-SICS). Silent past `silence-timeout-ms`: offline.
    #[default]
    Steadily,
    /// Only when something happens (a card presented, a truck photographed) or in answer to a
    /// command (a Modbus barrier's echo). Silence is normal: online while the link is open;
    /// offline when a command or poll gets no byte back within `silence-timeout-ms`, or the
    /// link drops.
    OnEvent,
    /// Never: a write-only actuator (an LCUS relay board). Online while the link is open and
    /// takes the commands written to it; offline when a write fails or the link drops.
    Never,
}

impl Sends {
    /// The name in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Sends::Steadily => "steadily",
            Sends::OnEvent => "on-event",
            Sends::Never => "never",
        }
    }
}

/// A validated plugin manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginManifest {
    /// Where it was read from.
    pub path: PathBuf,
    /// Plugin name: lower-case letters, digits and dashes.
    pub name: String,
    /// Plugin version.
    pub version: Version,
    /// Driver or rules.
    pub kind: PluginKind,
    /// The `kakou:plugin` versions it can run against.
    pub api: VersionReq,
    /// One line on what it does.
    pub description: String,
    /// Who publishes it.
    pub vendor: Option<String>,
    /// Device classes (drivers).
    pub device_classes: Vec<String>,
    /// When the driver's devices send bytes (drivers; `sends`), which says what their
    /// silence means. A site device may say otherwise.
    pub sends: Sends,
    /// Check codes (rules).
    pub rule_codes: Vec<String>,
    /// The component file, relative to the manifest.
    pub wasm_file: PathBuf,
    /// Expected sha256 of the component; `None` for an unsealed development build.
    pub sha256: Option<[u8; 32]>,
    /// Per-call limits.
    pub limits: Limits,
    /// Host import groups it may call.
    pub capabilities: BTreeSet<Capability>,
    /// Default settings (drivers) handed to `open` under the site's own.
    pub settings: Vec<Setting>,
}

impl PluginManifest {
    /// Reads and validates `DIR/plugin.toml` (or the file itself when given one).
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        Self::load_text(path).map(|(manifest, _)| manifest)
    }

    /// Like [`load`](Self::load), and also returns the exact text that was validated (what a
    /// signature covers), read once so the two cannot differ.
    pub fn load_text(path: &Path) -> Result<(Self, String), ManifestError> {
        let file = if path.is_dir() {
            path.join(FILE_NAME)
        } else {
            path.to_path_buf()
        };
        let text =
            std::fs::read_to_string(&file).map_err(|e| ManifestError::unreadable(&file, &e))?;
        let manifest = Self::parse(&file, &text)?;
        Ok((manifest, text))
    }

    /// Validates manifest text; `path` is only used in errors and to find the wasm.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ManifestError> {
        let err = |span: Option<Range<usize>>, message: String| {
            ManifestError::at(path, text, span, message)
        };
        let raw: Raw = crate::diag::parse_toml(path, text)?;
        let p = raw.plugin;

        let name = p.name.get_ref();
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || name.starts_with('-')
        {
            return Err(err(
                Some(p.name.span()),
                format!(
                    "field `plugin.name`: {name:?} is not a plugin name (expected 1 to 64 lower-case letters, digits and dashes)"
                ),
            ));
        }
        let version = Version::parse(p.version.get_ref()).map_err(|e| {
            err(
                Some(p.version.span()),
                format!(
                    "field `plugin.version`: {:?} is not a semantic version such as \"1.2.0\" ({e})",
                    p.version.get_ref()
                ),
            )
        })?;
        let api = VersionReq::parse(p.api.get_ref()).map_err(|e| {
            err(
                Some(p.api.span()),
                format!(
                    "field `plugin.api`: {:?} is not a version requirement such as \"^1.0\" ({e})",
                    p.api.get_ref()
                ),
            )
        })?;
        let kind = *p.kind.get_ref();

        let wasm = raw.wasm.unwrap_or_default();
        let sha256 = match wasm.sha256 {
            None => None,
            Some(s) => Some(parse_digest(s.get_ref()).ok_or_else(|| {
                err(
                    Some(s.span()),
                    format!(
                        "field `wasm.sha256`: expected 64 hexadecimal digits, got {:?}",
                        s.get_ref()
                    ),
                )
            })?),
        };
        let wasm_file = PathBuf::from(wasm.file.unwrap_or_else(|| "plugin.wasm".to_owned()));

        let mut limits = Limits::defaults(kind);
        if let Some(l) = raw.limits {
            if let Some(mb) = l.memory_mb {
                limits.memory_bytes =
                    bounded(&err, mb, 1..=4096, "limits.memory-mb")? as usize * (1 << 20);
            }
            if let Some(fuel) = l.fuel {
                limits.fuel = bounded(&err, fuel, 1_000..=u64::MAX / 2, "limits.fuel")?;
            }
            if let Some(ms) = l.deadline_ms {
                limits.deadline_ms = bounded(&err, ms, 1..=60_000, "limits.deadline-ms")?;
            }
            if let Some(kb) = l.max_output_kb {
                limits.max_output_bytes =
                    bounded(&err, kb, 1..=65_536, "limits.max-output-kb")? as usize * 1024;
            }
        }

        let mut capabilities = BTreeSet::new();
        if let Some(c) = raw.capabilities {
            if kind == PluginKind::Driver && !c.imports.is_empty() {
                return Err(err(
                    Some(c.imports[0].span()),
                    "field `capabilities.imports`: drivers get no host look-ups; only rules plugins declare capabilities".into(),
                ));
            }
            capabilities.extend(c.imports.iter().map(|s| *s.get_ref()));
        }

        let sends = match &p.sends {
            Some(s) if kind != PluginKind::Driver => {
                return Err(err(
                    Some(s.span()),
                    "field `plugin.sends`: only drivers say when their devices send bytes".into(),
                ));
            }
            Some(s) => *s.get_ref(),
            None => Sends::default(),
        };

        let settings = raw
            .settings
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let value = crate::diag::scalar_text(v.get_ref()).ok_or_else(|| {
                    err(
                        Some(v.span()),
                        format!("field `settings.{k}`: expected a string, number or boolean"),
                    )
                })?;
                Ok(Setting { key: k, value })
            })
            .collect::<Result<Vec<_>, _>>()?;

        Ok(PluginManifest {
            path: path.to_path_buf(),
            name: name.clone(),
            version,
            kind,
            api,
            description: p.description,
            vendor: p.vendor,
            device_classes: p.device_classes,
            sends,
            rule_codes: p.rule_codes,
            wasm_file,
            sha256,
            limits,
            capabilities,
            settings,
        })
    }

    /// The folder holding the manifest.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Full path of the component.
    pub fn wasm_path(&self) -> PathBuf {
        self.dir().join(&self.wasm_file)
    }

    /// `name@version`, as used in logs and errors.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

fn bounded<T, E>(
    err: &impl Fn(Option<Range<usize>>, String) -> E,
    value: Spanned<T>,
    range: std::ops::RangeInclusive<T>,
    field: &str,
) -> Result<T, E>
where
    T: PartialOrd + Copy + fmt::Display,
{
    let v = *value.get_ref();
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(err(
            Some(value.span()),
            format!(
                "field `{field}`: {v} is out of range {}..={}",
                range.start(),
                range.end()
            ),
        ))
    }
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut out).ok()?;
    Some(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Raw {
    plugin: RawPlugin,
    wasm: Option<RawWasm>,
    limits: Option<RawLimits>,
    capabilities: Option<RawCapabilities>,
    settings: Option<std::collections::BTreeMap<String, Spanned<toml::Value>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPlugin {
    name: Spanned<String>,
    version: Spanned<String>,
    kind: Spanned<PluginKind>,
    api: Spanned<String>,
    description: String,
    vendor: Option<String>,
    #[serde(default)]
    device_classes: Vec<String>,
    sends: Option<Spanned<Sends>>,
    #[serde(default)]
    rule_codes: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawWasm {
    file: Option<String>,
    sha256: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLimits {
    memory_mb: Option<Spanned<u32>>,
    fuel: Option<Spanned<u64>>,
    deadline_ms: Option<Spanned<u32>>,
    max_output_kb: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCapabilities {
    #[serde(default)]
    imports: Vec<Spanned<Capability>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[plugin]
name = "xk3190"
version = "1.0.0"
kind = "driver"
api = "^1.0"
description = "scale"
device-classes = ["weighbridge"]

[limits]
memory-mb = 8

[settings]
stable-count = 3
report = "change"
"#;

    fn parse(text: &str) -> Result<PluginManifest, String> {
        PluginManifest::parse(Path::new("plugins/x/plugin.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn good_manifest() {
        let m = parse(GOOD).unwrap();
        assert_eq!(m.id(), "xk3190@1.0.0");
        assert_eq!(m.kind, PluginKind::Driver);
        assert_eq!(m.limits.memory_bytes, 8 << 20);
        assert_eq!(m.limits.deadline_ms, 100);
        assert_eq!(m.sha256, None);
        assert_eq!(m.sends, Sends::Steadily, "the default");
        let relay =
            parse(&GOOD.replace("device-classes", "sends = \"never\"\ndevice-classes")).unwrap();
        assert_eq!(relay.sends, Sends::Never);
        assert_eq!(m.wasm_path(), Path::new("plugins/x/plugin.wasm"));
        assert_eq!(
            m.settings,
            vec![
                Setting::new("report", "change"),
                Setting::new("stable-count", "3")
            ]
        );
    }

    /// Each case: a change to the good manifest, and the exact error.
    #[test]
    fn errors_name_file_line_and_field() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "name = \"xk3190\"\n",
                "",
                "plugins/x/plugin.toml:2:1: missing field `name`",
            ),
            (
                "version = \"1.0.0\"",
                "version = 1",
                "plugins/x/plugin.toml:4:11: invalid type: integer `1`, expected a string",
            ),
            (
                "api = \"^1.0\"",
                "api = \"one\"",
                "plugins/x/plugin.toml:6:7: field `plugin.api`: \"one\" is not a version requirement such as \"^1.0\" (unexpected character 'o' while parsing major version number)",
            ),
            (
                "version = \"1.0.0\"",
                "version = \"1.0\"",
                "plugins/x/plugin.toml:4:11: field `plugin.version`: \"1.0\" is not a semantic version such as \"1.2.0\" (unexpected end of input while parsing minor version number)",
            ),
            (
                "kind = \"driver\"",
                "kind = \"drive\"",
                "plugins/x/plugin.toml:5:8: unknown variant `drive`, expected `driver` or `rules`",
            ),
            (
                "name = \"xk3190\"",
                "name = \"XK 3190\"",
                "plugins/x/plugin.toml:3:8: field `plugin.name`: \"XK 3190\" is not a plugin name (expected 1 to 64 lower-case letters, digits and dashes)",
            ),
            (
                "memory-mb = 8",
                "memory-mb = 0",
                "plugins/x/plugin.toml:11:13: field `limits.memory-mb`: 0 is out of range 1..=4096",
            ),
            (
                "memory-mb = 8",
                "memory-mb = 8\nstack = 1",
                "plugins/x/plugin.toml:12:1: unknown field `stack`, expected one of `memory-mb`, `fuel`, `deadline-ms`, `max-output-kb`",
            ),
            (
                "[limits]",
                "[wasm]\nsha256 = \"abc\"\n[limits]",
                "plugins/x/plugin.toml:11:10: field `wasm.sha256`: expected 64 hexadecimal digits, got \"abc\"",
            ),
            (
                "[limits]",
                "[capabilities]\nimports = [\"documents\"]\n[limits]",
                "plugins/x/plugin.toml:11:12: field `capabilities.imports`: drivers get no host look-ups; only rules plugins declare capabilities",
            ),
            (
                "[limits]",
                "[capabilities]\nimports = [\"network\"]\n[limits]",
                "plugins/x/plugin.toml:11:12: unknown variant `network`, expected one of `registrations`, `documents`, `control-orders`, `parameters`, `history`",
            ),
            (
                "device-classes = [\"weighbridge\"]",
                "device-classes = [\"weighbridge\"]\nsends = \"sometimes\"",
                "plugins/x/plugin.toml:9:9: unknown variant `sometimes`, expected one of `steadily`, `on-event`, `never`",
            ),
            (
                "kind = \"driver\"",
                "kind = \"rules\"\nsends = \"never\"",
                "plugins/x/plugin.toml:6:9: field `plugin.sends`: only drivers say when their devices send bytes",
            ),
        ];
        crate::diag::assert_edit_errors(GOOD, cases, parse);
    }

    #[test]
    fn unreadable_file_says_so() {
        let e = PluginManifest::load(Path::new("/nonexistent/plugin")).unwrap_err();
        assert!(e.message.starts_with("cannot read the file"), "{e}");
    }

    #[test]
    fn digest_is_parsed() {
        let digest = "ab".repeat(32);
        let m = parse(&format!("{GOOD}\n[wasm]\nsha256 = \"{digest}\"\n")).unwrap();
        assert_eq!(m.sha256, Some([0xab; 32]));
    }
}
