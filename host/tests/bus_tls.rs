//! The daemon on a TLS broker (`mqtts://`): a Mosquitto of the test's own with a CA, a server
//! certificate and required client certificates, all made by `openssl` for the test. The
//! daemon connects with its CA file and client certificate and publishes its status; a client
//! without a certificate is turned away.

#![allow(clippy::unwrap_used)] // test helpers fail loudly, like the tests

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kakou_host::bus::{BusClient, ClientOptions, Link, QoS};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for localhost and a client certificate, in `dir`.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=kakou test CA",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    for who in ["server", "client"] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{who}.key"),
                "-out",
                &format!("{who}.csr"),
                "-subj",
                &format!("/CN={who}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{who}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{who}.ext"),
            ],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_on_a_tls_broker_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        d.join("mosquitto.conf"),
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\ncafile {0}/ca.pem\ncertfile {0}/server.pem\n\
             keyfile {0}/server.key\nrequire_certificate true\nlog_dest stderr\nlog_type error\nuser root\n",
            d.display()
        ),
    )
    .unwrap();
    let _broker = Kill(
        Command::new(common::mosquitto())
            .arg("-c")
            .arg(d.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }

    let url = format!("mqtts://localhost:{port}");
    let site = format!("tls-{}", std::process::id());
    std::fs::write(
        d.join("site.toml"),
        format!(
            "[site]\nid = \"{site}\"\noffice = \"5201\"\nplugins = \"{}\"\nallow-dev-plugins = true\n\n\
             [bus]\nbroker = \"{url}\"\nca-file = \"ca.pem\"\nclient-cert = \"client.pem\"\nclient-key = \"client.key\"\n\n\
             [store]\npath = \"kakou.redb\"\n",
            common::root().join("plugins").display()
        ),
    )
    .unwrap();
    let mut daemon = Kill(
        Command::new(env!("CARGO_BIN_EXE_kakou"))
            .args(["run", "--site"])
            .arg(d.join("site.toml"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(daemon.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains(&format!("bus {url}")), "{line}");

    // A client with a certificate sees the daemon's retained status over TLS.
    let mut options = ClientOptions::new(&url, &format!("{site}-watcher"));
    options.ca_file = Some(d.join("ca.pem"));
    options.client_cert = Some((d.join("client.pem"), d.join("client.key")));
    let (client, mut rx, _links) = BusClient::connect(&options).unwrap();
    client
        .subscribe(&format!("kakou/{site}/daemon/status"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let status = loop {
        let m = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("the daemon's status within 30 s")
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        if v["state"] == "online" {
            break v;
        }
    };
    assert_eq!(status["site"], site.as_str());

    // Without a client certificate the broker refuses the connection.
    let mut bare = ClientOptions::new(&url, &format!("{site}-bare"));
    bare.ca_file = Some(d.join("ca.pem"));
    let (_c, _rx, mut links) = BusClient::connect(&bare).unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(30), links.recv())
        .await
        .expect("a connection outcome within 30 s")
        .unwrap();
    assert!(
        matches!(refused, Link::Disconnected(_)),
        "a client without a certificate got {refused:?}"
    );
}
