//! The daemon on the bus, against the embedded broker and against Mosquitto at 127.0.0.1:1883:
//! readings out, commands in, bad input refused with a reason, status retained, last will.

#![allow(clippy::unwrap_used)] // test helpers fail loudly, like the tests

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kakou_host::bus::payload::Envelope;
use kakou_host::bus::{BusClient, ClientOptions, Message, QoS};
use kakou_host::daemon::CommandMessage;
use kakou_host::sdk::model::Command as DeviceCommand;
use kakou_host::sdk::wire;
use kakou_host::sim::pty::Pty;
use tokio::sync::mpsc;

const MOSQUITTO: &str = "mqtt://127.0.0.1:1883";

/// Watchers get distinct client ids: a broker drops an older connection with the same id.
static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

struct Daemon {
    child: Child,
    site: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `kakou run` with a scale and a barrier on ptys; returns once it says it is running.
fn start(dir: &std::path::Path, bus: &str, tag: &str) -> Daemon {
    common::plugin("plugins/drivers/xk3190");
    common::plugin("plugins/drivers/modbus-barrier");
    let site = format!("bus-{tag}-{}", std::process::id());
    let text = format!(
        "[site]\nid = \"{site}\"\noffice = \"5201\"\nplugins = \"{}\"\nallow-dev-plugins = true\ngateway = true\n\n[bus]\n{bus}\n\n\
         [[lane]]\nid = \"L01\"\ncategory = \"A\"\ndirection = \"import\"\ndevices = [\n\
           {{ id = \"scale\", driver = \"xk3190\", transport = {{ serial = \"tty-scale\" }}, config = {{ stable-count = 1 }} }},\n\
           {{ id = \"barrier\", driver = \"modbus-barrier\", transport = {{ serial = \"tty-barrier\" }} }},\n]\n",
        common::root().join("plugins").display()
    );
    std::fs::write(dir.join("site.toml"), text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kakou"))
        .args(["run", "--site"])
        .arg(dir.join("site.toml"))
        .env(
            "KAKOU_CACHE_DIR",
            common::root().join("target/test-artifact-cache"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("running"), "{line}");
    Daemon { child, site }
}

async fn watch(url: &str, site: &str) -> (BusClient, mpsc::Receiver<Message>) {
    let mut options = ClientOptions::new(
        url,
        &format!(
            "watcher-{site}-{}",
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ),
    );
    options.clean_session = true;
    let (client, messages, _links) = BusClient::connect(&options).unwrap();
    client
        .subscribe(&format!("kakou/{site}/#"), QoS::AtLeastOnce)
        .await
        .unwrap();
    (client, messages)
}

async fn next_on(rx: &mut mpsc::Receiver<Message>, topic_end: &str) -> serde_json::Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no message on …{topic_end} within 30 s"))
            .unwrap();
        if m.topic.ends_with(topic_end) {
            return serde_json::from_slice(&m.payload).unwrap();
        }
    }
}

async fn suite(url: &str, daemon: &mut Daemon) {
    let site = daemon.site.clone();
    let (client, mut rx) = watch(url, &site).await;
    let status = next_on(&mut rx, "/daemon/status").await;
    assert_eq!(
        (status["schema"].as_u64(), status["state"].as_str()),
        (Some(1), Some("online")),
        "{status}"
    );

    // A reading goes out on its topic, in its envelope.
    let reading = next_reading(&mut rx).await;
    assert_eq!(reading["schema"], 1);
    assert_eq!(reading["lane"], "L01");
    assert_eq!(reading["device"], "scale");
    assert_eq!(reading["reading"]["type"], "weight");
    assert_eq!(reading["reading"]["kg"], 4321.0);
    assert!(
        reading["id"]
            .as_str()
            .is_some_and(|id| id.starts_with(&site))
    );

    // A command comes in and reaches the barrier as its exact bytes.
    let command = Envelope::new(
        "op-1",
        1,
        CommandMessage {
            command: DeviceCommand::Open,
            operator: Some("op7".into()),
        },
    );
    let topic = format!("kakou/{site}/lane/L01/device/barrier/command");
    client
        .publish(&topic, command.to_bytes(), QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(
        read_barrier().await,
        [0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A]
    );

    // Bad input is refused with a reason, and the daemon keeps going.
    for (payload, reason) in [
        (b"{not json".to_vec(), "not JSON"),
        (
            br#"{"schema":9,"id":"x","at_ms":1,"command":{"type":"open"}}"#.to_vec(),
            "schema 9 is not one this daemon reads",
        ),
        (
            br#"{"schema":1,"id":"x","at_ms":1,"command":{"type":"fly"}}"#.to_vec(),
            "unknown variant `fly`",
        ),
        (vec![b'x'; 300_000], "over the 262144-byte limit"),
    ] {
        client
            .publish(&topic, payload, QoS::AtLeastOnce, false)
            .await
            .unwrap();
        let r = next_on(&mut rx, "/rejected").await;
        assert!(r["reason"].as_str().unwrap().contains(reason), "{r}");
        assert_eq!(r["topic"], topic.as_str());
        let alarm = next_on(&mut rx, "/alarm").await;
        assert_eq!(alarm["code"], "bus.rejected");
    }
    let unknown = format!("kakou/{site}/lane/L09/device/nothing/command");
    client
        .publish(&unknown, command.to_bytes(), QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let r = next_on(&mut rx, "/rejected").await;
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("no device L09/nothing"),
        "{r}"
    );
    client
        .publish(&topic, command.to_bytes(), QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(
        read_barrier().await.len(),
        8,
        "the daemon still serves commands"
    );
    client.disconnect().await;
}

/// Writes frames to the scale until a reading shows up on the bus.
async fn next_reading(rx: &mut mpsc::Receiver<Message>) -> serde_json::Value {
    loop {
        let pty = SCALE.with(|s| s.borrow().as_ref().map(|p| p.master_clone().unwrap()));
        if let Some(mut m) = pty {
            m.write_all(&wire::xk3190::tf0_frame(4321.0, 0)).unwrap();
        }
        match tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
            Ok(Some(m)) if m.topic.ends_with("/reading/scale") => {
                return serde_json::from_slice(&m.payload).unwrap();
            }
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => panic!("the watcher stopped"),
        }
    }
}

thread_local! {
    static SCALE: std::cell::RefCell<Option<Pty>> = const { std::cell::RefCell::new(None) };
    static BARRIER: std::cell::RefCell<Option<Pty>> = const { std::cell::RefCell::new(None) };
}

async fn read_barrier() -> Vec<u8> {
    let mut m = BARRIER.with(|b| b.borrow().as_ref().unwrap().master_clone().unwrap());
    tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; 8];
            m.read_exact(&mut buf).map(|_| buf)
        }),
    )
    .await
    .expect("barrier bytes within 20 s")
    .unwrap()
    .unwrap()
}

