//! Region rule sets (`manifests/regions/<name>.toml`): which rules plugins a site composes and
//! the parameter defaults that go with them.
//!
//! ```toml
//! [ruleset]
//! name = "guangdong-pilot"
//! version = "2026.1"
//! description = "…"
//! plugins = ["cn-baseline", "weight-check", "guangdong-pilot"]
//!
//! [parameters]
//! "transit.time-limit-hours" = { default = "24", type = "hours", min = 1, max = 720, doc = "…" }
//! "check.lane.cargo" = { default = "inspect", type = "enumeration", values = ["release", "manual", "inspect", "refuse", "off"] }
//! ```
//!
//! Each parameter is declared with its type and bounds ([`super::params`]), so a value a site
//! sets is checked when it is set rather than refused by a plugin on the next truck. A bare
//! `"name" = "value"` still loads, as a default whose type is the loosest its value allows
//! (boolean, decimal, else text): files written before declarations existed keep working,
//! but they check less, so the shipped files declare everything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::params::{DeclaredBy, ParameterSpec, RawDeclaration, inferred};
use crate::diag::{SourceError, read_toml};

/// A validated region rule set.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSetManifest {
    /// Where it was read from.
    pub path: PathBuf,
    /// Rule set name (the file's stem).
    pub name: String,
    /// Its version, recorded with every passage it decides.
    pub version: String,
    /// What it is for.
    pub description: String,
    /// Rules plugins (folders under the site's `plugins/rules/`), composed in this order.
    pub plugins: Vec<String>,
    /// Parameter defaults; the site's parameter library (the store) overrides them.
    pub parameters: BTreeMap<String, String>,
    /// Every parameter's declaration (type, bounds, doc), by name: the rule set's part of the
    /// site's parameter catalogue.
    pub declarations: BTreeMap<String, ParameterSpec>,
}

impl RuleSetManifest {
    /// Reads and checks a rule set file.
    pub fn load(path: &Path) -> Result<Self, SourceError> {
        let (raw, text): (Raw, String) = read_toml(path)?;
        let err = |span: std::ops::Range<usize>, message: String| {
            SourceError::at(path, &text, Some(span), message)
        };
        let name = raw.ruleset.name.get_ref().clone();
        if !super::valid_id(&name) {
            return Err(err(
                raw.ruleset.name.span(),
                format!("rule set name {name:?}: expected 1 to 64 letters, digits, `-` or `_`"),
            ));
        }
        if raw.ruleset.plugins.get_ref().is_empty() {
            return Err(err(
                raw.ruleset.plugins.span(),
                "`plugins` is empty: a rule set needs at least one rules plugin".into(),
            ));
        }
        let mut plugins: Vec<String> = Vec::new();
        for p in raw.ruleset.plugins.get_ref() {
            if !super::valid_id(p) || plugins.contains(p) {
                return Err(err(
                    raw.ruleset.plugins.span(),
                    format!("plugin {p:?}: expected distinct plugin folder names"),
                ));
            }
            plugins.push(p.clone());
        }
        let declared_by = DeclaredBy::RuleSet {
            id: format!("{name}@{}", raw.ruleset.version),
            path: path.to_path_buf(),
        };
        let mut parameters = BTreeMap::new();
        let mut declarations = BTreeMap::new();
        for (k, v) in raw.parameters {
            if k.starts_with("lane.") {
                return Err(err(
                    v.span(),
                    format!(
                        "parameter `{k}`: `lane.<id>.*` parameters belong to the lanes, which \
                         declare them for every lane of the site manifest; a rule set cannot"
                    ),
                ));
            }
            let spec = match v.get_ref() {
                toml::Value::Table(_) => {
                    let raw: RawDeclaration =
                        v.get_ref()
                            .clone()
                            .try_into()
                            .map_err(|e: toml::de::Error| {
                                err(v.span(), format!("parameter `{k}`: {}", e.message().trim()))
                            })?;
                    raw.into_spec(&k, declared_by.clone())
                        .map_err(|e| err(v.span(), format!("parameter `{k}`: {e}")))?
                }
                other => {
                    let value = crate::diag::scalar_text(other).ok_or_else(|| {
                        err(
                            v.span(),
                            format!(
                                "parameter `{k}`: expected a default (string, number or \
                                 boolean) or a declaration {{ default = …, type = … }}"
                            ),
                        )
                    })?;
                    inferred(&k, &value, declared_by.clone())
                }
            };
            parameters.insert(k.clone(), spec.default.clone().unwrap_or_default());
            declarations.insert(k, spec);
        }
        Ok(RuleSetManifest {
            path: path.to_path_buf(),
            name,
            version: raw.ruleset.version,
            description: raw.ruleset.description,
            plugins,
            parameters,
            declarations,
        })
    }

