//! Sealed and signed plugin packages: what a publisher ships and a site drops in.
//!
//! A package is a plugin folder `<name>-<version>/` holding `plugin.toml` sealed with the
//! component's sha256 (`[wasm] sha256`), the component `plugin.wasm`, and, when signed, the
//! detached signature `plugin.sig` ([`super::signing`]). Packaging never touches the source
//! folder: a crate's checked-in `plugin.toml` stays unsealed.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::{self, PluginManifest};
use super::signing::{
    PluginSignature, PublicKey, SIGNATURE_FILE, SecretKey, SignatureError, SignedDigests,
};
use crate::diag::SourceError;

/// File name of the component inside a package.
pub const WASM_FILE: &str = "plugin.wasm";

/// Why a plugin could not be packaged, signed or verified.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The manifest or the signature file is malformed (file, line and what was expected).
    #[error(transparent)]
    File(#[from] SourceError),
    /// A file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Only a sealed plugin is signed.
    #[error(
        "{} has no `wasm.sha256`: only a sealed plugin can be signed (make a sealed, signed package with `kakou plugin build {} --out OUTDIR --key KEY`)",
        path.display(),
        dir.display()
    )]
    Unsealed {
        /// The manifest.
        path: PathBuf,
        /// The plugin folder.
        dir: PathBuf,
    },
    /// The component is not the one the manifest is sealed with.
    #[error(
        "{} has sha256 {actual}, but the manifest is sealed with {sealed}: the component was changed or replaced",
        wasm.display()
    )]
    SealMismatch {
        /// The component.
        wasm: PathBuf,
        /// Its digest, hex.
        actual: String,
        /// The manifest's, hex.
        sealed: String,
    },
    /// The manifest text cannot be sealed.
    #[error("{}: cannot seal the manifest: {reason}", path.display())]
    Seal {
        /// The manifest.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// There is no signature to verify.
    #[error("{} is not signed (no {SIGNATURE_FILE}); sign it with `kakou plugin sign {} --key KEY`", dir.display(), dir.display())]
    Unsigned {
        /// The plugin folder.
        dir: PathBuf,
    },
    /// The signature is not accepted.
    #[error("{}: {source}", dir.display())]
    Signature {
        /// The plugin folder.
        dir: PathBuf,
        /// Why.
        source: SignatureError,
    },
}

/// A plugin folder's manifest (exact text) and component, read for sealing or signing.
struct Files {
    manifest: PluginManifest,
    text: String,
    wasm: Vec<u8>,
}

impl Files {
    fn read(dir: &Path) -> Result<Self, PackageError> {
        let (manifest, text) = PluginManifest::load_text(dir)?;
        let path = manifest.wasm_path();
        let wasm = std::fs::read(&path).map_err(|source| PackageError::Read { path, source })?;
        Ok(Files {
            manifest,
            text,
            wasm,
        })
    }

    fn digests(&self) -> SignedDigests {
        SignedDigests::of(self.text.as_bytes(), &self.wasm)
    }

    /// Checks the seal, when there is one.
    fn check_seal(&self) -> Result<(), PackageError> {
        let actual: [u8; 32] = Sha256::digest(&self.wasm).into();
        match self.manifest.sha256 {
            Some(sealed) if sealed != actual => Err(PackageError::SealMismatch {
                wasm: self.manifest.wasm_path(),
                actual: hex::encode(actual),
                sealed: hex::encode(sealed),
            }),
            _ => Ok(()),
        }
    }
}

