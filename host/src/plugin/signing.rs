//! Publisher keys and detached plugin signatures (ed25519).
//!
//! A publisher holds a key pair made by `kakou plugin keygen NAME`: two text files.
//!
//! - `NAME.pub`, the public key, which sites list under `[site] trusted-keys`: one line
//!   `kakou-ed25519 <64 hex digits> <comment>`. Blank lines and `#` comment lines are allowed
//!   around it.
//! - `NAME.key`, the secret key, written with mode 0600: one line
//!   `kakou-ed25519-secret <64 hex digits of the seed> <comment>`, with a `#` warning above.
//!
//! A key is named in messages by its [`KeyId`]: the first 8 bytes of the sha256 of the
//! public key, as 16 hex digits (`3f9a1c2b7d4e8f60`).
//!
//! A plugin folder is signed by `plugin.sig` beside its `plugin.toml` ([`PluginSignature`]), a
//! small TOML file naming the key id, the sha256 of `plugin.toml` and of the component as they
//! were signed, and the ed25519 signature over the domain-separated message
//! `"kakou:plugin-signature:v1\0" ‖ sha256(plugin.toml) ‖ sha256(component)`. Changing either
//! file (or the signature) invalidates it; the recorded digests only serve to say which file
//! changed, they are never trusted on their own.

use std::fmt;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;
use zeroize::Zeroizing;

use crate::diag::SourceError;

/// File name of a plugin's detached signature, beside its `plugin.toml`.
pub const SIGNATURE_FILE: &str = "plugin.sig";
/// First word of a public key line.
pub const PUBLIC_KEY_TAG: &str = "kakou-ed25519";
/// First word of a secret key line.
pub const SECRET_KEY_TAG: &str = "kakou-ed25519-secret";
/// The `format` of a signature file this host writes and reads.
pub const SIGNATURE_FORMAT: &str = "kakou-plugin-signature-v1";
/// Prefix of every signed message, so a plugin signature can never be mistaken for (or made
/// from) a signature over anything else.
const DOMAIN: &[u8] = b"kakou:plugin-signature:v1\0";

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read the key file {}: {source}", path.display())]
    Read {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a key of the expected kind.
    #[error(transparent)]
    Format(#[from] SourceError),
    /// `keygen` refuses to replace a key.
    #[error(
        "{} already exists; a key is never overwritten (remove it first, or choose another name)",
        path.display()
    )]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// The file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The operating system gave no randomness.
    #[error("cannot get randomness from the operating system for a new key: {0}")]
    Random(String),
    /// A key name that cannot be a file name.
    #[error(
        "key name {0:?}: expected 1 to 64 letters, digits, `-`, `_` or `.`, not starting with `.`"
    )]
    BadName(String),
}

/// A short fingerprint naming a public key: the first 8 bytes of its sha256.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId([u8; 8]);

