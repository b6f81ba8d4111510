//! Bus throughput and round-trip latency, the embedded broker against Mosquitto at
//! 127.0.0.1:1883, in the same run: QoS 1 publishes of a 200-byte reading-sized payload.
//!
//! `cargo bench -p kakou-host --bench bus`

#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop right there

use std::time::{Duration, Instant};

use kakou_host::bus::broker::EmbeddedBroker;
use kakou_host::bus::{BusClient, ClientOptions, QoS};

const THROUGHPUT_MESSAGES: usize = 20_000;
const ROUND_TRIPS: usize = 1_000;

async fn measure(name: &str, url: &str) {
    let tag = format!("{}-{}", name, std::process::id());
    let topic = format!("kakou/bench-{tag}/lane/L01/reading/scale");
    let mut o = ClientOptions::new(url, &format!("bench-rx-{tag}"));
    o.clean_session = true;
    let (rx_client, mut rx, _l) = BusClient::connect(&o).unwrap();
    rx_client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    let mut o = ClientOptions::new(url, &format!("bench-tx-{tag}"));
    o.clean_session = true;
    let (tx, _m, _l2) = BusClient::connect(&o).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let payload = vec![b'x'; 200];

    // Round trip: one message at a time, publish to receipt.
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        tx.publish(&topic, payload.clone(), QoS::AtLeastOnce, false)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];

    // Throughput: a stream with at most 500 messages outstanding (Mosquitto's default queue
    // per subscriber is 1000; beyond it a broker may drop QoS 1 messages to a slow subscriber).
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let counter = received.clone();
    let receiving = tokio::spawn(async move {
        for _ in 0..THROUGHPUT_MESSAGES {
            tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .unwrap()
                .unwrap();
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    for sent in 0..THROUGHPUT_MESSAGES {
        while sent - received.load(std::sync::atomic::Ordering::Relaxed) >= 500 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        tx.publish(&topic, payload.clone(), QoS::AtLeastOnce, false)
            .await
            .unwrap();
    }
    receiving.await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{name:9} round trip p50 {:>7.1} µs  p99 {:>7.1} µs   throughput {:>8.0} msg/s ({THROUGHPUT_MESSAGES} × 200 B, QoS 1)",
        p(0.50).as_secs_f64() * 1e6,
        p(0.99).as_secs_f64() * 1e6,
        THROUGHPUT_MESSAGES as f64 / secs
    );
    tx.disconnect().await;
    rx_client.disconnect().await;
}

fn main() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let broker = EmbeddedBroker::spawn(env!("CARGO_BIN_EXE_kakou").as_ref(), addr, None).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        measure("embedded", &broker.url()).await;
        measure("mosquitto", "mqtt://127.0.0.1:1883").await;
    });
    broker.stop();
}
