//! The plugin supply chain, end to end: publisher keys, sealed and signed packages, the
//! signature step of the load path, site trust, scaffolded plugin crates and fixture tests of
//! built components, through the real `kakou` binary and the real load path.

#![allow(clippy::unwrap_used)] // test helpers fail loudly, like the tests

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kakou_host::config::SiteManifest;
use kakou_host::plugin::signing::{PublicKey, SecretKey};
use kakou_host::plugin::{LoadOptions, LoadStep, Runtime, SignatureStatus, package};

const XK3190: &str = "plugins/drivers/xk3190";
const YAOHUA: &str = "plugins/drivers/yaohua-a12";
const CHAFON: &str = "plugins/drivers/chafon-uhf18";
const WEIGHT: &str = "plugins/rules/weight-check";

/// Runs the `kakou` binary from the workspace root.
fn kakou(args: &[&str]) -> Output {
    kakou_with(args, &[])
}

fn kakou_with(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let cache = common::root().join("target").join("test-artifact-cache");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kakou"));
    cmd.args(args)
        .current_dir(common::root())
        .env("KAKOU_CACHE_DIR", cache)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run kakou")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts success and returns standard output.
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Asserts failure and returns standard output and error together.
fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected a failure\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A key pair made by `kakou plugin keygen NAME --dir DIR`.
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    ok(&kakou(&["plugin", "keygen", name, "--dir", s(dir)]));
    (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    )
}

/// A sealed package of the (built) plugin at `rel`, signed with `key` when given.
fn packaged(rel: &str, out: &Path, key: Option<&Path>) -> PathBuf {
    let key = key.map(|k| SecretKey::load(k).unwrap());
    package::package(&common::plugin(rel), out, key.as_ref())
        .unwrap()
        .dir
}

fn runtime() -> Runtime {
    Runtime::new(None).expect("runtime")
}

/// The step and message of a refusal.
fn refused(dir: &Path, options: &LoadOptions) -> (LoadStep, String) {
    match runtime().load(dir, options) {
        Ok(p) => panic!("{} loaded: {}", dir.display(), p.signature()),
        Err(e) => (e.step(), e.to_string()),
    }
}

/// Runs `f` under the file lock the shared helper builds plugins under, so builds from
/// several test processes do not interleave in the shared wasm target folder.
fn with_build_lock<T>(f: impl FnOnce() -> T) -> T {
    let lock_path = common::root()
        .join("target")
        .join(".kakou-plugin-build.lock");
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let lock = File::create(&lock_path).unwrap();
    lock.lock().unwrap();
    let out = f();
    drop(lock);
    out
}

#[test]
fn keygen_sign_and_verify_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    let (secret, public) = keygen(&keys, "acme");
    let key = PublicKey::load(&public).unwrap();
    assert_eq!(key.comment(), "acme");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the secret key must be private");
    }
    let pub_text = std::fs::read_to_string(&public).unwrap();
    assert!(pub_text.starts_with("kakou-ed25519 "), "{pub_text}");
    // Never overwritten.
    let before = std::fs::read(&secret).unwrap();
    let again = fails(&kakou(&["plugin", "keygen", "acme", "--dir", s(&keys)]));
    assert!(again.contains("acme.key already exists"), "{again}");
    assert_eq!(std::fs::read(&secret).unwrap(), before);

    // The checked-in plugin is unsealed: it cannot be signed as it is.
    common::plugin(XK3190);
    let refused = fails(&kakou(&["plugin", "sign", XK3190, "--key", s(&secret)]));
    assert!(
        refused.contains("has no `wasm.sha256`: only a sealed plugin can be signed"),
        "{refused}"
    );

    // A sealed package can; verify names the key and says OK.
    let pkg = packaged(XK3190, &tmp.path().join("dist"), None);
    let signed = ok(&kakou(&["plugin", "sign", s(&pkg), "--key", s(&secret)]));
    assert!(
        signed.contains(&format!("with key {} (acme)", key.id())),
        "{signed}"
    );
    let verified = ok(&kakou(&[
        "plugin",
        "verify",
        s(&pkg),
        "--trust",
        s(&public),
    ]));
    assert!(
        verified.starts_with("xk3190@1.0.0")
            && verified.ends_with(&format!("signed by key {} (acme): OK\n", key.id())),
        "{verified}"
    );

    // `check --trust` runs the whole load path with the signature step.
    let checked = ok(&kakou(&[
        "plugin",
        "check",
        s(&pkg),
        "--sealed",
        "--trust",
        s(&public),
    ]));
    assert!(
        checked.contains(&format!(
            "signature    signed by trusted key {} (acme)",
            key.id()
        )),
        "{checked}"
    );
    assert!(checked.contains("(sealed)"), "{checked}");
    let unsigned = ok(&kakou(&["plugin", "check", XK3190]));
    assert!(
        unsigned.contains("signature    unsigned development build"),
        "{unsigned}"
    );

    // Another publisher's key is not this one.
    let (_, other) = keygen(&keys, "other");
    let wrong = fails(&kakou(&["plugin", "verify", s(&pkg), "--trust", s(&other)]));
    assert!(
        wrong.contains(&format!(
            "signed by key {}, which is not trusted here",
            key.id()
        )),
        "{wrong}"
    );
    let wrong = fails(&kakou(&["plugin", "check", s(&pkg), "--trust", s(&other)]));
    assert!(wrong.contains("refused at step `signature`"), "{wrong}");
}