impl KeyId {
    /// The id of a public key.
    pub fn of(key: &VerifyingKey) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }

    /// Parses 16 hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let mut id = [0u8; 8];
        hex::decode_to_slice(text, &mut id).ok()?;
        Some(KeyId(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A publisher's public key, as listed in a site's `trusted-keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: KeyId,
    comment: String,
}

impl PublicKey {
    /// Reads a public key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::parse(path, &text)?)
    }

    /// Parses public key text; `path` is only used in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, SourceError> {
        let (bytes, comment) = parse_key_line(path, text, PUBLIC_KEY_TAG, "public")?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| {
            SourceError::at(
                path,
                text,
                None,
                "the key is not a valid ed25519 public key (not a point on the curve)",
            )
        })?;
        Ok(PublicKey {
            id: KeyId::of(&key),
            key,
            comment,
        })
    }

    /// The key's short fingerprint.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The comment after the key (usually the publisher's name).
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// `3f9a1c2b7d4e8f60 (acme)`, or the id alone when there is no comment.
    pub fn label(&self) -> String {
        if self.comment.is_empty() {
            self.id.to_string()
        } else {
            format!("{} ({})", self.id, self.comment)
        }
    }

    /// The key file's text: `kakou-ed25519 <hex> <comment>` and a newline.
    pub fn to_text(&self) -> String {
        let mut line = format!("{PUBLIC_KEY_TAG} {}", hex::encode(self.key.as_bytes()));
        if !self.comment.is_empty() {
            line.push(' ');
            line.push_str(&self.comment);
        }
        line.push('\n');
        line
    }

    /// Whether `signature` is this key's signature over `digests` (strict verification: no
    /// malleable or small-order forms).
    pub fn verifies(&self, digests: &SignedDigests, signature: &Signature) -> bool {
        self.key
            .verify_strict(&digests.message(), signature)
            .is_ok()
    }
}

/// A publisher's secret key. Its bytes are wiped from memory when it is dropped.
pub struct SecretKey {
    key: SigningKey,
    comment: String,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("id", &self.public().id())
            .field("comment", &self.comment)
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    /// A new random key from the operating system's generator.
    pub fn generate(comment: &str) -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut_slice()).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(SecretKey {
            key: SigningKey::from_bytes(&seed),
            comment: one_line(comment),
        })
    }

    /// Reads a secret key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = Zeroizing::new(text);
        Ok(Self::parse(path, &text)?)
    }

    /// Parses secret key text; `path` is only used in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, SourceError> {
        if text
            .lines()
            .any(|l| l.split_whitespace().next() == Some(PUBLIC_KEY_TAG))
        {
            return Err(SourceError::at(
                path,
                text,
                None,
                format!(
                    "this is a public key; signing needs the secret key file (`{SECRET_KEY_TAG} …`, the .key file beside it)"
                ),
            ));
        }
        let (seed, comment) = parse_key_line(path, text, SECRET_KEY_TAG, "secret")?;
        let seed = Zeroizing::new(seed);
        Ok(SecretKey {
            key: SigningKey::from_bytes(&seed),
            comment,
        })
    }

    /// Its public half.
    pub fn public(&self) -> PublicKey {
        let key = self.key.verifying_key();
        PublicKey {
            id: KeyId::of(&key),
            key,
            comment: self.comment.clone(),
        }
    }

    /// The key file's text (wiped from memory when dropped).
    pub fn to_text(&self) -> Zeroizing<String> {
        let seed = Zeroizing::new(hex::encode(self.key.to_bytes()));
        let mut text = Zeroizing::new(String::new());
        text.push_str(&format!(
            "# kakou plugin signing key {}: SECRET. Whoever holds this file can sign plugins\n\
             # that every site trusting its public key will load. Keep it off gate PCs.\n",
            self.public().id(),
        ));
        text.push_str(SECRET_KEY_TAG);
        text.push(' ');
        text.push_str(&seed);
        if !self.comment.is_empty() {
            text.push(' ');
            text.push_str(&self.comment);
        }
        text.push('\n');
        text
    }

    /// Signs a plugin's digests.
    pub fn sign(&self, digests: SignedDigests) -> PluginSignature {
        PluginSignature {
            key_id: self.public().id(),
            signature: self.key.sign(&digests.message()),
            signed: digests,
        }
    }
}

/// Writes a new key pair `dir/NAME.key` (mode 0600) and `dir/NAME.pub`; refuses to replace
/// either file. Returns the two paths and the public key.
pub fn write_key_pair(
    dir: &Path,
    name: &str,
    comment: Option<&str>,
) -> Result<(PathBuf, PathBuf, PublicKey), KeyError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid {
        return Err(KeyError::BadName(name.to_owned()));
    }
    let secret_path = dir.join(format!("{name}.key"));
    let public_path = dir.join(format!("{name}.pub"));
    for p in [&secret_path, &public_path] {
        if p.exists() {
            return Err(KeyError::Exists { path: p.clone() });
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| KeyError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let secret = SecretKey::generate(comment.unwrap_or(name))?;
    let public = secret.public();
    write_new(&secret_path, secret.to_text().as_bytes(), 0o600)?;
    if let Err(e) = write_new(&public_path, public.to_text().as_bytes(), 0o644) {
        // Leave no half pair behind.
        let _ = std::fs::remove_file(&secret_path);
        return Err(e);
    }
    Ok((secret_path, public_path, public))
}

/// Creates `path` (never replacing a file) with `mode` from the start, and writes `bytes`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let result = options.open(path).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    result.map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            KeyError::Write {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The one key line of a key file: `TAG <64 hex> [comment]`, with blank and `#` lines around.
fn parse_key_line(
    path: &Path,
    text: &str,
    tag: &str,
    what: &str,
) -> Result<([u8; 32], String), SourceError> {
    let err =
        |span: Option<Range<usize>>, message: String| SourceError::at(path, text, span, message);
    let expected = format!("expected `{tag} <64 hex digits> [comment]` (a kakou {what} key)");
    let mut found = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let at = start + (line.len() - line.trim_start().len());
        if found.is_some() {
            return Err(err(
                Some(at..at),
                format!("a second key line; a key file holds one key ({expected})"),
            ));
        }
        found = Some((at, trimmed));
    }
    let Some((at, line)) = found else {
        return Err(err(None, format!("the file holds no key; {expected}")));
    };
    let mut words = line.splitn(3, char::is_whitespace);
    let first = words.next().unwrap_or_default();
    if first != tag {
        return Err(err(
            Some(at..at),
            format!("starts with {first:?}; {expected}"),
        ));
    }
    let rest = line[first.len()..].trim_start();
    let hex_at = at + (line.len() - rest.len());
    let digits = rest.split_whitespace().next().unwrap_or_default();
    let mut bytes = [0u8; 32];
    if hex::decode_to_slice(digits, &mut bytes).is_err() {
        return Err(err(
            Some(hex_at..hex_at),
            match digits.chars().count() {
                64 => "expected 64 hexadecimal digits, got a character that is not one".into(),
                n => format!("expected 64 hexadecimal digits, got {n} characters"),
            },
        ));
    }
    let comment = rest[digits.len()..].trim().to_owned();
    Ok((bytes, comment))
}

/// What a plugin signature covers: the sha256 of `plugin.toml` and of the component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedDigests {
    /// sha256 of the manifest file's bytes.
    pub manifest: [u8; 32],
    /// sha256 of the component's bytes.
    pub wasm: [u8; 32],
}

