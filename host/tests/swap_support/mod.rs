//! Shared by the hot-swap tests and benchmark: real plugin builds of other versions, packages,
//! and installing a plugin folder the way a site does (copy beside, rename into place).

#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kakou_host::plugin::package;
use kakou_host::plugin::signing::SecretKey;

use super::common;

/// Runs `f` under the file lock the plugin builds of every test process share.
pub fn with_build_lock<T>(f: impl FnOnce() -> T) -> T {
    let lock_path = common::root()
        .join("target")
        .join(".kakou-plugin-build.lock");
    std::fs::create_dir_all(lock_path.parent().expect("lock has a parent")).expect("target dir");
    let lock = File::create(&lock_path).expect("create the build lock");
    lock.lock().expect("take the build lock");
    let out = f();
    drop(lock);
    out
}

/// Copies `src` (a folder) into `dst`.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("create the copy");
    for entry in std::fs::read_dir(src).expect("read the folder") {
        let entry = entry.expect("folder entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy a file");
        }
    }
}

/// The plugin crate at `rel` (from the workspace root) built again as version `version`, its
/// source changed by `edit` (`tag` names the change): a standalone copy of the crate under
/// `target/hot-swap-src/` built into the workspace's wasm target folder, so its component
/// really describes itself as that version. Built once; later calls (and later runs) reuse it.
/// Returns the plugin folder (manifest and component).
pub fn versioned(
    rel: &str,
    version: &str,
    tag: &str,
    edit: impl FnOnce(String) -> String,
) -> PathBuf {
    let src = common::root().join(rel);
    let name = src
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a plugin folder name")
        .to_owned();
    let kind = if rel.contains("/rules/") {
        "rules"
    } else {
        "driver"
    };
    let package = format!("kakou-hotswap-{name}-{}-{tag}", version.replace('.', "-"));
    let dir = common::root()
        .join("target/hot-swap-src")
        .join(format!("{name}-{version}-{tag}"));
    with_build_lock(|| {
        let lib = std::fs::read_to_string(src.join("src/lib.rs")).expect("plugin source");
        let lib = edit(lib);
        let manifest = std::fs::read_to_string(src.join("plugin.toml")).expect("plugin.toml");
        let current = manifest
            .lines()
            .find(|l| l.starts_with("version = "))
            .expect("a version line")
            .to_owned();
        let manifest = manifest.replacen(&current, &format!("version = \"{version}\""), 1);
        let cargo = format!(
            "[package]\nname = \"{package}\"\nversion = \"{version}\"\nedition = \"2024\"\npublish = false\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\nkakou-plugin-sdk = {{ path = {:?}, default-features = false, features = [\"{kind}\"] }}\n\n\
             [workspace]\n\n\
             [profile.plugin]\ninherits = \"release\"\nopt-level = \"s\"\nlto = true\ncodegen-units = 1\nstrip = \"debuginfo\"\n",
            common::root().join("plugin-sdk").display().to_string()
        );
        let fresh = std::fs::read_to_string(dir.join("src/lib.rs"))
            .ok()
            .as_deref()
            == Some(lib.as_str())
            && std::fs::read_to_string(dir.join("Cargo.toml"))
                .ok()
                .as_deref()
                == Some(cargo.as_str())
            && std::fs::read_to_string(dir.join("plugin.toml"))
                .ok()
                .as_deref()
                == Some(manifest.as_str())
            && dir.join("plugin.wasm").exists();
        if fresh {
            return;
        }
        std::fs::create_dir_all(dir.join("src")).expect("variant crate folder");
        std::fs::write(dir.join("src/lib.rs"), &lib).expect("write the source");
        std::fs::write(dir.join("plugin.toml"), &manifest).expect("write plugin.toml");
        std::fs::write(dir.join("Cargo.toml"), &cargo).expect("write Cargo.toml");
        if !dir.join("Cargo.lock").exists() {
            std::fs::copy(common::root().join("Cargo.lock"), dir.join("Cargo.lock"))
                .expect("copy the lock file");
        }
        let out = Command::new(env!("CARGO_BIN_EXE_kakou"))
            .args(["plugin", "build"])
            .arg(&dir)
            .env("CARGO_TARGET_DIR", common::root().join("target"))
            .stdin(Stdio::null())
            .output()
            .expect("run kakou plugin build");
        assert!(
            out.status.success(),
            "building {}: {}\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
    dir
}

/// A sealed package of the plugin folder `src` in `out`, signed with `key` when given.
pub fn packaged(src: &Path, out: &Path, key: Option<&SecretKey>) -> PathBuf {
    package::package(src, out, key)
        .unwrap_or_else(|e| panic!("packaging {}: {e}", src.display()))
        .dir
}

/// Installs the plugin folder `pkg` as `plugins/<kind>/<name>` the way a site should: copied in
/// beside under a dot-name, the running folder renamed away, the new one renamed into place.
/// Returns when the new folder is in place.
pub fn install(pkg: &Path, plugins: &Path, kind: &str, name: &str) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let parent = plugins.join(kind);
    std::fs::create_dir_all(&parent).expect("plugin kind folder");
    let incoming = parent.join(format!(".{name}.incoming-{n}"));
    copy_dir(pkg, &incoming);
    let target = parent.join(name);
    if target.exists() {
        let old = parent.join(format!(".{name}.old-{n}"));
        std::fs::rename(&target, &old).expect("move the running folder away");
        std::fs::rename(&incoming, &target).expect("rename the new folder into place");
        std::fs::remove_dir_all(&old).expect("remove the old folder");
    } else {
        std::fs::rename(&incoming, &target).expect("rename the new folder into place");
    }
}