#[test]
fn the_load_path_refuses_each_broken_supply_chain_with_its_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let (secret, public) = keygen(tmp.path(), "acme");
    let (_, other) = keygen(tmp.path(), "other");
    let key = PublicKey::load(&public).unwrap();
    let other = PublicKey::load(&other).unwrap();
    let trusting = LoadOptions::trusting(vec![key.clone()]);
    let id = key.id();
    // Each case gets its own package (a fresh copy of the same signed plugin).
    let fresh = |name: &str| {
        let pkg = packaged(WEIGHT, &tmp.path().join(name), Some(&secret));
        let loaded = runtime().load(&pkg, &trusting).unwrap();
        assert_eq!(
            loaded.signature(),
            &SignatureStatus::Trusted {
                key_id: id,
                comment: "acme".into()
            }
        );
        pkg
    };
    let edit = |path: PathBuf, f: &dyn Fn(String) -> String| {
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, f(text)).unwrap();
    };

    // A replaced component under an unchanged seal: the digest step says so.
    let pkg = fresh("wasm");
    let mut wasm = std::fs::read(pkg.join("plugin.wasm")).unwrap();
    wasm.extend(b"\0");
    std::fs::write(pkg.join("plugin.wasm"), &wasm).unwrap();
    let (step, msg) = refused(&pkg, &trusting);
    assert_eq!(step, LoadStep::Digest, "{msg}");
    assert!(msg.contains("the file was changed or replaced"), "{msg}");

    // ... and re-sealed to match: the signature catches both files.
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&wasm))
    };
    edit(pkg.join("plugin.toml"), &|t| {
        let at = t.find("sha256 = \"").unwrap() + 10;
        format!("{}{digest}{}", &t[..at], &t[at + 64..])
    });
    let (step, msg) = refused(&pkg, &trusting);
    assert_eq!(step, LoadStep::Signature, "{msg}");
    assert!(
        msg.ends_with(&format!(
            "refused at step `signature`: bad signature: plugin.toml and the component were both changed after key {id} (acme) signed it; rebuild and sign again"
        )),
        "{msg}"
    );

    // A manifest that grants itself more.
    let pkg = fresh("manifest");
    edit(pkg.join("plugin.toml"), &|t| {
        t.replace("fuel = 50000000", "fuel = 900000000")
    });
    let (step, msg) = refused(&pkg, &trusting);
    assert_eq!(step, LoadStep::Signature, "{msg}");
    assert!(
        msg.contains(&format!(
            "bad signature: plugin.toml was changed after key {id} (acme) signed it"
        )),
        "{msg}"
    );

    // An altered signature.
    let pkg = fresh("sig");
    edit(pkg.join("plugin.sig"), &|t| {
        let at = t.find("signature = \"").unwrap() + 13;
        let flipped = if &t[at..at + 1] == "0" { "1" } else { "0" };
        format!("{}{flipped}{}", &t[..at], &t[at + 1..])
    });
    let (step, msg) = refused(&pkg, &trusting);
    assert_eq!(step, LoadStep::Signature, "{msg}");
    assert!(
        msg.contains("bad signature: the signature in plugin.sig does not verify"),
        "{msg}"
    );
    // Development sites do not wave a bad signature through either.
    let (step, _) = refused(
        &pkg,
        &LoadOptions {
            trusted_keys: vec![key.clone()],
            ..LoadOptions::development()
        },
    );
    assert_eq!(step, LoadStep::Signature);

    // Signed by a key the site does not trust: refused naming it, unless development.
    let pkg = fresh("wrong-key");
    let (step, msg) = refused(&pkg, &LoadOptions::trusting(vec![other.clone()]));
    assert_eq!(step, LoadStep::Signature, "{msg}");
    assert!(
        msg.ends_with(&format!(
            "signed by key {id}, which is not trusted here (trusted keys: {} (other))",
            other.id()
        )),
        "{msg}"
    );
    let dev = runtime().load(&pkg, &LoadOptions::development()).unwrap();
    assert_eq!(
        dev.signature(),
        &SignatureStatus::UntrustedKey { key_id: id }
    );

    // Unsigned.
    std::fs::remove_file(pkg.join("plugin.sig")).unwrap();
    let (step, msg) = refused(&pkg, &trusting);
    assert_eq!(step, LoadStep::Signature, "{msg}");
    assert!(
        msg.contains("the plugin is unsigned (no plugin.sig), and only plugins signed by a trusted key are accepted"),
        "{msg}"
    );
    let dev = runtime().load(&pkg, &LoadOptions::development()).unwrap();
    assert_eq!(dev.signature(), &SignatureStatus::Unsigned);

    // Correctly signed, but for an API this host does not serve.
    let variant = common::variant(WEIGHT, &tmp.path().join("api2-src"), |m| {
        m.replace("api = \"^1.0\"", "api = \"^2.0\"")
    });
    let key_file = SecretKey::load(&secret).unwrap();
    let pkg = package::package(&variant, &tmp.path().join("api2"), Some(&key_file))
        .unwrap()
        .dir;
    let (step, msg) = refused(&pkg, &trusting);
    assert_eq!(step, LoadStep::Api, "{msg}");
    assert!(
        msg.ends_with("the plugin needs kakou:plugin ^2.0, but this host provides 1.0.0"),
        "{msg}"
    );
}

