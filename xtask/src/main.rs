//! `cargo xtask …`: the project's own chores, so a fresh machine needs only the Rust toolchain.
//!
//! - `cargo xtask test`: add the wasm32-wasip2 target, build every plugin, run every test.
//! - `cargo xtask demo`: build the plugins and run the demo.
//! - `cargo xtask plugins`: build every plugin crate into its component.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

/// Folders whose sub-folders with a plugin.toml are plugin crates.
const PLUGIN_ROOTS: &[&str] = &["plugins/drivers", "plugins/rules", "tests/plugins"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("demo") => demo(&args[1..]),
        Some("plugins") => plugins(),
        _ => {
            eprintln!(
                "usage: cargo xtask <test|demo|plugins> [args…]\n\n  \
                 test     add the wasm target, build the plugins, run all tests (extra args go to cargo test)\n  \
                 demo     build the plugins and run the demo (extra args go to `kakou demo`)\n  \
                 plugins  build every plugin crate into its component"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(mut cmd: Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

fn plugin_dirs() -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for r in PLUGIN_ROOTS {
        let Ok(entries) = std::fs::read_dir(root().join(r)) else {
            continue;
        };
        for e in entries {
            let p = e?.path();
            if p.join("plugin.toml").exists() && p.join("Cargo.toml").exists() {
                dirs.push(p.strip_prefix(root()).map(Path::to_path_buf).unwrap_or(p));
            }
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Builds every plugin; `kakou plugin build` adds the wasm target when it is missing.
fn plugins() -> anyhow::Result<()> {
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--quiet",
        "--package",
        "kakou-host",
        "--bin",
        "kakou",
        "--",
        "plugin",
        "build",
    ]);
    cmd.args(plugin_dirs()?);
    run(cmd)
}

/// Runs every test and ends with one total line (`total: N passed, N failed, N skipped`), so a
/// reader of the last line sees the whole run, not the last crate's doc-tests.
fn test(extra: &[String]) -> anyhow::Result<()> {
    use std::io::{BufRead, BufReader};
    plugins()?;
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .args(extra)
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().context("cannot run cargo test")?;
    let stdout = child.stdout.take().context("cargo test has no stdout")?;
    let (mut passed, mut failed, mut skipped) = (0u64, 0u64, 0u64);
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test output")?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(what), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                let n: u64 = n.parse().unwrap_or(0);
                match what {
                    "passed" => passed += n,
                    "failed" => failed += n,
                    "ignored" => skipped += n,
                    _ => {}
                }
            }
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    println!("total: {passed} passed, {failed} failed, {skipped} skipped");
    if !status.success() {
        bail!("cargo test failed with {status}");
    }
    Ok(())
}

fn demo(extra: &[String]) -> anyhow::Result<()> {
    plugins()?;
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--quiet",
        "--release",
        "--package",
        "kakou-host",
        "--bin",
        "kakou",
        "--",
        "demo",
    ]);
    // `cargo xtask demo -- --trucks 9` and `cargo xtask demo --trucks 9` mean the same.
    let extra = match extra.first() {
        Some(first) if first == "--" => &extra[1..],
        _ => extra,
    };
    cmd.args(extra);
    run(cmd)
}