impl SignedDigests {
    /// The digests of a manifest's and a component's bytes.
    pub fn of(manifest: &[u8], wasm: &[u8]) -> Self {
        SignedDigests {
            manifest: Sha256::digest(manifest).into(),
            wasm: Sha256::digest(wasm).into(),
        }
    }

    /// The signed message: domain, manifest digest, component digest.
    fn message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(DOMAIN.len() + 64);
        m.extend_from_slice(DOMAIN);
        m.extend_from_slice(&self.manifest);
        m.extend_from_slice(&self.wasm);
        m
    }
}

/// The contents of `plugin.sig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSignature {
    /// The key that signed.
    pub key_id: KeyId,
    /// The digests as they were signed (informative: the signature is always checked against
    /// the files' actual digests).
    pub signed: SignedDigests,
    /// The ed25519 signature.
    pub signature: Signature,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSignature {
    format: Spanned<String>,
    key_id: Spanned<String>,
    manifest_sha256: Spanned<String>,
    wasm_sha256: Spanned<String>,
    signature: Spanned<String>,
}

impl PluginSignature {
    /// Reads `dir/plugin.sig`; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Self>, SourceError> {
        let path = dir.join(SIGNATURE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&path, &text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SourceError::unreadable(&path, &e)),
        }
    }

    /// Parses signature file text; `path` is only used in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, SourceError> {
        let err =
            |span: Range<usize>, message: String| SourceError::at(path, text, Some(span), message);
        let raw: RawSignature = crate::diag::parse_toml(path, text)?;
        if raw.format.get_ref() != SIGNATURE_FORMAT {
            return Err(err(
                raw.format.span(),
                format!(
                    "field `format`: {:?} is not a signature format this host reads (expected {SIGNATURE_FORMAT:?})",
                    raw.format.get_ref()
                ),
            ));
        }
        let key_id = KeyId::parse(raw.key_id.get_ref()).ok_or_else(|| {
            err(
                raw.key_id.span(),
                format!(
                    "field `key-id`: expected 16 hexadecimal digits, got {:?}",
                    raw.key_id.get_ref()
                ),
            )
        })?;
        let digest = |field: &Spanned<String>, name: &str| {
            let mut d = [0u8; 32];
            hex::decode_to_slice(field.get_ref(), &mut d)
                .map(|()| d)
                .map_err(|_| {
                    err(
                        field.span(),
                        format!(
                            "field `{name}`: expected 64 hexadecimal digits, got {:?}",
                            field.get_ref()
                        ),
                    )
                })
        };
        let signed = SignedDigests {
            manifest: digest(&raw.manifest_sha256, "manifest-sha256")?,
            wasm: digest(&raw.wasm_sha256, "wasm-sha256")?,
        };
        let mut sig = [0u8; 64];
        hex::decode_to_slice(raw.signature.get_ref(), &mut sig).map_err(|_| {
            err(
                raw.signature.span(),
                "field `signature`: expected 128 hexadecimal digits (an ed25519 signature)".into(),
            )
        })?;
        Ok(PluginSignature {
            key_id,
            signed,
            signature: Signature::from_bytes(&sig),
        })
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        format!(
            "# kakou plugin signature: ed25519 over sha256(plugin.toml) and sha256(the component).\n\
             # Made by `kakou plugin sign`; check it with `kakou plugin verify DIR --trust KEY.pub`.\n\
             format = \"{SIGNATURE_FORMAT}\"\n\
             key-id = \"{}\"\n\
             manifest-sha256 = \"{}\"\n\
             wasm-sha256 = \"{}\"\n\
             signature = \"{}\"\n",
            self.key_id,
            hex::encode(self.signed.manifest),
            hex::encode(self.signed.wasm),
            hex::encode(self.signature.to_bytes()),
        )
    }

    /// Writes `dir/plugin.sig` (through a temporary file, so a reader never sees half of it).
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join(SIGNATURE_FILE);
        let tmp = dir.join(format!("{SIGNATURE_FILE}.tmp"));
        std::fs::write(&tmp, self.to_text())?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// Checks the signature against the files' actual digests and the trusted keys; returns
    /// the key that signed.
    pub fn verify<'k>(
        &self,
        actual: &SignedDigests,
        trusted: &'k [PublicKey],
    ) -> Result<&'k PublicKey, SignatureError> {
        let Some(key) = trusted.iter().find(|k| k.id() == self.key_id) else {
            return Err(SignatureError::UntrustedKey {
                key_id: self.key_id,
                trusted: trusted.iter().map(PublicKey::label).collect(),
            });
        };
        if key.verifies(actual, &self.signature) {
            return Ok(key);
        }
        let manifest = self.signed.manifest != actual.manifest;
        let wasm = self.signed.wasm != actual.wasm;
        let key = key.label();
        Err(match (manifest, wasm) {
            (true, true) => SignatureError::Changed {
                key,
                what: "plugin.toml and the component were both".into(),
            },
            (true, false) => SignatureError::Changed {
                key,
                what: "plugin.toml was".into(),
            },
            (false, true) => SignatureError::Changed {
                key,
                what: "the component was".into(),
            },
            (false, false) => SignatureError::Invalid { key },
        })
    }
}