#[test]
fn a_site_trusts_the_keys_its_manifest_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let (secret, _) = keygen(&site.join("keys"), "acme");
    let plugins = site.join("plugins");
    let pkg = packaged(XK3190, &tmp.path().join("dist"), Some(&secret));
    std::fs::create_dir_all(plugins.join("drivers")).unwrap();
    std::fs::rename(&pkg, plugins.join("drivers/xk3190")).unwrap();
    let manifest = |extra: &str| {
        format!(
            "[site]\nid = \"s1\"\noffice = \"5201\"\n{extra}\ngateway = true\n[[lane]]\nid = \"L01\"\ncategory = \"A\"\ndirection = \"import\"\n"
        )
    };
    let path = site.join("site.toml");
    std::fs::write(&path, manifest("trusted-keys = [\"keys/acme.pub\"]")).unwrap();
    let m = SiteManifest::load(&path).unwrap();
    assert_eq!(m.site.trusted_keys.len(), 1);
    assert_eq!(m.site.trusted_keys[0].comment(), "acme");
    let options = m.site.load_options();
    assert!(!options.allow_unsigned && !options.allow_unsealed);
    runtime()
        .load_driver(&m.site.plugins.join("drivers/xk3190"), &options)
        .unwrap();
    // The repository's own (unsigned, unsealed) build is not good enough for this site...
    let (step, _) = refused(&common::plugin(XK3190), &options);
    assert_eq!(step, LoadStep::Digest);
    // ... but is for a development site.
    std::fs::write(&path, manifest("allow-dev-plugins = true")).unwrap();
    let dev = SiteManifest::load(&path).unwrap().site.load_options();
    runtime()
        .load_driver(&common::plugin(XK3190), &dev)
        .unwrap();

    // Key files are read and checked with the manifest, with file and line.
    std::fs::write(&path, manifest("trusted-keys = [\"keys/missing.pub\"]")).unwrap();
    let e = SiteManifest::load(&path).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}:4:17: site `trusted-keys`: \"keys/missing.pub\" is not a usable public key file: cannot read the key file",
            path.display()
        )),
        "{e}"
    );
    std::fs::write(
        site.join("keys/bad.pub"),
        "# ours\nkakou-ed25519 1234 acme\n",
    )
    .unwrap();
    std::fs::write(&path, manifest("trusted-keys = [\"keys/bad.pub\"]")).unwrap();
    let e = SiteManifest::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("keys/bad.pub:2:15: expected 64 hexadecimal digits, got 4 characters"),
        "{e}"
    );
    std::fs::write(
        &path,
        manifest("trusted-keys = [\"keys/acme.pub\", \"keys/acme.pub\"]"),
    )
    .unwrap();
    let e = SiteManifest::load(&path).unwrap_err().to_string();
    assert!(e.contains("which is already listed"), "{e}");
}

