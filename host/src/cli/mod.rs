//! The `kakou` command line: argument parsing and the commands for integrators.
//!
//! Each command is a thin edge over the library modules: it parses, calls, and prints. Errors
//! go back to `main` as `anyhow` with context naming the file or plugin.

mod plugin;

use clap::{Parser, Subcommand};

/// kakou: the customs gate runtime.
///
/// A daemon on each gate PC loads sandboxed WebAssembly plugins (one per device vendor's
/// protocol, one per customs rule set) and decides for every truck: release, manual
/// processing, inspection.
#[derive(Debug, Parser)]
#[command(name = "kakou", version, propagate_version = true)]
pub struct Cli {
    /// Log filter, e.g. `info`, `kakou_host=debug` (also RUST_LOG).
    #[arg(long, global = true, env = "KAKOU_LOG", default_value = "warn")]
    pub log: String,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check, build and try plugins (drivers and rule sets).
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

impl Cli {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<std::process::ExitCode> {
        match self.command {
            Command::Plugin(c) => c.run(),
        }
    }
}
