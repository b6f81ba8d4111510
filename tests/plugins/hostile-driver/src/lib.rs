//! A driver that misbehaves when fed certain words, so the tests can show that a fault costs
//! one call and the next call runs on a fresh instance.

use kakou_plugin_sdk::prelude::*;

/// The misbehaving driver. Counts calls (`feed` and `encode`), so a test can tell a fresh
/// instance from an old one.
pub struct Hostile {
    calls: u32,
}

impl Driver for Hostile {
    fn describe() -> DriverDescription {
        DriverDescription {
            name: "hostile-driver".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            device_classes: vec!["test".into()],
            summary: "misbehaves on request".into(),
            poll_interval_ms: None,
            settings: vec![],
        }
    }

    fn open(_config: &Config) -> Result<Self, String> {
        Ok(Hostile { calls: 0 })
    }

    fn feed(&mut self, data: &[u8]) -> FeedOutput {
        self.calls += 1;
        if let Some(ms) = data.strip_prefix(b"nap ") {
            // Waits outside its own code (WASI sleeps in the host) once, then answers.
            let ms: u64 = String::from_utf8_lossy(ms).trim().parse().unwrap_or(0);
            std::thread::sleep(std::time::Duration::from_millis(ms));
            return self.echo(data);
        }
        match data {
            b"naps" => loop {
                // Never finishes, and hardly uses any CPU time doing so.
                std::thread::sleep(std::time::Duration::from_millis(10));
            },
            b"loop" => loop {
                std::hint::black_box(&mut self.calls);
            },
            b"grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![7u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            b"trap" => panic!("hostile driver panics on purpose"),
            b"huge" => FeedOutput {
                readings: vec![
                    Raw {
                        kind: "huge".into(),
                        data: vec![0u8; 1 << 20],
                    }
                    .into(),
                ],
                rejected: vec![],
            },
            other => self.echo(other),
        }
    }

    fn drain(&mut self) -> Vec<u8> {
        Vec::new()
    }

    /// Opens (answering `open-N`, N counting calls), shows text, and misbehaves on the texts
    /// `trap` and `loop`; declines anything else.
    fn encode(&mut self, command: &Command) -> Result<Vec<u8>, String> {
        self.calls += 1;
        match command {
            Command::Open => Ok(format!("open-{}", self.calls).into_bytes()),
            Command::Display(text) if text == "trap" => {
                panic!("hostile driver panics on purpose in encode")
            }
            Command::Display(text) if text == "loop" => loop {
                std::hint::black_box(&mut self.calls);
            },
            Command::Display(text) => Ok(text.as_bytes().to_vec()),
            other => Err(format!("hostile driver does not {other:?}")),
        }
    }
}

impl Hostile {
    /// One raw reading of `data`, its kind naming the call (`call-N`).
    fn echo(&self, data: &[u8]) -> FeedOutput {
        FeedOutput {
            readings: vec![
                Raw {
                    kind: format!("call-{}", self.calls),
                    data: data.to_vec(),
                }
                .into(),
            ],
            rejected: vec![],
        }
    }
}

kakou_plugin_sdk::export_driver!(Hostile);