#[test]
fn build_out_makes_a_sealed_signed_package_and_checks_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (secret, public) = keygen(tmp.path(), "acme");
    let key = PublicKey::load(&public).unwrap();
    common::plugin(XK3190);
    let source_manifest =
        std::fs::read_to_string(common::root().join(XK3190).join("plugin.toml")).unwrap();
    let dist = tmp.path().join("dist");
    let out = with_build_lock(|| {
        kakou(&[
            "plugin",
            "build",
            XK3190,
            "--out",
            s(&dist),
            "--key",
            s(&secret),
        ])
    });
    let stdout = ok(&out);
    let pkg = dist.join("xk3190-1.0.0");
    assert!(
        stdout.contains(&format!(
            "packaged {}: driver xk3190 1.0.0, sha256 ",
            pkg.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "signed by trusted key {} (acme); load path ok (kakou:plugin@1.0.0)",
            key.id()
        )),
        "{stdout}"
    );
    let mut files: Vec<String> = std::fs::read_dir(&pkg)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["plugin.sig", "plugin.toml", "plugin.wasm"]);
    let sealed = std::fs::read_to_string(pkg.join("plugin.toml")).unwrap();
    assert!(
        sealed.starts_with(&source_manifest),
        "comments and layout are kept"
    );
    assert!(sealed.contains("[wasm]\nsha256 = \""), "{sealed}");
    // The checked-in manifest is never rewritten.
    assert_eq!(
        std::fs::read_to_string(common::root().join(XK3190).join("plugin.toml")).unwrap(),
        source_manifest
    );
    ok(&kakou(&[
        "plugin",
        "verify",
        s(&pkg),
        "--trust",
        s(&public),
    ]));

    // --key needs --out.
    let e = fails(&kakou(&["plugin", "build", XK3190, "--key", s(&secret)]));
    assert!(e.contains("--out"), "{e}");
}

#[test]
fn plugin_test_runs_the_real_plugins_fixtures() {
    for rel in [XK3190, YAOHUA, CHAFON, WEIGHT] {
        common::plugin(rel);
        let stdout = ok(&kakou(&["plugin", "test", rel]));
        assert!(
            stdout
                .lines()
                .last()
                .unwrap()
                .contains(" ok, 0 mismatched, 0 errors"),
            "{rel}:\n{stdout}"
        );
        assert!(!stdout.contains("MISMATCH"), "{stdout}");
    }
    let stdout = ok(&kakou(&["plugin", "test", XK3190]));
    assert!(
        stdout.contains("ok        fixtures/frames.bin: 1 reading, 0 rejections (12 bytes fed whole and in 1-byte and 7-byte chunks)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok        fixtures/eq.bin: 7 readings"),
        "{stdout}"
    );
    let stdout = ok(&kakou(&["plugin", "test", WEIGHT]));
    assert!(
        stdout.contains("ok        fixtures/passage.json: inspect with 2 checks and 1 alarm"),
        "{stdout}"
    );

    // A fixture that does not hold is shown with what differs.
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::variant(XK3190, tmp.path(), |m| m);
    std::fs::create_dir_all(dir.join("fixtures")).unwrap();
    let src = common::root().join(XK3190).join("fixtures");
    std::fs::copy(src.join("frames.bin"), dir.join("fixtures/frames.bin")).unwrap();
    std::fs::write(
        dir.join("fixtures/frames.expected.json"),
        "{\"type\":\"weight\",\"kg\":3270,\"kind\":\"gross\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("fixtures/orphan.hex"),
        "02 2B # no expected file\n",
    )
    .unwrap();
    let out = kakou(&["plugin", "test", s(&dir)]);
    let all = fails(&out);
    assert!(
        all.contains("MISMATCH  fixtures/frames.bin (against fixtures/frames.expected.json):\n    fed whole: expected 1 reading, got 1\n      -   1 {\"type\":\"weight\",\"kg\":3270.0,"),
        "{all}"
    );
    assert!(
        all.contains("      +   1 {\"type\":\"weight\",\"kg\":3260.0,"),
        "{all}"
    );
    assert!(
        all.contains("ERROR     fixtures/orphan.hex: no fixtures/orphan.expected.json (write the readings it must give there, or run with --bless"),
        "{all}"
    );
    assert!(
        all.contains("xk3190@1.0.0 2 fixtures: 0 ok, 1 mismatched, 1 errors"),
        "{all}"
    );
    // --bless writes what the component gives, and then it holds.
    let blessed = ok(&kakou(&["plugin", "test", s(&dir), "--bless"]));
    assert!(blessed.contains("2 blessed"), "{blessed}");
    let again = ok(&kakou(&["plugin", "test", s(&dir)]));
    assert!(again.contains("2 ok, 0 mismatched"), "{again}");
}