/// Returns the manifest text with `[wasm] sha256` set to `digest` and `file` to
/// `plugin.wasm`, keeping every comment and the layout of the rest.
pub fn seal_text(path: &Path, text: &str, digest: &[u8; 32]) -> Result<String, PackageError> {
    let seal_err = |reason: String| PackageError::Seal {
        path: path.to_path_buf(),
        reason,
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| seal_err(e.message().trim().to_owned()))?;
    let wasm = doc
        .entry("wasm")
        .or_insert_with(toml_edit::table)
        .as_table_like_mut()
        .ok_or_else(|| seal_err("`wasm` is not a table".into()))?;
    if wasm
        .get("file")
        .and_then(|f| f.as_str())
        .is_some_and(|f| f != WASM_FILE)
    {
        wasm.insert("file", toml_edit::value(WASM_FILE));
    }
    wasm.insert("sha256", toml_edit::value(hex::encode(digest)));
    let sealed = doc.to_string();
    // The result must be a valid manifest sealed with exactly this digest.
    let check = PluginManifest::parse(path, &sealed)?;
    if check.sha256.as_ref() != Some(digest) {
        return Err(seal_err(
            "the sealed manifest does not carry the digest".into(),
        ));
    }
    Ok(sealed)
}

/// What [`package`] made.
#[derive(Debug, Clone)]
pub struct Package {
    /// The package folder.
    pub dir: PathBuf,
    /// Its (sealed) manifest.
    pub manifest: PluginManifest,
    /// The component's sha256.
    pub digest: [u8; 32],
    /// The signature, when a key was given.
    pub signature: Option<PluginSignature>,
}

/// Packages the built plugin in `src` into `out/<name>-<version>/`: the manifest sealed with the
/// component's digest, the component, and a signature by `key` when given. An existing package
/// of the same name and version is replaced whole.
pub fn package(src: &Path, out: &Path, key: Option<&SecretKey>) -> Result<Package, PackageError> {
    let files = Files::read(src)?;
    files.check_seal()?;
    let digest: [u8; 32] = Sha256::digest(&files.wasm).into();
    let sealed = seal_text(&files.manifest.path, &files.text, &digest)?;

    let name = format!("{}-{}", files.manifest.name, files.manifest.version);
    let dest = out.join(&name);
    let staging = out.join(format!(".{name}.tmp"));
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PackageError::Write { path, source }
    };
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(write_err(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(write_err(&staging))?;
    let manifest_path = staging.join(manifest::FILE_NAME);
    std::fs::write(&manifest_path, &sealed).map_err(write_err(&manifest_path))?;
    let wasm_path = staging.join(WASM_FILE);
    std::fs::write(&wasm_path, &files.wasm).map_err(write_err(&wasm_path))?;
    let signature = key.map(|k| k.sign(SignedDigests::of(sealed.as_bytes(), &files.wasm)));
    if let Some(sig) = &signature {
        sig.write(&staging)
            .map_err(write_err(&staging.join(SIGNATURE_FILE)))?;
    }
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(write_err(&dest))?;
    }
    std::fs::rename(&staging, &dest).map_err(write_err(&dest))?;

    let manifest = PluginManifest::parse(&dest.join(manifest::FILE_NAME), &sealed)?;
    Ok(Package {
        dir: dest,
        manifest,
        digest,
        signature,
    })
}

/// Signs the sealed plugin in `dir` with `key`: writes `dir/plugin.sig`. Refuses an unsealed
/// plugin, and one whose component does not match its seal.
pub fn sign(dir: &Path, key: &SecretKey) -> Result<(PathBuf, PluginSignature), PackageError> {
    let files = Files::read(dir)?;
    if files.manifest.sha256.is_none() {
        return Err(PackageError::Unsealed {
            path: files.manifest.path.clone(),
            dir: dir.to_path_buf(),
        });
    }
    files.check_seal()?;
    let signature = key.sign(files.digests());
    let path = signature
        .write(files.manifest.dir())
        .map_err(|source| PackageError::Write {
            path: files.manifest.dir().join(SIGNATURE_FILE),
            source,
        })?;
    Ok((path, signature))
}