/// Why a signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Signed, but by a key the site does not trust.
    #[error(
        "signed by key {key_id}, which is not trusted here (trusted keys: {})",
        if trusted.is_empty() { "none".to_owned() } else { trusted.join(", ") }
    )]
    UntrustedKey {
        /// The key that signed.
        key_id: KeyId,
        /// The trusted keys, labelled.
        trusted: Vec<String>,
    },
    /// The files changed after signing.
    #[error("bad signature: {what} changed after key {key} signed it; rebuild and sign again")]
    Changed {
        /// The signing key, labelled.
        key: String,
        /// Which file or files.
        what: String,
    },
    /// The signature itself does not verify.
    #[error(
        "bad signature: the signature in {SIGNATURE_FILE} does not verify with key {key} (the signature file was altered)"
    )]
    Invalid {
        /// The signing key, labelled.
        key: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(comment: &str) -> (SecretKey, PublicKey) {
        let secret = SecretKey::generate(comment).unwrap();
        let public = secret.public();
        (secret, public)
    }

    #[test]
    fn key_files_round_trip() {
        let (secret, public) = pair("acme plugins");
        let p = Path::new("acme.pub");
        let text = public.to_text();
        assert!(text.starts_with("kakou-ed25519 "), "{text}");
        assert!(text.ends_with(" acme plugins\n"), "{text}");
        assert_eq!(PublicKey::parse(p, &text).unwrap(), public);
        assert_eq!(public.id().to_string().len(), 16);
        assert_eq!(public.comment(), "acme plugins");

        let s = Path::new("acme.key");
        let back = SecretKey::parse(s, &secret.to_text()).unwrap();
        assert_eq!(back.public(), public);
        assert!(format!("{back:?}").contains(&public.id().to_string()));
        assert!(!format!("{back:?}").contains(&hex::encode(back.key.to_bytes())));
    }

    #[test]
    fn signatures_cover_both_files() {
        let (secret, public) = pair("acme");
        let digests = SignedDigests::of(b"[plugin]\n", b"\0asm");
        let sig = secret.sign(digests);
        let trusted = std::slice::from_ref(&public);
        assert_eq!(sig.verify(&digests, trusted).unwrap(), &public);

        let manifest = SignedDigests::of(b"[plugin] \n", b"\0asm");
        let e = sig.verify(&manifest, trusted).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("bad signature: plugin.toml was changed after key"),
            "{e}"
        );
        let wasm = SignedDigests::of(b"[plugin]\n", b"\0asn");
        let e = sig.verify(&wasm, trusted).unwrap_err();
        assert!(e.to_string().contains("the component was changed"), "{e}");

        let mut forged = sig.clone();
        forged.signed = manifest;
        let e = forged.verify(&manifest, trusted).unwrap_err();
        assert!(matches!(e, SignatureError::Invalid { .. }), "{e}");

        let (_, other) = pair("other");
        let e = sig
            .verify(&digests, std::slice::from_ref(&other))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "signed by key {}, which is not trusted here (trusted keys: {} (other))",
                public.id(),
                other.id()
            )
        );
        let e = sig.verify(&digests, &[]).unwrap_err();
        assert!(e.to_string().ends_with("(trusted keys: none)"), "{e}");
    }

    #[test]
    fn the_message_is_domain_separated() {
        let digests = SignedDigests::of(b"a", b"b");
        let m = digests.message();
        assert!(m.starts_with(b"kakou:plugin-signature:v1\0"));
        assert_eq!(m.len(), DOMAIN.len() + 64);
        // A raw signature over the bare digests is not a plugin signature.
        let (secret, public) = pair("x");
        let mut bare = digests.manifest.to_vec();
        bare.extend(digests.wasm);
        let sig = PluginSignature {
            key_id: public.id(),
            signed: digests,
            signature: secret.key.sign(&bare),
        };
        assert!(sig.verify(&digests, &[public]).is_err());
    }

    #[test]
    fn signature_file_round_trip_and_errors() {
        let (secret, _) = pair("acme");
        let sig = secret.sign(SignedDigests::of(b"m", b"w"));
        let path = Path::new("p/plugin.sig");
        let text = sig.to_text();
        assert_eq!(PluginSignature::parse(path, &text).unwrap(), sig);

        let cases: &[(&str, &str, &str)] = &[
            (
                "format = \"kakou-plugin-signature-v1\"",
                "format = \"v2\"",
                "p/plugin.sig:3:10: field `format`: \"v2\" is not a signature format this host reads (expected \"kakou-plugin-signature-v1\")",
            ),
            (
                "key-id = \"",
                "key-id = \"zz",
                "p/plugin.sig:4:10: field `key-id`: expected 16 hexadecimal digits, got",
            ),
            (
                "signature = \"",
                "signature = \"00",
                "p/plugin.sig:7:13: field `signature`: expected 128 hexadecimal digits (an ed25519 signature)",
            ),
            (
                "format =",
                "extra = 1\nformat =",
                "p/plugin.sig:3:1: unknown field `extra`",
            ),
        ];
        for (from, to, expected) in cases {
            let edited = text.replacen(from, to, 1);
            let e = PluginSignature::parse(path, &edited)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(expected),
                "{from:?} -> {to:?}\n  expected {expected}\n  got      {e}"
            );
        }
    }

    #[test]
    fn key_file_errors_name_file_and_line() {
        let p = Path::new("keys/acme.pub");
        let e = PublicKey::parse(p, "# comment\n\nssh-ed25519 AAAA x\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "keys/acme.pub:3:1: starts with \"ssh-ed25519\"; expected `kakou-ed25519 <64 hex digits> [comment]` (a kakou public key)"
        );
        let e = PublicKey::parse(p, "kakou-ed25519 abcd\n").unwrap_err();
        assert!(
            e.to_string().starts_with(
                "keys/acme.pub:1:15: expected 64 hexadecimal digits, got 4 characters"
            ),
            "{e}"
        );
        let e = PublicKey::parse(p, "\n").unwrap_err();
        assert!(e.to_string().contains("the file holds no key"), "{e}");
        let (secret, public) = pair("a");
        let two = format!("{}{}", public.to_text(), public.to_text());
        let e = PublicKey::parse(p, &two).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("keys/acme.pub:2:1: a second key line"),
            "{e}"
        );
        // A secret key is not a public key, and the other way round.
        let e = PublicKey::parse(p, &secret.to_text()).unwrap_err();
        assert!(
            e.to_string()
                .contains("starts with \"kakou-ed25519-secret\""),
            "{e}"
        );
        let e = SecretKey::parse(Path::new("a.key"), &public.to_text()).unwrap_err();
        assert!(e.to_string().contains("this is a public key"), "{e}");
    }

    #[test]
    fn key_pairs_are_written_once_with_a_private_secret() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public, key) = write_key_pair(dir.path(), "acme", None).unwrap();
        assert_eq!(PublicKey::load(&public).unwrap(), key);
        assert_eq!(SecretKey::load(&secret).unwrap().public(), key);
        assert_eq!(key.comment(), "acme");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let e = write_key_pair(dir.path(), "acme", None).unwrap_err();
        assert!(matches!(e, KeyError::Exists { .. }), "{e}");
        assert!(e.to_string().contains("acme.key already exists"), "{e}");
        let e = write_key_pair(dir.path(), "../x", None).unwrap_err();
        assert!(matches!(e, KeyError::BadName(_)), "{e}");
    }
}