/// Scaffolds a plugin crate, runs its native tests, builds, packages and signs it, runs its
/// fixtures through the sandbox, verifies it and loads it as a site that trusts the key would.
fn scaffold_end_to_end(kind: &str, name: &str) -> (PathBuf, PathBuf, PublicKey, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let made = ok(&kakou(&[
        "plugin",
        "new",
        "--kind",
        kind,
        name,
        "--dir",
        s(tmp.path()),
    ]));
    let dir = tmp.path().join(name);
    assert!(
        made.starts_with(&format!("made {}", dir.display())),
        "{made}"
    );
    assert!(
        dir.join("Cargo.lock").exists(),
        "the SDK's lock file is copied in"
    );

    // `cargo test` passes at once (its own target folder: the outer `cargo test` holds the
    // workspace's).
    let native = common::root().join("target").join("scaffold-native");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["test", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &native)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ok(&out);

    // Build into the shared wasm target folder (cached across runs), package and sign.
    let (secret, public) = keygen(&tmp.path().join("keys"), "acme");
    let dist = tmp.path().join("dist");
    let target = common::root().join("target");
    let built = with_build_lock(|| {
        kakou_with(
            &[
                "plugin",
                "build",
                s(&dir),
                "--out",
                s(&dist),
                "--key",
                s(&secret),
            ],
            &[("CARGO_TARGET_DIR", &target)],
        )
    });
    let stdout = ok(&built);
    let pkg = dist.join(format!("{name}-0.1.0"));
    assert!(
        stdout.contains(&format!("packaged {}: {kind} {name} 0.1.0", pkg.display())),
        "{stdout}"
    );

    let tested = ok(&kakou(&["plugin", "test", s(&dir)]));
    assert!(!tested.contains("MISMATCH"), "{tested}");
    let verified = ok(&kakou(&[
        "plugin",
        "verify",
        s(&pkg),
        "--trust",
        s(&public),
    ]));
    assert!(verified.ends_with(": OK\n"), "{verified}");
    let key = PublicKey::load(&public).unwrap();
    (pkg, dir, key, tmp)
}

#[test]
fn a_scaffolded_driver_goes_from_new_to_a_trusted_package() {
    let (pkg, dir, key, _tmp) = scaffold_end_to_end("driver", "acme-scale");
    let tested = ok(&kakou(&["plugin", "test", s(&dir)]));
    assert!(
        tested.contains("ok        fixtures/sample.bin: 4 readings, 2 rejections"),
        "{tested}"
    );
    let driver = runtime()
        .load_driver(&pkg, &LoadOptions::trusting(vec![key]))
        .unwrap();
    let mut d = driver.open(&[]).unwrap();
    let out = d.feed(b"ST,+012340.5,kg*3F\r\n").unwrap();
    assert_eq!(out.readings.len(), 1);
    assert!(
        serde_json::to_string(&out.readings[0])
            .unwrap()
            .contains("\"kg\":12340.5,\"stable\":true"),
        "{:?}",
        out.readings
    );
}

#[test]
fn a_scaffolded_rule_set_goes_from_new_to_a_trusted_package() {
    let (pkg, dir, key, _tmp) = scaffold_end_to_end("rules", "acme-limit");
    let tested = ok(&kakou(&["plugin", "test", s(&dir)]));
    assert!(
        tested.contains(
            "ok        fixtures/over-limit.passage.json: inspect with 1 check and 1 alarm"
        ),
        "{tested}"
    );
    assert!(
        tested.contains(
            "ok        fixtures/within-limit.passage.json: release with 1 check and 0 alarms"
        ),
        "{tested}"
    );
    let rules = runtime()
        .load_rules(&pkg, &LoadOptions::trusting(vec![key]))
        .unwrap();
    assert_eq!(
        rules.manifest().rule_codes,
        vec!["acme-limit.cargo-limit".to_owned()]
    );
}
