//! The device layer over real links: pseudo-terminals and TCP sockets, real wasm drivers.

#![allow(clippy::unwrap_used)] // test helpers fail loudly, like the tests

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use kakou_host::config::SiteManifest;
use kakou_host::device::{DeviceEvent, DeviceEventKind, DeviceLayer};
use kakou_host::plugin::Runtime;
use kakou_host::sdk::model::ReadingValue;
use kakou_host::sdk::wire;
use kakou_host::sim::pty::Pty;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// A site whose plugin folder is the workspace's `plugins/`.
fn site(dir: &Path, lanes: &str) -> SiteManifest {
    common::plugin("plugins/drivers/xk3190");
    let text = format!(
        "[site]\nid = \"test\"\noffice = \"5201\"\nplugins = \"{}\"\nallow-dev-plugins = true\ngateway = true\n\n{lanes}",
        common::root().join("plugins").display()
    );
    let path = dir.join("site.toml");
    std::fs::write(&path, &text).unwrap();
    SiteManifest::load(&path).unwrap()
}

/// Waits for the next event matching `pick`, skipping others.
async fn next<T>(
    rx: &mut mpsc::Receiver<DeviceEvent>,
    mut pick: impl FnMut(&DeviceEvent) -> Option<T>,
) -> T {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("an event within 30 s")
            .expect("the device layer is running");
        if let Some(t) = pick(&e) {
            return t;
        }
    }
}

