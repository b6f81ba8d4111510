//! TCP (we connect, or the device connects) and UDP.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::{Backoff, Ends, LinkEvent, READ_CHUNK, pump};

pub(super) async fn tcp_client(addr: String, mut ends: Ends) {
    let mut backoff = Backoff::new();
    let mut last_error = String::new();
    while !ends.stopping() {
        match TcpStream::connect(&addr).await {
            Ok(stream) => {
                backoff.reset();
                last_error.clear();
                let _ = stream.set_nodelay(true);
                if !ends
                    .report(LinkEvent::Up(format!("connected to {addr}")))
                    .await
                {
                    return;
                }
                match pump(stream, &mut ends).await {
                    Some(reason) => {
                        if !ends.report(LinkEvent::Down(reason)).await {
                            return;
                        }
                    }
                    None => return,
                }
            }
            Err(e) => {
                let reason = format!("cannot connect to {addr}: {e}");
                if reason != last_error {
                    tracing::warn!(device = %ends.name, "{reason}");
                    last_error = reason;
                }
            }
        }
        if !backoff.wait(&mut ends.shutdown).await {
            return;
        }
    }
}

pub(super) async fn tcp_server(bind: SocketAddr, mut ends: Ends) {
    let mut backoff = Backoff::new();
    let listener = loop {
        match TcpListener::bind(bind).await {
            Ok(l) => break l,
            Err(e) => {
                tracing::warn!(device = %ends.name, "cannot listen on {bind}: {e}");
                if !backoff.wait(&mut ends.shutdown).await {
                    return;
                }
            }
        }
    };
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = super::stopped(&mut ends.shutdown) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                if !ends
                    .report(LinkEvent::Up(format!("{peer} connected")))
                    .await
                {
                    return;
                }
                match pump(stream, &mut ends).await {
                    Some(reason) => {
                        if !ends.report(LinkEvent::Down(reason)).await {
                            return;
                        }
                    }
                    None => return,
                }
            }
            Err(e) => tracing::warn!(device = %ends.name, "accept on {bind} failed: {e}"),
        }
    }
}

pub(super) async fn udp(bind: SocketAddr, peer: Option<SocketAddr>, mut ends: Ends) {
    let mut backoff = Backoff::new();
    let socket = loop {
        match UdpSocket::bind(bind).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(device = %ends.name, "cannot bind {bind}: {e}");
                if !backoff.wait(&mut ends.shutdown).await {
                    return;
                }
            }
        }
    };
    if !ends
        .report(LinkEvent::Up(format!("listening on {bind}")))
        .await
    {
        return;
    }
    let mut last_sender = peer;
    let mut buf = vec![0u8; READ_CHUNK.max(65_536)];
    let events = ends.events.clone();
    loop {
        tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, from)) => {
                    if peer.is_none() {
                        last_sender = Some(from);
                    }
                    if events.send(LinkEvent::Data { bytes: buf[..n].to_vec(), ack: None }).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(device = %ends.name, "receive on {bind} failed: {e}"),
            },
            out = ends.outgoing.recv() => match (out, last_sender) {
                (Some(bytes), Some(to)) => {
                    if let Err(e) = socket.send_to(&bytes, to).await {
                        tracing::warn!(device = %ends.name, "send to {to} failed: {e}");
                    }
                }
                (Some(_), None) => tracing::warn!(device = %ends.name, "nothing to send to yet: no `peer` configured and no datagram received"),
                (None, _) => return,
            },
            _ = super::stopped(&mut ends.shutdown) => return,
        }
    }
}
