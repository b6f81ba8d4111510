//! Compiled components cached on disk, keyed by the component's digest and the engine's
//! compatibility hash, so a restart or a second daemon does not compile again.
//!
//! Files are written to a temporary name and renamed into place, so a reader never sees half an
//! artifact, and they are read into memory rather than mapped, so a file changed on disk cannot
//! fault a running daemon. The cache directory must be writable only by the
//! daemon's user: its files are loaded as native code.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

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

    fn store(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(
            ".{}.{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("artifact"),
            std::process::id()
        ));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
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
