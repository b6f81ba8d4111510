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
//! "transit.time-limit-hours" = "24"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::diag::{SourceError, read_toml};

/// A validated region rule set.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        let mut parameters = BTreeMap::new();
        for (k, v) in raw.parameters {
            let value = crate::diag::scalar_text(v.get_ref()).ok_or_else(|| {
                err(
                    v.span(),
                    format!("parameter `{k}`: expected a string, number or boolean"),
                )
            })?;
            parameters.insert(k, value);
        }
        Ok(RuleSetManifest {
            path: path.to_path_buf(),
            name,
            version: raw.ruleset.version,
            description: raw.ruleset.description,
            plugins,
            parameters,
        })
    }

    /// `name@version`, as passages record it.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
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
        RuleSetManifest::load(&path).map_err(|mut e| {
            e.path = PathBuf::from("r.toml");
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
            "r.toml:6:5: parameter `k`: expected a string, number or boolean"
        );
    }

    #[test]
    fn the_shipped_rule_sets_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/regions");
        for name in ["cn-baseline", "guangdong-pilot"] {
            let r = RuleSetManifest::load(&dir.join(format!("{name}.toml"))).unwrap();
            assert_eq!(r.name, name);
            assert!(r.plugins.contains(&"cn-baseline".to_owned()));
        }
    }
}
