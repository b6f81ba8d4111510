//! Load run: the real `kakou devices` daemon with 64 XK3190 weighbridges on pseudo-terminals,
//! each streaming at the rate a 9600-baud line carries (80 frames of 12 bytes per second).
//! Reports the daemon's CPU use and resident memory, and how many readings it decoded.
//!
//! `cargo bench -p kakou-host --bench serial_load` (set `KAKOU_LOAD_SECS` to change the 20 s run).

#![allow(clippy::unwrap_used)] // a load run that cannot set up should stop right there

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kakou_host::sdk::wire;
use kakou_host::sim::pty::Pty;

const DEVICES: usize = 64;
const FRAMES_PER_SEC: u64 = 80;

fn proc_cpu_and_rss(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of stat; here 12 and 13 after the command name.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let hz = 100.0; // USER_HZ on Linux
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks / hz, rss_kb)
}

fn main() {
    let secs: u64 = std::env::var("KAKOU_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    common::plugin("plugins/drivers/xk3190");
    let tmp = tempfile::tempdir().unwrap();
    let ptys: Vec<Pty> = (0..DEVICES)
        .map(|i| Pty::open(&tmp.path().join(format!("tty{i}"))).unwrap())
        .collect();
    let mut site = format!(
        "[site]\nid = \"load\"\noffice = \"5201\"\nplugins = \"{}\"\nallow-dev-plugins = true\n",
        common::root().join("plugins").display()
    );
    for lane in 0..DEVICES / 4 {
        site.push_str(&format!("\n[[lane]]\nid = \"L{lane:02}\"\ncategory = \"A\"\ndirection = \"import\"\ndevices = [\n"));
        for d in 0..4 {
            let i = lane * 4 + d;
            site.push_str(&format!(
                "  {{ id = \"scale{d}\", driver = \"xk3190\", transport = {{ serial = \"tty{i}\", baud = 9600 }}, config = {{ report = \"every\" }} }},\n"
            ));
        }
        site.push_str("]\n");
    }
    std::fs::write(tmp.path().join("site.toml"), site).unwrap();

    let mut daemon = Command::new(env!("CARGO_BIN_EXE_kakou"))
        .args(["devices", "--site"])
        .arg(tmp.path().join("site.toml"))
        .env(
            "KAKOU_CACHE_DIR",
            common::root().join("target/test-artifact-cache"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = daemon.id();
    let stdout = daemon.stdout.take().unwrap();
    let counter = std::thread::spawn(move || {
        let mut readings = 0u64;
        for line in BufReader::new(stdout).lines() {
            if line.unwrap().contains("\"event\":\"reading\"") {
                readings += 1;
            }
        }
        readings
    });
    std::thread::sleep(Duration::from_secs(2));

    let mut masters: Vec<std::fs::File> = ptys.iter().map(|p| p.master_clone().unwrap()).collect();
    let (cpu0, _) = proc_cpu_and_rss(pid);
    let start = Instant::now();
    let period = Duration::from_nanos(1_000_000_000 / FRAMES_PER_SEC);
    let mut sent = 0u64;
    let mut next = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        for (i, m) in masters.iter_mut().enumerate() {
            m.write_all(&wire::xk3190::tf0_frame(
                20_000.0 + (sent % 97) as f64 + i as f64,
                0,
            ))
            .unwrap();
        }
        sent += 1;
        next += period;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let (cpu1, rss_kb) = proc_cpu_and_rss(pid);
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let _ = daemon.wait();
    let readings = counter.join().unwrap();
    let frames = sent * DEVICES as u64;
    println!(
        "serial load: {DEVICES} devices x {FRAMES_PER_SEC} frames/s (9600 baud) for {wall:.1} s"
    );
    println!("  frames sent      {frames}");
    println!("  readings decoded {readings}");
    println!(
        "  daemon CPU       {:.1} % of one core ({:.2} s CPU)",
        (cpu1 - cpu0) / wall * 100.0,
        cpu1 - cpu0
    );
    println!("  daemon RSS       {} MiB", rss_kb / 1024);
    drop(ptys);
}
