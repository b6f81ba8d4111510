//! `kakou store …` and `kakou data …` (being written).

use std::process::ExitCode;

use clap::Subcommand;

/// Store commands.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Check a store file's integrity.
    Check {
        /// The redb file.
        path: std::path::PathBuf,
    },
}

/// Platform data commands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Import a file.
    Import {
        /// JSON lines or CSV.
        file: std::path::PathBuf,
    },
}

impl StoreCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        anyhow::bail!("not available yet")
    }
}

impl DataCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        anyhow::bail!("not available yet")
    }
}
