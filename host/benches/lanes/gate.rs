//! The whole gate under load, for decision latency and CPU per passage.
//!
//! Real parts only: the daemon (`kakou_host::daemon::run`, in this process on a runtime of its
//! own whose threads are named `kakou-daemon`), the embedded broker (the `kakou` binary, a
//! child process the daemon starts), a store file with the sample data, the cn-baseline rule
//! set and the real wasm drivers reading pseudo-terminals. This harness plays the devices on
//! the ptys' master sides from threads named `bench-…`, so their CPU can be told apart.
//!
//! Every lane runs trucks back to back: the weighbridge frames, then (once the daemon has
//! published the settled weight) the e-plate tag, then (once the tag is published) the driver's
//! card, the deciding reading; the clock starts when the card frame's last byte is written and
//! stops when the barrier relay's "coil on" frame has been read back from the barrier pty. The
//! relay echoes every request, as a Modbus board does. Waiting for the published readings keeps
//! each truck's readings in order at the lane (the daemon hands a reading to its lane before
//! it publishes it), however loaded the daemon is; a real truck takes seconds between them.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kakou_host::bus::{BusClient, ClientOptions, Link, Message, QoS, Topics, payload};
use kakou_host::config::SiteManifest;
use kakou_host::daemon::ReadingMessage;
use kakou_host::sdk::model::{Outcome, ReadingValue};
use kakou_host::sdk::wire;
use kakou_host::sim::pty::Pty;
use kakou_host::store::Store;
use tokio::sync::{mpsc, watch};

use crate::fixture::{self, Truck};
use crate::procfs;

/// How long a lane waits for its barrier after the card before it counts the truck as missed.
const DECISION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a lane waits for the daemon to publish a reading before it sends the frame again
/// (at start-up, before the daemon has opened the line; or when a QoS 0 reading was dropped).
const READING_TIMEOUT: Duration = Duration::from_secs(3);

/// One load run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Busy lanes.
    pub lanes: usize,
    /// Longest wait for every lane's first release (start-up, plugin compilation).
    pub warmup: Duration,
    /// How long decisions are counted and timed.
    pub measure: Duration,
    /// Mean pause between a release and the lane's next truck, exponentially distributed
    /// (0: back to back).
    pub gap: Duration,
}

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Busy lanes.
    pub lanes: usize,
    /// Lanes that released a truck before the measurement started.
    pub warmed: usize,
    /// The measurement window.
    pub window: Duration,
    /// Card written → barrier bytes read, for every release completed in the window, sorted.
    pub latencies: Vec<Duration>,
    /// Tag frame written → its reading received from the bus (the daemon publishes every
    /// reading, QoS 0), for every tag read in the window, sorted.
    pub published: Vec<Duration>,
    /// Cards that got no barrier bytes within the timeout (whole run).
    pub missed: u64,
    /// Frames sent again because their reading was not published in time (whole run).
    pub resent: u64,
    /// CPU seconds in the window: the daemon (this process minus the harness threads).
    pub daemon_cpu: f64,
    /// CPU seconds in the window: the embedded broker process.
    pub broker_cpu: f64,
    /// CPU seconds in the window: the harness threads (device players, bus subscriber).
    pub harness_cpu: f64,
    /// Median resident set of this process (daemon and harness) in the window, KiB.
    pub rss_steady_kb: u64,
    /// Peak resident set of this process during the run (`VmHWM`, reset at the start), KiB.
    pub rss_peak_kb: u64,
    /// Median resident set of the broker process in the window, KiB.
    pub broker_rss_kb: u64,
    /// Passages the store holds for this run's lanes afterwards.
    pub recorded: u64,
    /// Of those, released.
    pub released: u64,
}

/// The value at quantile `q` (nearest rank) of sorted durations; zero when there are none.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl Report {
    /// The decision latency at quantile `q`.
    pub fn quantile(&self, q: f64) -> Duration {
        quantile(&self.latencies, q)
    }

    /// Releases per second of wall time.
    pub fn per_sec(&self) -> f64 {
        self.latencies.len() as f64 / self.window.as_secs_f64()
    }

    /// Releases per CPU second of the daemon.
    pub fn per_daemon_cpu_sec(&self) -> f64 {
        self.latencies.len() as f64 / self.daemon_cpu.max(1e-9)
    }

    /// Releases per CPU second of the daemon and its broker together.
    pub fn per_cpu_sec_with_broker(&self) -> f64 {
        self.latencies.len() as f64 / (self.daemon_cpu + self.broker_cpu).max(1e-9)
    }
}

