//! Store errors: each names the file, and the table and key where there is one.

use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb could not open the file.
    #[error("{}: cannot open the store: {source}", path.display())]
    Open {
        /// The store file.
        path: PathBuf,
        /// What redb said.
        #[source]
        source: Box<redb::DatabaseError>,
    },
    /// Another process holds the file for writing.
    #[error(
        "{}: the store is open for writing in another process (a running daemon?); \
         read-only commands (check, export, backup) work beside it",
        path.display()
    )]
    Busy {
        /// The store file.
        path: PathBuf,
    },
    /// The file was not closed cleanly and only a writer can recover it.
    #[error(
        "{}: the store was not closed cleanly and needs recovery, which only a writer can do; \
         stop whatever holds it and open it again",
        path.display()
    )]
    NeedsRecovery {
        /// The store file.
        path: PathBuf,
    },
    /// The file was written by a newer kakou.
    #[error(
        "{}: store schema version {found} is newer than this build of kakou reads (schema \
         {supported}); run a newer kakou, or restore a backup made by this version",
        path.display()
    )]
    NewerSchema {
        /// The store file.
        path: PathBuf,
        /// The file's schema version.
        found: u64,
        /// The newest schema this build reads.
        supported: u64,
    },
    /// A redb file that is not a kakou store.
    #[error("{}: not a kakou store: it has tables but no schema version in `meta`", path.display())]
    NotAStore {
        /// The file.
        path: PathBuf,
    },
    /// redb failed on a table.
    #[error("{}: table `{table}`: {source}", path.display())]
    Db {
        /// The store file.
        path: PathBuf,
        /// The table (or `transaction`, `commit`).
        table: &'static str,
        /// What redb said.
        #[source]
        source: Box<redb::Error>,
    },
    /// A stored value cannot be read.
    #[error("{}: table `{table}`, key {key}: {reason}", path.display())]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// The key, as text.
        key: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// A record the caller gave cannot be stored.
    #[error("{}: table `{table}`: {reason}", path.display())]
    Invalid {
        /// The store file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A write on a store opened read-only.
    #[error("{}: the store is open read-only", path.display())]
    ReadOnly {
        /// The store file.
        path: PathBuf,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A backup would overwrite a file.
    #[error("{}: already exists; a backup is never written over a file", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
}

impl StoreError {
    pub(crate) fn db(
        path: &std::path::Path,
        table: &'static str,
        e: impl Into<redb::Error>,
    ) -> Self {
        StoreError::Db {
            path: path.to_path_buf(),
            table,
            source: Box::new(e.into()),
        }
    }
}
