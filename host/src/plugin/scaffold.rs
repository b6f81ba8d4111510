//! New plugin crates (`kakou plugin new`): a standalone crate that builds, tests and packages
//! at once, with a small but real example to edit.
//!
//! A driver scaffold decodes ASCII weight lines with an XOR checksum through the SDK's frame
//! splitter; a rules scaffold makes one check that reads a registration and a parameter. Both
//! come with native tests (`cargo test`) and fixtures for `kakou plugin test`. The crate has a
//! `[workspace]` table of its own, so it builds wherever it is put (inside this repository
//! too), and depends on the SDK by path. The templates are the files under `scaffold/`.

use std::path::{Component, Path, PathBuf};

use super::manifest::PluginKind;

/// Why a plugin crate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be a plugin name.
    #[error(
        "{0:?} is not a plugin name (expected 1 to 64 lower-case letters, digits and dashes, starting with a letter)"
    )]
    BadName(String),
    /// The folder is there already.
    #[error("{} already exists; choose another name or --dir", path.display())]
    Exists {
        /// The folder.
        path: PathBuf,
    },
    /// The SDK is not where it should be.
    #[error(
        "the plugin SDK is not at {} (expected the kakou-plugin-sdk crate there); pass --sdk PATH to the plugin-sdk folder of a kakou checkout",
        path.display()
    )]
    NoSdk {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What [`new_plugin`] made.
#[derive(Debug, Clone)]
pub struct Scaffold {
    /// The crate folder.
    pub dir: PathBuf,
    /// The cargo package name.
    pub package: String,
    /// The files written, relative to `dir`.
    pub files: Vec<PathBuf>,
}

/// One template: where it goes in the new crate, and its text or bytes.
enum Template {
    Text(&'static str, &'static str),
    Bytes(&'static str, &'static [u8]),
}

const DRIVER: &[Template] = &[
    Template::Text(
        "Cargo.toml",
        include_str!("scaffold/driver/Cargo.toml.tmpl"),
    ),
    Template::Text(
        "plugin.toml",
        include_str!("scaffold/driver/plugin.toml.tmpl"),
    ),
    Template::Text("src/lib.rs", include_str!("scaffold/driver/lib.rs.tmpl")),
    Template::Text("README.md", include_str!("scaffold/README.md.tmpl")),
    Template::Text(".gitignore", include_str!("scaffold/driver/gitignore")),
    Template::Bytes(
        "fixtures/sample.bin",
        include_bytes!("scaffold/driver/sample.bin"),
    ),
    Template::Text(
        "fixtures/sample.expected.json",
        include_str!("scaffold/driver/sample.expected.json"),
    ),
];

const RULES: &[Template] = &[
    Template::Text("Cargo.toml", include_str!("scaffold/rules/Cargo.toml.tmpl")),
    Template::Text(
        "plugin.toml",
        include_str!("scaffold/rules/plugin.toml.tmpl"),
    ),
    Template::Text("src/lib.rs", include_str!("scaffold/rules/lib.rs.tmpl")),
    Template::Text("README.md", include_str!("scaffold/README.md.tmpl")),
    Template::Text(".gitignore", include_str!("scaffold/rules/gitignore")),
    Template::Text(
        "fixtures/over-limit.passage.json",
        include_str!("scaffold/rules/over-limit.passage.json"),
    ),
    Template::Text(
        "fixtures/over-limit.expected.json",
        include_str!("scaffold/rules/over-limit.expected.json"),
    ),
    Template::Text(
        "fixtures/within-limit.passage.json",
        include_str!("scaffold/rules/within-limit.passage.json"),
    ),
    Template::Text(
        "fixtures/within-limit.expected.json",
        include_str!("scaffold/rules/within-limit.expected.json"),
    ),
];

/// Where this binary's own source tree has the SDK (`host/../plugin-sdk`).
pub fn default_sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .join("plugin-sdk")
}

