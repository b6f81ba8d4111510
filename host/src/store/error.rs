//! Store errors: each names the file, and the table and key where there is one.

use std::path::PathBuf;
use std::sync::Arc;

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
    /// The store writer could not commit a batch: every write of the batch fails with this
    /// error, and none of them is stored. The batch's writes share one redb error, hence the
    /// `Arc`.
    #[error(
        "{}: the store writer could not {stage}, so none of the {jobs} writes of its batch was \
         stored: {source}; check the disk (free space, permissions, I/O errors in the system \
         log), then restart the daemon so that redb recovers the file",
        path.display()
    )]
    BatchFailed {
        /// The store file.
        path: PathBuf,
        /// What failed: `begin a write transaction`, `commit`, `abort a failed transaction`.
        stage: &'static str,
        /// How many writes were in the batch.
        jobs: usize,
        /// What redb said, shared by every write of the batch.
        #[source]
        source: Arc<redb::Error>,
    },
    /// A write given to the store writer panicked. Nothing of it was stored; the other writes
    /// of its batch were not affected.
    #[error(
        "{}: a store write panicked ({message}); nothing of it was stored, and the store \
         writer goes on with the other writes. This is a bug in the caller of the write",
        path.display()
    )]
    WritePanicked {
        /// The store file.
        path: PathBuf,
        /// The panic's message.
        message: String,
    },
    /// The store writer thread is not running (the daemon is shutting down, or the thread
    /// failed), so this write was not stored.
    #[error(
        "{}: the store writer has stopped (shut down, or its thread failed), so this write was \
         not stored; writes are refused until the daemon is restarted",
        path.display()
    )]
    WriterStopped {
        /// The store file.
        path: PathBuf,
    },
    /// The store writer thread failed while this write's batch was being committed or
    /// answered: the write may or may not be on disk.
    #[error(
        "{}: the store writer thread failed while committing this write, which may or may not \
         be stored; read it back before acting on it, and restart the daemon",
        path.display()
    )]
    WriterLost {
        /// The store file.
        path: PathBuf,
    },
    /// The operating system refused to start the store writer thread.
    #[error(
        "{}: cannot start the store writer thread: {source}; the system is short of threads \
         or memory",
        path.display()
    )]
    WriterSpawn {
        /// The store file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
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
