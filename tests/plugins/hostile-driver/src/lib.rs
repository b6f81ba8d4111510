//! A driver that misbehaves when fed certain words, so the tests can show that a fault costs
//! one call and the next call runs on a fresh instance.

use kakou_plugin_sdk::prelude::*;

/// The misbehaving driver. Counts calls, so a test can tell a fresh instance from an old one.
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
        match data {
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
            other => FeedOutput {
                readings: vec![
                    Raw {
                        kind: format!("call-{}", self.calls),
                        data: other.to_vec(),
                    }
                    .into(),
                ],
                rejected: vec![],
            },
        }
    }

    fn drain(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

kakou_plugin_sdk::export_driver!(Hostile);