/// What the harness learns from the bus about one lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// The scale reads empty.
    Empty,
    /// The scale reads a settled load.
    Loaded,
    /// The e-plate reader read a tag.
    Tag,
    /// Anything else.
    Other,
}

/// State shared by the harness and the run.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    warmed: AtomicUsize,
    /// (card written, barrier frame read), every release.
    samples: Mutex<Vec<(Instant, Instant)>>,
    /// (tag frame written, its reading received from the bus), every tag.
    published: Mutex<Vec<(Instant, Instant)>>,
    missed: AtomicU64,
    resent: AtomicU64,
}

/// One lane's device lines as the harness holds them (pty master sides).
struct LaneIo {
    scale: File,
    rfid: File,
    card: File,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn send(port: &File, bytes: &[u8]) {
    let mut port = port;
    port.write_all(bytes).unwrap();
}

/// The barrier relay: reads what the daemon sends, echoes each write-single-coil request as
/// the board does, and reports when each "coil on" frame was read.
fn barrier_relay(mut master: File, tx: mpsc::UnboundedSender<Instant>) {
    let on = wire::modbus::write_single_coil(1, 0, true);
    let off = wire::modbus::write_single_coil(1, 0, false);
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        let n = match master.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let at = Instant::now();
        pending.extend_from_slice(&chunk[..n]);
        while pending.len() >= on.len() {
            let frame = &pending[..on.len()];
            if frame == on.as_slice() || frame == off.as_slice() {
                let is_on = frame == on.as_slice();
                if master.write_all(frame).is_err() {
                    return;
                }
                pending.drain(..on.len());
                if is_on && tx.send(at).is_err() {
                    return;
                }
            } else {
                pending.remove(0);
            }
        }
    }
}

/// Sends `bytes` until the daemon publishes the reading `want` for this lane; returns when
/// the bytes were last sent and when the reading came.
async fn until_read(
    port: &File,
    bytes: &[u8],
    want: Seen,
    seen: &mut mpsc::UnboundedReceiver<Seen>,
    shared: &Shared,
) -> Option<(Instant, Instant)> {
    let mut first = true;
    while !shared.stop.load(Ordering::Relaxed) {
        if !first {
            shared.resent.fetch_add(1, Ordering::Relaxed);
        }
        first = false;
        send(port, bytes);
        let sent = Instant::now();
        let deadline = tokio::time::Instant::now() + READING_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, seen.recv()).await {
                Ok(Some(s)) if s == want => return Some((sent, Instant::now())),
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(_) => break,
            }
        }
    }
    None
}

