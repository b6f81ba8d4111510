//! Shared by the host's integration tests: plugins built from source, once per process.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use kakou_host::plugin::build;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// Builds the plugin crate at `rel` (from the workspace root) into its component, once per test
/// process and under a file lock shared with other test processes, and returns its folder.
pub fn plugin(rel: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = built.get(rel) {
        return dir.clone();
    }
    let dir = root().join(rel);
    // Components built beforehand (by `cargo xtask` or another checkout's run) are used as
    // they are when asked: `KAKOU_TEST_PREBUILT_PLUGINS=1`.
    if std::env::var_os("KAKOU_TEST_PREBUILT_PLUGINS").is_some_and(|v| v == "1")
        && dir.join("plugin.wasm").exists()
    {
        built.insert(rel.to_owned(), dir.clone());
        return dir;
    }
    let lock_path = root().join("target").join(".kakou-plugin-build.lock");
    std::fs::create_dir_all(lock_path.parent().expect("lock has a parent")).expect("target dir");
    let lock = File::create(&lock_path).expect("create the build lock");
    lock.lock().expect("take the build lock");
    build::build(&dir).unwrap_or_else(|e| panic!("building {rel}: {e}"));
    drop(lock);
    built.insert(rel.to_owned(), dir.clone());
    dir
}

/// Copies a built plugin folder (manifest and component) into `into`, applying `edit` to the
/// manifest text, and returns the copy's folder.
pub fn variant(rel: &str, into: &Path, edit: impl FnOnce(String) -> String) -> PathBuf {
    let src = plugin(rel);
    std::fs::create_dir_all(into).expect("variant dir");
    let manifest = std::fs::read_to_string(src.join("plugin.toml")).expect("manifest");
    std::fs::write(into.join("plugin.toml"), edit(manifest)).expect("write manifest");
    std::fs::copy(src.join("plugin.wasm"), into.join("plugin.wasm")).expect("copy component");
    into.to_path_buf()
}

/// The weight-check fixture: a passage (gross 37 900 kg, plate 粤B12345, one 20 ft container)
/// and the registrations and documents it is judged against.
pub fn weight_fixture() -> (
    kakou_host::sdk::model::Passage,
    kakou_host::sdk::harness::Dataset,
) {
    #[derive(serde::Deserialize)]
    struct Fixture {
        passage: kakou_host::sdk::model::Passage,
        data: kakou_host::sdk::harness::Dataset,
    }
    let path = root().join("plugins/rules/weight-check/fixtures/passage.json");
    let text = std::fs::read_to_string(&path).expect("weight-check fixture");
    let f: Fixture = serde_json::from_str(&text).expect("weight-check fixture parses");
    (f.passage, f.data)
}

/// The fixture passage with another gross weight.
pub fn weighed(gross_kg: f64) -> kakou_host::sdk::model::Passage {
    use kakou_host::sdk::model::ReadingValue;
    let (mut p, _) = weight_fixture();
    for o in &mut p.observations {
        if let ReadingValue::Weight(w) = &mut o.reading.value {
            w.kg = gross_kg;
        }
    }
    p
}

/// A free TCP port on loopback (free when asked; tests bind it soon after).
pub fn free_port() -> u16 {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};
    // Below Linux's ephemeral range (32768–60999): a port the kernel handed out for `:0` may
    // be handed out again, between this call and the daemon's bind, as the local port of
    // some outgoing connection (a bus client's), and the daemon's listener then fails with
    // "address in use". Ports are spread by process id and never given twice in a process.
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let start = std::process::id().wrapping_mul(7_919);
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(LOW + start.wrapping_add(n.wrapping_mul(101)) % SPAN)
            .expect("below 32768");
        let mut given = GIVEN.lock().unwrap();
        if given.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 between {LOW} and {}", LOW + SPAN)
}

/// The Mosquitto broker binary (Debian puts it in /usr/sbin, which is not always on PATH).
pub fn mosquitto() -> PathBuf {
    [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .unwrap_or_else(|| PathBuf::from("mosquitto"))
}

/// A Mosquitto of the test's own: persistence in its own folder, a free port on loopback,
/// started, stopped (SIGTERM: it writes its persistence file on the way out) and killed
/// (SIGKILL: it loses what it had not saved) by the test. The machine's own broker is never
/// touched.
///
/// Mosquitto saves its sessions and queued messages only on a clean exit and every
/// `autosave_interval` seconds (30 minutes unless told): killed, it comes back without the
/// sessions made since its last save, subscriptions included, and drops what is published
/// before each subscriber has subscribed again. This one saves every second, as a broker must
/// whose acknowledgements are taken for delivery (`[bus] confirm = "broker"`).
pub struct Mosquitto {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    conf: PathBuf,
    child: Option<std::process::Child>,
}

impl Mosquitto {
    /// Writes its configuration under `dir` (not started yet).
    pub fn new(dir: &Path) -> Mosquitto {
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let data = dir.join("mosquitto");
        std::fs::create_dir_all(&data).expect("mosquitto folder");
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nautosave_interval 1\nlog_dest stderr\nlog_type error\n# Run as root (CI), keep root: the persistence folder is the test's own.\nuser root\n",
                addr.port(),
                data.display()
            ),
        )
        .expect("mosquitto.conf");
        Mosquitto {
            addr,
            conf,
            child: None,
        }
    }

    /// `mqtt://` URL.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// Starts it and waits until it accepts connections.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "mosquitto is already running");
        let child = std::process::Command::new(mosquitto())
            .arg("-c")
            .arg(&self.conf)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(self.addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "mosquitto did not listen on {}",
                self.addr
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Stops it cleanly (SIGTERM) and waits for it.
    pub fn stop(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
    }

    /// Kills it (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGKILL);
    }

    fn signal(&mut self, signal: nix::sys::signal::Signal) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id()).expect("a pid"));
            let _ = nix::sys::signal::kill(pid, signal);
            let _ = c.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The child processes of `pid` (every thread's), from /proc.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The command line of process `pid`, arguments separated by spaces ("" once it is gone).
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}
