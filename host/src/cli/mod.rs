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
    /// Run the demo lane: simulated trucks decided by the real plugins.
    Demo {
        /// How many trucks.
        #[arg(long, default_value_t = 8)]
        trucks: u32,
        /// Pause between trucks, milliseconds.
        #[arg(long, default_value_t = 400)]
        pace_ms: u64,
        /// Folder holding drivers/ and rules/ plugin folders.
        #[arg(long)]
        plugins: Option<std::path::PathBuf>,
    },
}

impl Cli {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<std::process::ExitCode> {
        match self.command {
            Command::Plugin(c) => c.run(),
            Command::Demo {
                trucks,
                pace_ms,
                plugins,
            } => {
                let options = crate::demo::DemoOptions {
                    plugins: plugins.unwrap_or_else(crate::demo::default_plugins_dir),
                    trucks,
                    pace: std::time::Duration::from_millis(pace_ms),
                };
                crate::demo::run(&options, &mut std::io::stdout().lock())?;
                Ok(std::process::ExitCode::SUCCESS)
            }
        }
    }
}