fn weight(e: &DeviceEvent) -> Option<(String, f64, bool)> {
    match &e.kind {
        DeviceEventKind::Reading { reading } => match &reading.value {
            ReadingValue::Weight(w) => Some((e.device.to_string(), w.kg, w.stable)),
            _ => None,
        },
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_on_a_pty_comes_online_and_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let tty = tmp.path().join("ttyS1");
    let pty = Pty::open(&tty).unwrap();
    let manifest = site(
        tmp.path(),
        &format!(
            "[[lane]]\nid = \"L01\"\ncategory = \"A\"\ndirection = \"import\"\ndevices = [\n  {{ id = \"scale\", driver = \"xk3190\", transport = {{ serial = \"{}\", baud = 9600 }}, silence-timeout-ms = 500 }},\n]\n",
            tty.display()
        ),
    );
    let runtime = Runtime::new(None).unwrap();
    let (tx, mut rx) = mpsc::channel(256);
    let layer = DeviceLayer::start(&manifest, &runtime, tx).await.unwrap();

    let mut master = pty.master_clone().unwrap();
    let mut bytes = b"\x00noise".to_vec();
    for _ in 0..3 {
        bytes.extend(wire::xk3190::tf0_frame(3260.0, 0));
    }
    // Written in pieces, as a UART delivers them.
    for piece in bytes.chunks(5) {
        master.write_all(piece).unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let online = next(&mut rx, |e| match &e.kind {
        DeviceEventKind::Online { link } => Some(link.clone()),
        _ => None,
    })
    .await;
    assert!(online.contains("serial"), "{online}");
    assert_eq!(next(&mut rx, weight).await, ("scale".into(), 3260.0, false));
    assert_eq!(next(&mut rx, weight).await, ("scale".into(), 3260.0, true));

    // Silence: offline after the timeout, with the reason.
    let reason = next(&mut rx, |e| match &e.kind {
        DeviceEventKind::Offline { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, "silent for 0.5 s");

    let stats = layer.device("L01", "scale").unwrap().stats();
    assert_eq!(stats.readings, 2);
    assert_eq!(stats.rejected, 1);
    assert_eq!(stats.rejected_bytes, 6);
    assert_eq!(stats.bytes_in, bytes.len() as u64);
    assert!(!stats.online);
    assert_eq!(stats.driver, "xk3190@1.0.0");
    layer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplugged_pty_goes_offline_and_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let tty = tmp.path().join("ttyUSB0");
    let pty = Pty::open(&tty).unwrap();
    let manifest = site(
        tmp.path(),
        &format!(
            "[[lane]]\nid = \"L01\"\ncategory = \"A\"\ndirection = \"import\"\ndevices = [\n  {{ id = \"scale\", driver = \"xk3190\", transport = {{ serial = \"{}\" }}, config = {{ stable-count = 1 }} }},\n]\n",
            tty.display()
        ),
    );
    let runtime = Runtime::new(None).unwrap();
    let (tx, mut rx) = mpsc::channel(256);
    let layer = DeviceLayer::start(&manifest, &runtime, tx).await.unwrap();
    pty.master()
        .write_all(&wire::xk3190::tf0_frame(1000.0, 0))
        .unwrap();
    assert_eq!(next(&mut rx, weight).await.1, 1000.0);

    drop(pty); // unplug
    let reason = next(&mut rx, |e| match &e.kind {
        DeviceEventKind::Offline { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(
        reason.contains("read failed") || reason.contains("closed"),
        "{reason}"
    );

    let pty = Pty::open(&tty).unwrap(); // plug back in (a new pty behind the same path)
    // The transport reopens with backoff; keep the device talking until it is heard.
    let frame = wire::xk3190::tf0_frame(2000.0, 0);
    let writer = {
        let mut m = pty.master_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..200 {
                if m.write_all(&frame).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    next(&mut rx, |e| {
        matches!(e.kind, DeviceEventKind::Online { .. }).then_some(())
    })
    .await;
    assert_eq!(next(&mut rx, weight).await.1, 2000.0);
    layer.shutdown().await;
    drop(pty);
    writer.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_device_that_drops_is_reconnected() {
    let tmp = tempfile::tempdir().unwrap();
    let device = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = device.local_addr().unwrap();
    let manifest = site(
        tmp.path(),
        &format!(
            "[[lane]]\nid = \"L02\"\ncategory = \"B\"\ndirection = \"export\"\ndevices = [\n  {{ id = \"scale\", driver = \"xk3190\", transport = {{ tcp = \"{addr}\" }}, config = {{ stable-count = 1 }} }},\n]\n"
        ),
    );
    let runtime = Runtime::new(None).unwrap();
    let (tx, mut rx) = mpsc::channel(256);
    let layer = DeviceLayer::start(&manifest, &runtime, tx).await.unwrap();

    let (mut conn, _) = device.accept().await.unwrap();
    conn.write_all(&wire::xk3190::tf0_frame(500.0, 0))
        .await
        .unwrap();
    assert_eq!(next(&mut rx, weight).await, ("scale".into(), 500.0, true));
    drop(conn);
    let reason = next(&mut rx, |e| match &e.kind {
        DeviceEventKind::Offline { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, "closed by the device");

    let (mut conn, _) = device.accept().await.unwrap();
    conn.write_all(&wire::xk3190::tf0_frame(750.0, 0))
        .await
        .unwrap();
    assert_eq!(next(&mut rx, weight).await, ("scale".into(), 750.0, true));
    layer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_garbage_is_bounded_and_does_not_starve_another_device() {
    let tmp = tempfile::tempdir().unwrap();
    let (flood_tty, scale_tty) = (tmp.path().join("ttyFlood"), tmp.path().join("ttyScale"));
    let (flood, scale) = (
        Pty::open(&flood_tty).unwrap(),
        Pty::open(&scale_tty).unwrap(),
    );
    let manifest = site(
        tmp.path(),
        &format!(
            "[[lane]]\nid = \"L01\"\ncategory = \"A\"\ndirection = \"import\"\ndevices = [\n  {{ id = \"flood\", driver = \"xk3190\", transport = {{ serial = \"{}\" }}, max-bytes-per-sec = 65536 }},\n  {{ id = \"scale\", driver = \"xk3190\", transport = {{ serial = \"{}\" }}, config = {{ report = \"every\" }} }},\n]\n",
            flood_tty.display(),
            scale_tty.display()
        ),
    );
    let runtime = Runtime::new(None).unwrap();
    let (tx, mut rx) = mpsc::channel(1 << 16);
    let layer = DeviceLayer::start(&manifest, &runtime, tx).await.unwrap();

    // 4 MiB of garbage with no frame start in it, as fast as the pty takes it.
    const FLOOD: usize = 4 << 20;
    let mut f = flood.master_clone().unwrap();
    let flooder = std::thread::spawn(move || {
        let junk = vec![0x55u8; 64 * 1024];
        for _ in 0..FLOOD / junk.len() {
            f.write_all(&junk).unwrap();
        }
    });
    // Meanwhile the scale sends 100 frames, 10 ms apart.
    let mut s = scale.master_clone().unwrap();
    let frames = 100;
    let scaler = std::thread::spawn(move || {
        for i in 0..frames {
            s.write_all(&wire::xk3190::tf0_frame(f64::from(1000 + i), 0))
                .unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let mut got = Vec::new();
    while got.len() < frames as usize {
        if let Some((device, kg, _)) = next(&mut rx, weight).await.into() {
            assert_eq!(device, "scale", "the flood produced a reading");
            got.push(kg);
        }
    }
    let want: Vec<f64> = (0..frames).map(|i| f64::from(1000 + i)).collect();
    assert_eq!(
        got, want,
        "every scale frame decoded, in order, during the flood"
    );
    scaler.join().unwrap();
    flooder.join().unwrap();

    // Every flooded byte is accounted for: rejected by the driver, dropped by the rate
    // limit, or (at most one buffer's worth) still waiting for a frame start.
    let mut stats = layer.device("L01", "flood").unwrap().stats();
    for _ in 0..600 {
        if stats.bytes_in == FLOOD as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        stats = layer.device("L01", "flood").unwrap().stats();
    }
    assert_eq!(stats.bytes_in, FLOOD as u64);
    assert_eq!(stats.readings, 0);
    assert!(stats.rate_dropped_bytes > 0, "{stats:?}");
    let accounted = stats.rejected_bytes + stats.rate_dropped_bytes;
    assert!(
        accounted <= FLOOD as u64 && accounted + 64 * 1024 >= FLOOD as u64,
        "{stats:?}"
    );
    layer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_scale_with_faults_is_decoded_counted_and_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("faulty.toml");
    std::fs::write(
        &scenario,
        "protocol = \"xk3190\"\nevery-ms = 50\n[link]\npty = \"tty\"\n\
         [[step]]\nweight = 1000\nhold-ms = 2000\n\
         [[step]]\ngarbage = 20\ncorrupt = 2\ntruncate = 1\n\
         [[step]]\nweight = 2000\nhold-ms = 400\n\
         [[step]]\ndisconnect-ms = 600\n\
         [[step]]\nweight = 3000\nhold-ms = 3000\n",
    )
    .unwrap();
    let scenario = kakou_host::sim::scenario::Scenario::load(&scenario).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sim = tokio::spawn(async move {
        let mut log = |_l: String| {};
        kakou_host::sim::play(&scenario, stopped, &mut log)
            .await
            .unwrap();
    });
    // The first weight lasts long enough for the driver to be compiled and the port opened
    // on a busy machine: its frames must be read before the faults that follow.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let manifest = site(
        tmp.path(),
        "[[lane]]\nid = \"L01\"\ncategory = \"A\"\ndirection = \"import\"\ndevices = [\n  { id = \"scale\", driver = \"xk3190\", transport = { serial = \"tty\" }, config = { stable-count = 2 } },\n]\n",
    );
    let runtime = Runtime::new(None).unwrap();
    let (tx, mut rx) = mpsc::channel(4096);
    let layer = DeviceLayer::start(&manifest, &runtime, tx).await.unwrap();

    let mut log = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !log.iter().any(|l: &String| l == "3000 stable") {
        let Ok(Some(e)) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            panic!("the scenario did not finish in 30 s: {log:#?}");
        };
        match e.kind {
            DeviceEventKind::Reading { reading } => {
                if let ReadingValue::Weight(w) = reading.value
                    && w.stable
                {
                    log.push(format!("{} stable", w.kg));
                }
            }
            DeviceEventKind::Rejected { rejected } => {
                log.push(format!("rejected: {}", rejected.reason))
            }
            DeviceEventKind::Offline { .. } => log.push("offline".into()),
            DeviceEventKind::Online { .. } => log.push("online".into()),
            _ => {}
        }
    }
    let pos = |needle: &str| {
        log.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {log:#?}"))
    };
    assert!(pos("1000 stable") < pos("checksum"), "{log:#?}");
    assert!(pos("checksum") < pos("2000 stable"), "{log:#?}");
    assert!(pos("2000 stable") < pos("offline"), "{log:#?}");
    assert!(pos("offline") < pos("3000 stable"), "{log:#?}");
    assert_eq!(
        log.iter().filter(|l| l.contains("checksum")).count(),
        2,
        "{log:#?}"
    );
    let stats = layer.device("L01", "scale").unwrap().stats();
    assert!(stats.rejected >= 3, "{stats:?}");
    assert!(
        stats.reasons.keys().any(|r| r.contains("noise")),
        "{stats:?}"
    );
    let _ = stop.send(true);
    sim.await.unwrap();
    layer.shutdown().await;
}

/// The next online or offline event: `Ok(link)` or `Err(reason)`.
async fn next_status(rx: &mut mpsc::Receiver<DeviceEvent>) -> Result<String, String> {
    next(rx, |e| match &e.kind {
        DeviceEventKind::Online { link } => Some(Ok(link.clone())),
        DeviceEventKind::Offline { reason } => Some(Err(reason.clone())),
        _ => None,
    })
    .await
}

/// Reads exactly `n` bytes from the board's end of a pty.
async fn board_reads(pty: &Pty, n: usize) -> Vec<u8> {
    let mut master = pty.master_clone().unwrap();
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0; n];
        std::io::Read::read_exact(&mut master, &mut buf).unwrap();
        buf
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_only_relay_board_is_online_while_its_link_is_open() {
    common::plugin("plugins/drivers/lcus-relay");
    let tmp = tempfile::tempdir().unwrap();
    let tty = tmp.path().join("ttyUSB-relay");
    let pty = Pty::open(&tty).unwrap();
    // A short silence timeout, to show it does not apply: the board never sends a byte.
    let manifest = site(
        tmp.path(),
        &format!(
            "[[lane]]\nid = \"L01\"\ncategory = \"B\"\ndirection = \"export\"\ndevices = [\n  {{ id = \"barrier\", driver = \"lcus-relay\", transport = {{ serial = \"{}\" }}, silence-timeout-ms = 20 }},\n]\n",
            tty.display()
        ),
    );
    let runtime = Runtime::new(None).unwrap();
    let (tx, mut rx) = mpsc::channel(256);
    let layer = DeviceLayer::start(&manifest, &runtime, tx).await.unwrap();

    // Online as soon as its port is open, without a byte from it.
    let link = next_status(&mut rx).await.unwrap();
    assert!(link.contains("never answers"), "{link}");
    assert!(link.contains(&tty.display().to_string()), "{link}");

    // Commands are written; the board gets exactly the relay frames, answers nothing, and the
    // device stays online (the next status change below is the unplug, not silence).
    let sent = layer
        .command("L01", "barrier", kakou_host::sdk::model::Command::Open)
        .await
        .unwrap();
    assert_eq!(sent.bytes, 4);
    assert_eq!(board_reads(&pty, 4).await, [0xA0, 0x01, 0x01, 0xA2]);
    layer
        .command("L01", "barrier", kakou_host::sdk::model::Command::Close)
        .await
        .unwrap();
    assert_eq!(board_reads(&pty, 4).await, [0xA0, 0x01, 0x00, 0xA1]);
    let stats = layer.device("L01", "barrier").unwrap().stats();
    assert!(stats.online, "{stats:?}");
    assert_eq!((stats.bytes_in, stats.bytes_out), (0, 8));

    // Unplugged: offline with the link's reason, and a command says the link is down.
    drop(pty);
    let reason = next_status(&mut rx).await.unwrap_err();
    assert!(!reason.contains("silent"), "{reason}");
    assert!(
        reason.contains("read failed") || reason.contains("closed"),
        "{reason}"
    );
    let e = layer
        .command("L01", "barrier", kakou_host::sdk::model::Command::Open)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("the link to the device is down"), "{e}");

    // Plugged back in: online again when the port reopens, still without a byte from it.
    let pty = Pty::open(&tty).unwrap();
    let link = next_status(&mut rx).await.unwrap();
    assert!(link.contains("never answers"), "{link}");
    layer
        .command("L01", "barrier", kakou_host::sdk::model::Command::Open)
        .await
        .unwrap();
    assert_eq!(board_reads(&pty, 4).await, [0xA0, 0x01, 0x01, 0xA2]);
    layer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_barrier_that_answers_commands_goes_offline_when_one_is_unanswered() {
    common::plugin("plugins/drivers/modbus-barrier");
    let tmp = tempfile::tempdir().unwrap();
    let tty = tmp.path().join("ttyS-barrier");
    let pty = Pty::open(&tty).unwrap();
    let manifest = site(
        tmp.path(),
        &format!(
            "[[lane]]\nid = \"L01\"\ncategory = \"A\"\ndirection = \"import\"\ndevices = [\n  {{ id = \"barrier\", driver = \"modbus-barrier\", transport = {{ serial = \"{}\" }}, silence-timeout-ms = 300 }},\n]\n",
            tty.display()
        ),
    );
    let runtime = Runtime::new(None).unwrap();
    let (tx, mut rx) = mpsc::channel(256);
    let layer = DeviceLayer::start(&manifest, &runtime, tx).await.unwrap();

    // Silent between commands is normal: online once the port is open.
    let link = next_status(&mut rx).await.unwrap();
    assert!(link.contains("sends on events"), "{link}");

    // A command the board does not echo: offline, saying so.
    let open = wire::modbus::write_single_coil(1, 0, true);
    layer
        .command("L01", "barrier", kakou_host::sdk::model::Command::Open)
        .await
        .unwrap();
    assert_eq!(board_reads(&pty, open.len()).await, open);
    let reason = next_status(&mut rx).await.unwrap_err();
    assert_eq!(
        reason,
        "no answer within 0.3 s to what was sent (a command or a poll)"
    );

    // The board answers the next one (its echo): online again.
    layer
        .command("L01", "barrier", kakou_host::sdk::model::Command::Open)
        .await
        .unwrap();
    assert_eq!(board_reads(&pty, open.len()).await, open);
    pty.master().write_all(&open).unwrap();
    let link = next_status(&mut rx).await.unwrap();
    assert!(link.starts_with("receiving on"), "{link}");
    layer.shutdown().await;
    drop(pty);
}
