//! Compiled components cached on disk, keyed by the component's digest and the engine's
//! compatibility hash, so a restart or a second daemon does not compile again.
//!
//! An artifact is never changed in place. Its path is derived from what it holds (the
//! component's sha256 and the engine's compatibility hash), so a new version of a plugin (a hot
//! swap) is always a new file beside the old one. Each write goes to a temporary name unique to
//! the writing process and call (two loads of the same plugin at once, say a hot swap's
//! background load and another load, never write the same temporary file), is synced, and is
//! renamed into place: a reader sees the old file or the whole new one, never half of one, and
//! a rename replaces the directory entry, not the bytes an earlier reader opened. Artifacts are
//! read into memory rather than mapped, so even a file changed on disk behind the daemon's back
//! cannot fault a running plugin. The cache directory must be writable only by the daemon's
//! user: its files are loaded as native code.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Whether a compile was served from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a previously compiled artifact.
    Hit,
    /// Compiled now (and stored, when a cache is configured).
    Compiled,
}

/// On-disk cache of precompiled components.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactCache {
    dir: PathBuf,
}

/// Feeds `Hash` output into sha256, so the key is stable across runs and Rust versions.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        let d = self.0.clone().finalize();
        u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }
}

impl ArtifactCache {
    pub(crate) fn new(dir: PathBuf) -> Self {
        ArtifactCache { dir }
    }

    fn path_for(&self, engine: &Engine, digest: &[u8; 32]) -> PathBuf {
        let mut h = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut h);
        h.0.update(digest);
        let key = hex::encode(&h.0.finalize()[..20]);
        self.dir.join(format!("{key}.cwasm"))
    }

    /// The component for `wasm`, from the cache when possible.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        digest: &[u8; 32],
        wasm: &[u8],
    ) -> Result<(Component, CacheOutcome), String> {
        let path = self.path_for(engine, digest);
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    "cached artifact unusable, compiling again: {e:#}"
                ),
            }
        }
        let compiled = engine
            .precompile_component(wasm)
            .map_err(|e| format!("{e:#}"))?;
        if let Err(e) = self.store(&path, &compiled) {
            tracing::warn!(dir = %self.dir.display(), "cannot write the artifact cache: {e}");
            return Component::new(engine, wasm)
                .map(|c| (c, CacheOutcome::Compiled))
                .map_err(|e| format!("{e:#}"));
        }
        deserialize(engine, &path)
            .map(|c| (c, CacheOutcome::Compiled))
            .map_err(|e| format!("{e:#}"))
    }

    /// Writes an artifact: a fresh temporary file, synced, renamed over `path`.
    fn store(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        static WRITES: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(
            ".{}.{}-{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("artifact"),
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(bytes)?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }
}

/// Reads an artifact into memory (not a mapping: a file changed underneath a mapping would
/// fault the whole daemon) and loads it.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    let bytes = std::fs::read(path)?;
    // SAFETY: the bytes were produced by `Engine::precompile_component` of an engine with the
    // same compatibility hash (it is part of the file name) and written by this daemon into
    // its own cache directory, which must not be writable by others (module docs). Wasmtime
    // additionally checks the artifact's header and compatibility before using it.
    unsafe { Component::deserialize(engine, &bytes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_artifact_is_replaced_by_rename_never_rewritten_in_place() {
        use std::io::Read;
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::new(dir.path().join("artifacts"));
        let path = cache.dir.join("k.cwasm");
        cache.store(&path, b"first").unwrap();
        let before = std::fs::metadata(&path).unwrap().ino();
        // A reader holding the old file keeps the old bytes whatever is stored after it.
        let mut held = std::fs::File::open(&path).unwrap();
        cache.store(&path, b"second, longer").unwrap();
        assert_ne!(
            std::fs::metadata(&path).unwrap().ino(),
            before,
            "a new file"
        );
        let mut old = String::new();
        held.read_to_string(&mut old).unwrap();
        assert_eq!(old, "first");
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(&cache.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["k.cwasm"]);
    }

    #[test]
    fn concurrent_writes_of_one_artifact_never_mix() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::new(dir.path().to_path_buf());
        let path = dir.path().join("same.cwasm");
        let threads: Vec<_> = (0..8u8)
            .map(|i| {
                let (cache, path) = (cache.clone(), path.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        cache.store(&path, &vec![i; 256 * 1024]).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 256 * 1024);
        assert!(
            bytes.iter().all(|b| *b == bytes[0]),
            "one writer's bytes only"
        );
    }
}