fn ptys(dir: &std::path::Path) {
    SCALE.with(|s| *s.borrow_mut() = Some(Pty::open(&dir.join("tty-scale")).unwrap()));
    BARRIER.with(|b| *b.borrow_mut() = Some(Pty::open(&dir.join("tty-barrier")).unwrap()));
}

#[tokio::test(flavor = "current_thread")]
async fn the_daemon_on_its_embedded_broker() {
    let tmp = tempfile::tempdir().unwrap();
    ptys(tmp.path());
    let port = common::free_port();
    let mut daemon = start(
        tmp.path(),
        &format!("broker = \"embedded\"\nlisten = \"127.0.0.1:{port}\""),
        "embedded",
    );
    let url = format!("mqtt://127.0.0.1:{port}");
    suite(&url, &mut daemon).await;

    // A clean stop says `offline` (retained) before the broker goes away with the daemon.
    let (_c, mut rx) = watch(&url, &daemon.site).await;
    assert_eq!(next_on(&mut rx, "/daemon/status").await["state"], "online");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(next_on(&mut rx, "/daemon/status").await["state"], "offline");
    assert!(daemon.child.wait().unwrap().success());
}

#[tokio::test(flavor = "current_thread")]
async fn the_daemon_on_mosquitto() {
    let tmp = tempfile::tempdir().unwrap();
    ptys(tmp.path());
    let mut daemon = start(
        tmp.path(),
        &format!("broker = \"{MOSQUITTO}\""),
        "mosquitto",
    );
    suite(MOSQUITTO, &mut daemon).await;

    // Killed outright, the daemon's last will tells everyone it is gone.
    let (_c, mut rx) = watch(MOSQUITTO, &daemon.site).await;
    assert_eq!(next_on(&mut rx, "/daemon/status").await["state"], "online");
    daemon.child.kill().unwrap();
    let _ = daemon.child.wait();
    assert_eq!(next_on(&mut rx, "/daemon/status").await["state"], "offline");
}
