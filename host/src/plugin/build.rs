//! Building a plugin crate into its component: `cargo build --target wasm32-wasip2`, then the
//! component is copied next to the plugin's manifest.
//!
//! Plugins build into their own target directory (`<workspace target>/wasm`), so a build started
//! from a running test or daemon never waits on the lock of the build that started it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::manifest::PluginManifest;

/// The Rust target plugins are built for.
pub const TARGET: &str = "wasm32-wasip2";
/// The cargo profile plugins are built with (see the workspace Cargo.toml).
pub const PROFILE: &str = "plugin";

/// Why a plugin could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The folder has no usable manifest.
    #[error(transparent)]
    Manifest(#[from] super::manifest::ManifestError),
    /// The folder is not a crate.
    #[error("{}: cannot read the crate's Cargo.toml: {reason}", path.display())]
    NotACrate {
        /// The Cargo.toml looked for.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A tool could not be run.
    #[error("cannot run `{tool}`: {reason}")]
    Tool {
        /// The command.
        tool: String,
        /// Why.
        reason: String,
    },
    /// cargo reported an error (its output was shown).
    #[error("`cargo build` of {package} failed with {status}; its errors are above")]
    Cargo {
        /// The crate.
        package: String,
        /// The exit status.
        status: String,
    },
    /// plugin.toml and the crate disagree on the version. The component describes itself
    /// with the crate's version, so the load path would refuse the result.
    #[error(
        "{}: version {manifest} disagrees with the crate's {crate_version} in {}: the \
         component reports the crate's version and the daemon refuses a plugin whose manifest \
         says otherwise; set both to the same version",
        manifest_path.display(),
        cargo_toml.display()
    )]
    VersionMismatch {
        /// The plugin manifest.
        manifest_path: PathBuf,
        /// Its version.
        manifest: String,
        /// The crate manifest.
        cargo_toml: PathBuf,
        /// The crate's version.
        crate_version: String,
    },
    /// The build finished but the component is not where it should be.
    #[error("the build of {package} produced no {}", path.display())]
    Missing {
        /// The crate.
        package: String,
        /// Where it was expected.
        path: PathBuf,
    },
}

/// Builds the plugin crate in `dir` and writes its component to the manifest's `wasm.file`.
/// Returns the component's path.
pub fn build(dir: &Path) -> Result<PathBuf, BuildError> {
    let manifest = PluginManifest::load(dir)?;
    let cargo_toml = dir.join("Cargo.toml");
    let (package, crate_version) = package_name(&cargo_toml)?;
    if let Some(v) = crate_version
        && v != manifest.version.to_string()
    {
        return Err(BuildError::VersionMismatch {
            manifest_path: manifest.path.clone(),
            manifest: manifest.version.to_string(),
            cargo_toml,
            crate_version: v,
        });
    }
    ensure_target()?;
    let target_dir = target_dir(dir)?.join("wasm");
    let status = Command::new(cargo())
        .args([
            "build",
            "--quiet",
            "--profile",
            PROFILE,
            "--target",
            TARGET,
            "--manifest-path",
        ])
        .arg(&cargo_toml)
        .arg("--target-dir")
        .arg(&target_dir)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| BuildError::Tool {
            tool: "cargo build".into(),
            reason: e.to_string(),
        })?;
    if !status.success() {
        return Err(BuildError::Cargo {
            package,
            status: status.to_string(),
        });
    }
    let built = target_dir
        .join(TARGET)
        .join(PROFILE)
        .join(format!("{}.wasm", package.replace('-', "_")));
    if !built.exists() {
        return Err(BuildError::Missing {
            package,
            path: built,
        });
    }
    let dest = manifest.wasm_path();
    // Copy to a new name and rename: a reader never sees a half-written component.
    let tmp = dest.with_extension("wasm.tmp");
    std::fs::copy(&built, &tmp)
        .and_then(|_| std::fs::rename(&tmp, &dest))
        .map_err(|e| BuildError::Tool {
            tool: format!("copy to {}", dest.display()),
            reason: e.to_string(),
        })?;
    Ok(dest)
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The crate's name, and its version when the crate states one itself (not inherited from
/// a workspace).
fn package_name(cargo_toml: &Path) -> Result<(String, Option<String>), BuildError> {
    let not_a_crate = |reason: String| BuildError::NotACrate {
        path: cargo_toml.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(cargo_toml).map_err(|e| not_a_crate(e.to_string()))?;
    let value: toml::Table =
        toml::from_str(&text).map_err(|e| not_a_crate(e.message().to_owned()))?;
    let package = value.get("package");
    let name = package
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_owned)
        .ok_or_else(|| not_a_crate("no [package] name".into()))?;
    let version = package
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    Ok((name, version))
}

/// The workspace's target directory, as cargo reports it.
fn target_dir(dir: &Path) -> Result<PathBuf, BuildError> {
    let out = Command::new(cargo())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| BuildError::Tool {
            tool: "cargo metadata".into(),
            reason: e.to_string(),
        })?;
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| BuildError::Tool {
            tool: "cargo metadata".into(),
            reason: e.to_string(),
        })?;
    meta.get("target_directory")
        .and_then(|t| t.as_str())
        .map(PathBuf::from)
        .ok_or_else(|| BuildError::Tool {
            tool: "cargo metadata".into(),
            reason: "no target_directory".into(),
        })
}

/// Adds the wasm target through rustup when it is missing.
fn ensure_target() -> Result<(), BuildError> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out)
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == TARGET) =>
        {
            Ok(())
        }
        Ok(_) => {
            let status = Command::new("rustup")
                .args(["target", "add", TARGET])
                .status()
                .map_err(|e| BuildError::Tool {
                    tool: "rustup target add".into(),
                    reason: e.to_string(),
                })?;
            if status.success() {
                Ok(())
            } else {
                Err(BuildError::Tool {
                    tool: format!("rustup target add {TARGET}"),
                    reason: status.to_string(),
                })
            }
        }
        // No rustup: the toolchain may still have the target; let cargo say if it does not.
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_version_the_crate_does_not_have_is_refused_before_building() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/rules/weight-check");
        let dir = tempfile::tempdir().unwrap();
        let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), &cargo).unwrap();
        let manifest = std::fs::read_to_string(root.join("plugin.toml")).unwrap();
        let crate_version = package_name(&dir.path().join("Cargo.toml"))
            .unwrap()
            .1
            .expect("the crate states its version");
        let edited = manifest.replacen(
            &format!("version = \"{crate_version}\""),
            "version = \"9.9.9\"",
            1,
        );
        assert_ne!(edited, manifest, "the manifest names the crate's version");
        std::fs::write(dir.path().join("plugin.toml"), edited).unwrap();
        let e = build(dir.path()).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, BuildError::VersionMismatch { .. })
                && text.contains("version 9.9.9 disagrees with the crate's")
                && text.contains(&crate_version),
            "{text}"
        );
    }
}
