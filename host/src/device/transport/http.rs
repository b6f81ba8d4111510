//! HTTP push: cameras POST events to us. Each request is written to the device's spool folder
//! (and synced to disk), handed to the driver re-serialised as one HTTP/1.1 request with a
//! Content-Length, and answered 200 only once both are done. A request that cannot be stored
//! is answered 503, so the camera sends it again; the spool keeps the pictures as evidence.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

use super::{Backoff, Ends, LinkEvent};

/// Largest request body accepted.
const MAX_BODY: usize = 16 << 20;

#[derive(Clone)]
struct Shared {
    events: tokio::sync::mpsc::Sender<LinkEvent>,
    path: Option<String>,
    spool: Arc<Spool>,
}

/// Where received requests are stored, one file each.
struct Spool {
    dir: PathBuf,
    seq: AtomicU64,
}

impl Spool {
    /// Writes and syncs one request; returns its file.
    async fn store(&self, request: &[u8]) -> std::io::Result<PathBuf> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let path = self
            .dir
            .join(format!("{}-{n:06}.http", crate::device::now_ms()));
        let mut f = tokio::fs::File::create(&path).await?;
        f.write_all(request).await?;
        f.sync_all().await?;
        Ok(path)
    }
}

pub(super) async fn run(bind: SocketAddr, path: Option<String>, spool: PathBuf, mut ends: Ends) {
    let mut backoff = Backoff::new();
    let listener = loop {
        match tokio::net::TcpListener::bind(bind).await {
            Ok(l) => break l,
            Err(e) => {
                tracing::warn!(device = %ends.name, "cannot listen on {bind}: {e}");
                if !backoff.wait(&mut ends.shutdown).await {
                    return;
                }
            }
        }
    };
    if !ends
        .report(LinkEvent::Up(format!(
            "listening on http://{bind}{}",
            path.as_deref().unwrap_or("/")
        )))
        .await
    {
        return;
    }
    let shared = Shared {
        events: ends.events.clone(),
        path,
        spool: Arc::new(Spool {
            dir: spool,
            seq: AtomicU64::new(0),
        }),
    };
    let app = axum::Router::new()
        .fallback(receive)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared);
    let mut shutdown = ends.shutdown.clone();
    let name = ends.name.clone();
    // Cameras take no commands over this link: drain what the driver might send.
    tokio::spawn(async move { while ends.outgoing.recv().await.is_some() {} });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            super::stopped(&mut shutdown).await;
        })
        .await;
    if let Err(e) = served {
        tracing::warn!(device = %name, "http listener on {bind} stopped: {e}");
    }
}

async fn receive(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    if let Some(p) = &shared.path
        && uri.path() != p
    {
        return (StatusCode::NOT_FOUND, "no such path\n");
    }
    let mut request = format!("{method} {uri} HTTP/1.1\r\n").into_bytes();
    for (name, value) in &headers {
        if name == "content-length" || name == "transfer-encoding" {
            continue;
        }
        request.extend_from_slice(name.as_str().as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(value.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    request.extend_from_slice(&body);
    if let Err(e) = shared.spool.store(&request).await {
        tracing::error!(dir = %shared.spool.dir.display(), "cannot store a pushed event: {e}");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "cannot store the event; send it again\n",
        );
    }
    let (ack, handled) = oneshot::channel();
    if shared
        .events
        .send(LinkEvent::Data {
            bytes: request,
            ack: Some(ack),
        })
        .await
        .is_err()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    match handled.await {
        Ok(()) => (StatusCode::OK, "OK\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "not handled\n"),
    }
}