/// A small xorshift generator: reproducible pauses without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng((0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0xBF58_476D_1CE4_E5B9)) | 1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One lane's trucks, back to back (or with pauses of mean `gap`), until told to stop.
async fn lane_loop(
    i: usize,
    io: LaneIo,
    trucks: Arc<Vec<Truck>>,
    mut seen: mpsc::UnboundedReceiver<Seen>,
    mut barrier: mpsc::UnboundedReceiver<Instant>,
    shared: Arc<Shared>,
    gap: Duration,
) {
    let mut warmed = false;
    let mut k = 0;
    let mut rng = Rng::new(i as u64);
    while !shared.stop.load(Ordering::Relaxed) {
        let truck = &trucks[(i + k) % trucks.len()];
        k += 1;
        while seen.try_recv().is_ok() {}
        while barrier.try_recv().is_ok() {}
        // The scale empties, the truck drives on and settles; its tag is read.
        let (scale, tag) = (truck.scale_frames(), truck.tag_frame());
        if until_read(&io.scale, &scale, Seen::Loaded, &mut seen, &shared)
            .await
            .is_none()
        {
            continue;
        }
        let Some(published) = until_read(&io.rfid, &tag, Seen::Tag, &mut seen, &shared).await
        else {
            continue;
        };
        shared
            .published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(published);
        // The driver presents the card: the deciding reading.
        send(&io.card, &truck.card_frame());
        let written = Instant::now();
        match tokio::time::timeout(DECISION_TIMEOUT, barrier.recv()).await {
            Ok(Some(read)) => {
                shared
                    .samples
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((written, read));
                if !warmed {
                    warmed = true;
                    shared.warmed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(None) => return,
            Err(_) => {
                shared.missed.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Independent arrivals: exponentially distributed pauses of mean `gap` (capped at ten
        // times it), so the lanes do not fall into step.
        let pause = gap.mul_f64(-(1.0 - rng.unit()).ln()).min(gap * 10);
        let next = Instant::now() + pause;
        while Instant::now() < next && !shared.stop.load(Ordering::Relaxed) {
            tokio::time::sleep(gap.min(Duration::from_millis(100))).await;
        }
    }
}

/// Routes the daemon's published readings to their lanes.
async fn dispatch(mut incoming: mpsc::Receiver<Message>, lanes: Vec<mpsc::UnboundedSender<Seen>>) {
    while let Some(m) = incoming.recv().await {
        // kakou/{site}/lane/{lane}/reading/{device}
        let parts: Vec<&str> = m.topic.split('/').collect();
        let [_, _, "lane", lane, "reading", _] = parts.as_slice() else {
            continue;
        };
        let Some(i) = lane
            .strip_prefix('L')
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1))
        else {
            continue;
        };
        let Ok(e) = payload::parse::<ReadingMessage>(&m.topic, &m.payload) else {
            continue;
        };
        let seen = match &e.body.reading.value {
            ReadingValue::Weight(w) if w.kg >= 500.0 => Seen::Loaded,
            ReadingValue::Weight(_) => Seen::Empty,
            ReadingValue::Tag(_) => Seen::Tag,
            _ => Seen::Other,
        };
        if let Some(tx) = lanes.get(i) {
            let _ = tx.send(seen);
        }
    }
}

/// The harness: subscribes to the readings, then runs every lane's trucks.
async fn harness(
    site: String,
    port: u16,
    lanes: Vec<(LaneIo, mpsc::UnboundedReceiver<Instant>)>,
    trucks: Arc<Vec<Truck>>,
    shared: Arc<Shared>,
    gap: Duration,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the daemon's broker never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut o = ClientOptions::new(
        &format!("mqtt://127.0.0.1:{port}"),
        &format!("bench-harness-{site}"),
    );
    o.clean_session = true;
    let (bus, incoming, mut links) = BusClient::connect(&o).unwrap();
    while let Some(l) = links.recv().await {
        if matches!(l, Link::Connected) {
            break;
        }
    }
    let filter = format!("{}/lane/+/reading/+", Topics::new(&site).root());
    bus.subscribe(&filter, QoS::AtMostOnce).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut seen_tx = Vec::new();
    let mut tasks = Vec::new();
    for (i, (io, barrier)) in lanes.into_iter().enumerate() {
        let (tx, rx) = mpsc::unbounded_channel();
        seen_tx.push(tx);
        tasks.push(tokio::spawn(lane_loop(
            i,
            io,
            trucks.clone(),
            rx,
            barrier,
            shared.clone(),
            gap,
        )));
    }
    let router = tokio::spawn(dispatch(incoming, seen_tx));
    for t in tasks {
        let _ = t.await;
    }
    router.abort();
    bus.disconnect().await;
}

/// Sums CPU seconds: (this process, harness threads and main thread, broker children).
fn cpu_now(me: u32) -> (f64, f64, f64) {
    let broker: f64 = procfs::children(me)
        .into_iter()
        .map(procfs::process_cpu)
        .sum();
    (
        procfs::process_cpu(me),
        procfs::own_threads_cpu("bench-", true),
        broker,
    )
}

fn median(v: &mut [u64]) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[v.len() / 2]
}

/// Runs the gate with `options.lanes` busy lanes and measures it.
pub fn run(options: &Options, trucks: &[Truck]) -> Report {
    let me = std::process::id();
    let dir = tempfile::tempdir().unwrap();
    let site = format!("bench-{me}-{}", options.lanes);
    let port = free_port();
    {
        let store = Store::open(dir.path().join("kakou.redb")).unwrap();
        fixture::import_sample(&store);
    }
    let mut ptys = Vec::new();
    let mut lanes = Vec::new();
    let mut relays = Vec::new();
    for i in 0..options.lanes {
        let id = fixture::lane_id(i);
        let mut open = |device: &str| {
            let p = Pty::open(&dir.path().join(format!("{id}-{device}"))).unwrap();
            let master = p.master_clone().unwrap();
            ptys.push(p);
            master
        };
        let io = LaneIo {
            scale: open("scale"),
            rfid: open("rfid"),
            card: open("card"),
        };
        let barrier = open("barrier");
        let (tx, rx) = mpsc::unbounded_channel();
        relays.push(
            std::thread::Builder::new()
                .name(format!("bench-relay-{i}"))
                .spawn(move || barrier_relay(barrier, tx))
                .unwrap(),
        );
        lanes.push((io, rx));
    }
    let manifest_path = dir.path().join("site.toml");
    std::fs::write(
        &manifest_path,
        fixture::site_toml(&site, dir.path(), options.lanes, port),
    )
    .unwrap();
    let manifest = SiteManifest::load(&manifest_path).unwrap();
    let lane_ids: Vec<String> = manifest.lanes.iter().map(|l| l.id.clone()).collect();
    let started_ms = fixture::now_ms();
    // The peak resident set from here on (Linux: writing 5 to clear_refs resets VmHWM).
    let _ = std::fs::write("/proc/self/clear_refs", "5");

    let runtime = kakou_host::daemon::runtime(None).unwrap();
    let (stop, stopped) = watch::channel(false);
    let daemon = runtime.spawn(kakou_host::daemon::run(
        manifest,
        PathBuf::from(env!("CARGO_BIN_EXE_kakou")),
        stopped,
    ));

    let shared = Arc::new(Shared::default());
    let harness_thread = {
        let (site, trucks, shared, gap) = (
            site.clone(),
            Arc::new(trucks.to_vec()),
            shared.clone(),
            options.gap,
        );
        std::thread::Builder::new()
            .name("bench-harness".into())
            .spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(harness(site, port, lanes, trucks, shared, gap));
            })
            .unwrap()
    };

    // Warm-up: every lane has released a truck (the plugins are compiled and instantiated).
    let warm_until = Instant::now() + options.warmup;
    while shared.warmed.load(Ordering::Relaxed) < options.lanes
        && Instant::now() < warm_until
        && !daemon.is_finished()
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    if daemon.is_finished() {
        let outcome = runtime.block_on(daemon);
        panic!("the daemon stopped: {outcome:?}");
    }
    let warmed = shared.warmed.load(Ordering::Relaxed);

    let before = cpu_now(me);
    let from = Instant::now();
    let mut rss = Vec::new();
    let mut broker_rss = Vec::new();
    while from.elapsed() < options.measure {
        std::thread::sleep(Duration::from_millis(250));
        rss.push(procfs::rss_kb(me).0);
        broker_rss.push(
            procfs::children(me)
                .into_iter()
                .map(|p| procfs::rss_kb(p).0)
                .sum(),
        );
    }
    let to = Instant::now();
    let after = cpu_now(me);
    let rss_peak_kb = procfs::rss_kb(me).1;

    shared.stop.store(true, Ordering::Relaxed);
    let _ = harness_thread.join();
    let _ = stop.send(true);
    let finished =
        runtime.block_on(async { tokio::time::timeout(Duration::from_secs(30), daemon).await });
    if let Ok(Ok(Err(e))) = finished {
        eprintln!("daemon: {e}");
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(ptys);
    // The relays see the lines close; they are not joined (one blocked in a read costs nothing).
    drop(relays);

    let (mut recorded, mut released) = (0, 0);
    if let Ok(store) = Store::open(dir.path().join("kakou.redb")) {
        for id in &lane_ids {
            for r in store
                .passages_by_lane_between(id, started_ms, fixture::now_ms() + 1)
                .unwrap_or_default()
            {
                recorded += 1;
                if r.outcome == Some(Outcome::Release) {
                    released += 1;
                }
            }
        }
    }

    let in_window = |pairs: &Mutex<Vec<(Instant, Instant)>>| {
        let mut d: Vec<Duration> = pairs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, done)| *done >= from && *done <= to)
            .map(|(start, done)| done.saturating_duration_since(*start))
            .collect();
        d.sort();
        d
    };
    let latencies = in_window(&shared.samples);
    let published = in_window(&shared.published);
    let harness_cpu = after.1 - before.1;
    Report {
        lanes: options.lanes,
        warmed,
        window: to - from,
        latencies,
        published,
        missed: shared.missed.load(Ordering::Relaxed),
        resent: shared.resent.load(Ordering::Relaxed),
        daemon_cpu: (after.0 - before.0) - harness_cpu,
        broker_cpu: after.2 - before.2,
        harness_cpu,
        rss_steady_kb: median(&mut rss),
        rss_peak_kb,
        broker_rss_kb: median(&mut broker_rss),
        recorded,
        released,
    }
}