    /// `name@version`, as passages record it.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Parameters given as a bare default, whose type was inferred rather than declared.
    pub fn undeclared(&self) -> Vec<&str> {
        self.declarations
            .values()
            .filter(|s| !s.declared)
            .map(|s| s.name.as_str())
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    ruleset: RawRuleSet,
    #[serde(default)]
    parameters: BTreeMap<String, Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuleSet {
    name: Spanned<String>,
    version: String,
    #[serde(default)]
    description: String,
    plugins: Spanned<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RuleSetManifest, SourceError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.toml");
        std::fs::write(&path, text).unwrap();
        // Errors name the file twice (where, and who declared the parameter): both as r.toml.
        RuleSetManifest::load(&path).map_err(|mut e| {
            e.path = PathBuf::from("r.toml");
            e.message = e.message.replace(&path.display().to_string(), "r.toml");
            e
        })
    }

    #[test]
    fn reads_a_rule_set() {
        let r = load(
            "[ruleset]\nname = \"x\"\nversion = \"1\"\nplugins = [\"a\", \"b\"]\n[parameters]\n\"t.h\" = 24\n",
        )
        .unwrap();
        assert_eq!(r.plugins, ["a", "b"]);
        assert_eq!(r.parameters["t.h"], "24");
        assert_eq!(r.id(), "x@1");
    }

    #[test]
    fn refuses_mistakes_with_their_line() {
        let e = load("[ruleset]\nname = \"x\"\nversion = \"1\"\nplugins = []\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "r.toml:4:11: `plugins` is empty: a rule set needs at least one rules plugin"
        );
        let e = load(
            "[ruleset]\nname = \"x\"\nversion = \"1\"\nplugins = [\"a\"]\n[parameters]\nk = [1]\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "r.toml:6:5: parameter `k`: expected a default (string, number or boolean) or a \
             declaration { default = …, type = … }"
        );
    }

    const DECLARED: &str = "[ruleset]\nname = \"x\"\nversion = \"1\"\nplugins = [\"a\"]\n[parameters]\n\"w.pct\" = { default = \"3\", type = \"decimal\", min = 0, max = 100, unit = \"%\", doc = \"allowed difference\" }\n\"t.h\" = \"24\"\n";

    #[test]
    fn parameters_are_declared_or_given_as_bare_defaults() {
        let r = load(DECLARED).unwrap();
        assert_eq!(r.parameters["w.pct"], "3");
        assert_eq!(r.parameters["t.h"], "24");
        let w = &r.declarations["w.pct"];
        assert!(w.declared);
        assert_eq!(
            (w.unit.as_deref(), w.doc.as_str()),
            (Some("%"), "allowed difference")
        );
        assert!(w.check("101").is_err());
        assert_eq!(r.undeclared(), ["t.h"]);
        assert!(r.declarations["t.h"].check("soon").is_err());
    }

    #[test]
    fn a_wrong_declaration_names_its_line() {
        crate::diag::assert_edit_errors(
            DECLARED,
            &[
                (
                    "type = \"decimal\"",
                    "type = \"float\"",
                    "r.toml:6:11: parameter `w.pct`: type \"float\": expected integer, decimal, hours, boolean, enumeration, list or text",
                ),
                (
                    "doc = ",
                    "colour = \"red\", doc = ",
                    "r.toml:6:11: parameter `w.pct`: unknown field `colour`, expected one of `default`, `type`, `min`, `max`, `unit`, `values`, `min-items`, `max-items`, `doc`",
                ),
                (
                    "max = 100",
                    "max = 2",
                    "r.toml:6:11: parameter `w.pct`: `default` does not fit the declaration: parameter `w.pct` = \"3\": out of range; expected a decimal number from 0 to 2 % (declared by rule set x@1 (r.toml))",
                ),
                (
                    "\"t.h\"",
                    "\"lane.L01.congestion\"",
                    "r.toml:7:25: parameter `lane.L01.congestion`: `lane.<id>.*` parameters belong to the lanes, which declare them for every lane of the site manifest; a rule set cannot",
                ),
            ],
            |text| load(text).map(|_| ()).map_err(|e| e.to_string()),
        );
    }

    #[test]
    fn the_shipped_rule_sets_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/regions");
        for name in ["cn-baseline", "guangdong-pilot"] {
            let r = RuleSetManifest::load(&dir.join(format!("{name}.toml"))).unwrap();
            assert_eq!(r.name, name);
            assert!(r.plugins.contains(&"cn-baseline".to_owned()));
            // Every parameter is declared with its type, not left to inference.
            assert!(r.undeclared().is_empty(), "{name}: {:?}", r.undeclared());
        }
    }
}
