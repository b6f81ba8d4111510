//! Shared by the host's integration tests: plugins built from source, once per process.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use kakou_host::plugin::build;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// Builds the plugin crate at `rel` (from the workspace root) into its component, once per test
/// process and under a file lock shared with other test processes, and returns its folder.
pub fn plugin(rel: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = built.get(rel) {
        return dir.clone();
    }
    let dir = root().join(rel);
    let lock_path = root().join("target").join(".kakou-plugin-build.lock");
    std::fs::create_dir_all(lock_path.parent().expect("lock has a parent")).expect("target dir");
    let lock = File::create(&lock_path).expect("create the build lock");
    lock.lock().expect("take the build lock");
    build::build(&dir).unwrap_or_else(|e| panic!("building {rel}: {e}"));
    drop(lock);
    built.insert(rel.to_owned(), dir.clone());
    dir
}

/// Copies a built plugin folder (manifest and component) into `into`, applying `edit` to the
/// manifest text, and returns the copy's folder.
pub fn variant(rel: &str, into: &Path, edit: impl FnOnce(String) -> String) -> PathBuf {
    let src = plugin(rel);
    std::fs::create_dir_all(into).expect("variant dir");
    let manifest = std::fs::read_to_string(src.join("plugin.toml")).expect("manifest");
    std::fs::write(into.join("plugin.toml"), edit(manifest)).expect("write manifest");
    std::fs::copy(src.join("plugin.wasm"), into.join("plugin.wasm")).expect("copy component");
    into.to_path_buf()
}

/// The weight-check fixture: a passage (gross 37 900 kg, plate 粤B12345, one 20 ft container)
/// and the registrations and documents it is judged against.
pub fn weight_fixture() -> (
    kakou_host::sdk::model::Passage,
    kakou_host::sdk::harness::Dataset,
) {
    #[derive(serde::Deserialize)]
    struct Fixture {
        passage: kakou_host::sdk::model::Passage,
        data: kakou_host::sdk::harness::Dataset,
    }
    let path = root().join("plugins/rules/weight-check/fixtures/passage.json");
    let text = std::fs::read_to_string(&path).expect("weight-check fixture");
    let f: Fixture = serde_json::from_str(&text).expect("weight-check fixture parses");
    (f.passage, f.data)
}

/// The fixture passage with another gross weight.
pub fn weighed(gross_kg: f64) -> kakou_host::sdk::model::Passage {
    use kakou_host::sdk::model::ReadingValue;
    let (mut p, _) = weight_fixture();
    for o in &mut p.observations {
        if let ReadingValue::Weight(w) = &mut o.reading.value {
            w.kg = gross_kg;
        }
    }
    p
}

/// A free TCP port on loopback (free when asked; tests bind it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// The Mosquitto broker binary (Debian puts it in /usr/sbin, which is not always on PATH).
pub fn mosquitto() -> PathBuf {
    [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .unwrap_or_else(|| PathBuf::from("mosquitto"))
}