/// Verifies the signature of the plugin in `dir` against `trusted` (and its seal, when it has
/// one); returns its manifest and the key that signed.
pub fn verify(
    dir: &Path,
    trusted: &[PublicKey],
) -> Result<(PluginManifest, PublicKey), PackageError> {
    let files = Files::read(dir)?;
    files.check_seal()?;
    let Some(signature) = PluginSignature::read(files.manifest.dir())? else {
        return Err(PackageError::Unsigned {
            dir: dir.to_path_buf(),
        });
    };
    let key = signature
        .verify(&files.digests(), trusted)
        .map_err(|source| PackageError::Signature {
            dir: dir.to_path_buf(),
            source,
        })?
        .clone();
    Ok((files.manifest, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"# a comment that stays
[plugin]
name = "demo"
version = "1.2.0"
kind = "driver"
api = "^1.0"
description = "demo"

[settings]
x = "1"
"#;

    #[test]
    fn sealing_keeps_the_text_and_adds_the_digest() {
        let p = Path::new("d/plugin.toml");
        let sealed = seal_text(p, MANIFEST, &[0xab; 32]).unwrap();
        assert!(sealed.starts_with(MANIFEST), "{sealed}");
        assert!(
            sealed.ends_with(&format!("\n[wasm]\nsha256 = \"{}\"\n", "ab".repeat(32))),
            "{sealed}"
        );
        // Sealing again replaces the digest.
        let again = seal_text(p, &sealed, &[0xcd; 32]).unwrap();
        assert_eq!(again.matches("sha256").count(), 1, "{again}");
        assert!(again.contains(&"cd".repeat(32)));

        let with_wasm = MANIFEST.replace(
            "[settings]",
            "[wasm]\nfile = \"x.wasm\" # built\n\n[settings]",
        );
        let sealed = seal_text(p, &with_wasm, &[1; 32]).unwrap();
        let m = PluginManifest::parse(p, &sealed).unwrap();
        assert_eq!(m.wasm_file, Path::new("plugin.wasm"));
        assert_eq!(m.sha256, Some([1; 32]));
        assert!(
            sealed.find("sha256").unwrap() < sealed.find("[settings]").unwrap(),
            "{sealed}"
        );
    }

    #[test]
    fn packages_are_sealed_signed_and_verified() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("plugin.toml"), MANIFEST).unwrap();
        std::fs::write(src.join("plugin.wasm"), b"\0asm component").unwrap();
        let key = SecretKey::generate("acme").unwrap();

        let pkg = package(&src, &tmp.path().join("dist"), Some(&key)).unwrap();
        assert_eq!(pkg.dir, tmp.path().join("dist/demo-1.2.0"));
        assert_eq!(pkg.manifest.sha256, Some(pkg.digest));
        assert_eq!(
            std::fs::read_to_string(src.join("plugin.toml")).unwrap(),
            MANIFEST
        );
        let (m, signer) = verify(&pkg.dir, &[key.public()]).unwrap();
        assert_eq!((m.name.as_str(), signer), ("demo", key.public()));

        // Unsealed source: signing refused; the package can be re-signed.
        let e = sign(&src, &key).unwrap_err();
        assert!(
            e.to_string()
                .contains("has no `wasm.sha256`: only a sealed plugin can be signed"),
            "{e}"
        );
        std::fs::remove_file(pkg.dir.join(SIGNATURE_FILE)).unwrap();
        let e = verify(&pkg.dir, &[key.public()]).unwrap_err();
        assert!(matches!(e, PackageError::Unsigned { .. }), "{e}");
        sign(&pkg.dir, &key).unwrap();
        verify(&pkg.dir, &[key.public()]).unwrap();

        // A replaced component breaks the seal before the signature is even looked at.
        std::fs::write(pkg.dir.join("plugin.wasm"), b"\0asm other").unwrap();
        let e = verify(&pkg.dir, &[key.public()]).unwrap_err();
        assert!(
            e.to_string()
                .contains("the component was changed or replaced"),
            "{e}"
        );
        assert!(matches!(
            sign(&pkg.dir, &key).unwrap_err(),
            PackageError::SealMismatch { .. }
        ));

        // Packaging again replaces the package whole.
        let pkg = package(&src, &tmp.path().join("dist"), None).unwrap();
        assert!(!pkg.dir.join(SIGNATURE_FILE).exists());
        assert_eq!(
            std::fs::read(pkg.dir.join("plugin.wasm")).unwrap(),
            b"\0asm component"
        );
    }
}