/// Makes the crate `parent/name` for a plugin of `kind`, depending on the SDK at `sdk` (by
/// default [`default_sdk_path`]). The SDK workspace's `Cargo.lock`, when there is one, is copied
/// in, so the new crate builds with the dependency versions the SDK is tested with.
pub fn new_plugin(
    kind: PluginKind,
    name: &str,
    parent: &Path,
    sdk: Option<&Path>,
) -> Result<Scaffold, ScaffoldError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-');
    if !valid {
        return Err(ScaffoldError::BadName(name.to_owned()));
    }
    let sdk = sdk.map_or_else(default_sdk_path, Path::to_path_buf);
    let sdk = match sdk.canonicalize() {
        Ok(p) if is_sdk(&p) => p,
        _ => return Err(ScaffoldError::NoSdk { path: sdk }),
    };
    let dir = parent.join(name);
    if dir.exists() {
        return Err(ScaffoldError::Exists { path: dir });
    }
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ScaffoldError::Write { path, source }
    };
    std::fs::create_dir_all(parent).map_err(write_err(parent))?;
    std::fs::create_dir(&dir).map_err(write_err(&dir))?;
    let dir_abs = dir.canonicalize().map_err(write_err(&dir))?;

    let (kind_word, templates) = match kind {
        PluginKind::Driver => ("driver", DRIVER),
        PluginKind::Rules => ("rules", RULES),
    };
    let package = format!("kakou-{kind_word}-{name}");
    let sdk_path = relative_if_near(&dir_abs, &sdk);
    let api = api_requirement();
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate}}", &package)
            .replace("{{type}}", &type_name(name))
            .replace("{{kind}}", kind_word)
            .replace("{{api}}", &api)
            .replace("{{sdk}}", &toml_string(&sdk_path.to_string_lossy()))
    };
    let mut files = Vec::new();
    for t in templates {
        let (rel, bytes) = match t {
            Template::Text(rel, text) => (*rel, fill(text).into_bytes()),
            Template::Bytes(rel, bytes) => (*rel, bytes.to_vec()),
        };
        let path = dir.join(rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(write_err(p))?;
        }
        std::fs::write(&path, bytes).map_err(write_err(&path))?;
        files.push(PathBuf::from(rel));
    }
    if let Some(root) = sdk.parent() {
        let lock = root.join("Cargo.lock");
        if lock.is_file() {
            let dest = dir.join("Cargo.lock");
            std::fs::copy(&lock, &dest).map_err(write_err(&dest))?;
            files.push(PathBuf::from("Cargo.lock"));
        }
    }
    Ok(Scaffold {
        dir,
        package,
        files,
    })
}

fn is_sdk(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| {
            t.get("package")?
                .get("name")?
                .as_str()
                .map(|n| n == "kakou-plugin-sdk")
        })
        .unwrap_or(false)
}

/// `^MAJOR.MINOR` of the contract version the SDK builds against.
fn api_requirement() -> String {
    let v = kakou_plugin_sdk::API_VERSION;
    let mut parts = v.split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => format!("^{major}.{minor}"),
        _ => format!("^{v}"),
    }
}

/// `acme-scale` → `AcmeScale`; a leading digit gets a `Plugin` prefix.
fn type_name(name: &str) -> String {
    let mut out: String = name
        .split('-')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic()) {
        out.insert_str(0, "Plugin");
    }
    out
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// `to` relative to `from` when they share more than the file system root (a plugin inside
/// the kakou checkout gets `../../plugin-sdk`), else `to` itself.
fn relative_if_near(from: &Path, to: &Path) -> PathBuf {
    let a: Vec<Component<'_>> = from.components().collect();
    let b: Vec<Component<'_>> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let shared_normal = a[..common]
        .iter()
        .any(|c| matches!(c, Component::Normal(_)));
    if !shared_normal {
        return to.to_path_buf();
    }
    let mut rel = PathBuf::new();
    for _ in common..a.len() {
        rel.push("..");
    }
    for c in &b[common..] {
        rel.push(c.as_os_str());
    }
    rel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(type_name("acme-scale"), "AcmeScale");
        assert_eq!(type_name("x"), "X");
        assert_eq!(type_name("a1-b2"), "A1B2");
        assert_eq!(api_requirement(), "^1.0");
        for bad in ["", "Acme", "1scale", "a_b", "a-", "-a"] {
            let e =
                new_plugin(PluginKind::Driver, bad, Path::new("/nonexistent"), None).unwrap_err();
            assert!(matches!(e, ScaffoldError::BadName(_)), "{bad}: {e}");
        }
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_if_near(
                Path::new("/w/plugins/drivers/x"),
                Path::new("/w/plugin-sdk")
            ),
            Path::new("../../../plugin-sdk")
        );
        assert_eq!(
            relative_if_near(Path::new("/tmp/x"), Path::new("/w/plugin-sdk")),
            Path::new("/w/plugin-sdk")
        );
    }

    #[test]
    fn every_placeholder_is_filled() {
        let tmp = tempfile::tempdir().unwrap();
        for kind in [PluginKind::Driver, PluginKind::Rules] {
            let s =
                new_plugin(kind, "acme-scale", &tmp.path().join(kind.to_string()), None).unwrap();
            assert!(s.files.contains(&PathBuf::from("src/lib.rs")));
            for f in &s.files {
                let bytes = std::fs::read(s.dir.join(f)).unwrap();
                let text = String::from_utf8_lossy(&bytes);
                assert!(!text.contains("{{"), "{}: {text}", f.display());
            }
            let m = crate::plugin::PluginManifest::load(&s.dir).unwrap();
            assert_eq!((m.name.as_str(), m.kind), ("acme-scale", kind));
            let cargo = std::fs::read_to_string(s.dir.join("Cargo.toml")).unwrap();
            assert!(
                cargo.contains(&format!("name = \"{}\"", s.package)),
                "{cargo}"
            );
            assert!(cargo.contains("\n[workspace]\n"), "{cargo}");
            let e = new_plugin(kind, "acme-scale", &tmp.path().join(kind.to_string()), None)
                .unwrap_err();
            assert!(matches!(e, ScaffoldError::Exists { .. }), "{e}");
        }
        let e = new_plugin(PluginKind::Rules, "x", tmp.path(), Some(tmp.path())).unwrap_err();
        assert!(e.to_string().contains("pass --sdk PATH"), "{e}");
    }
}
