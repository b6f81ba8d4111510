//! Interim store writer: runs each write on a blocking thread. Replaced by the group-commit
//! writer.

use super::{Store, StoreError, WriteTx};

/// Sends writes to the store off the async executor.
#[derive(Clone, Debug)]
pub struct Writer {
    store: Store,
}

impl Writer {
    /// A writer for `store`.
    pub fn spawn(store: Store) -> Result<Writer, StoreError> {
        Ok(Writer { store })
    }

    /// Runs `f` in a durable write transaction; answers after the commit.
    pub async fn write<T, E, F>(&self, mut f: F) -> Result<T, E>
    where
        F: FnMut(&mut WriteTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.write(&mut f)).await {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// [`Writer::write`] for blocking threads.
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnMut(&mut WriteTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.store.write(f)
    }
}
