//! Device simulators: play a device over a pseudo-terminal, TCP, UDP or HTTP with the exact
//! wire format its driver expects, for commissioning and tests without hardware.
//!
//! Owns scenario files ([`scenario`]), the simulated links ([`pty`] and the socket side), and
//! one speaker per protocol that turns the device's state into bytes. Frames come from
//! [`kakou_plugin_sdk::wire`]; nothing here decodes.

mod link;
pub mod pty;
pub mod scenario;
mod speaker;

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::diag::SourceError;
use link::SimLink;
use scenario::{Scenario, Step};
use speaker::DeviceState;

/// Why a simulation stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario file is wrong.
    #[error(transparent)]
    Scenario(#[from] SourceError),
    /// No simulator speaks this protocol.
    #[error(
        "no simulator for protocol {0:?} (known: xk3190, yaohua-a12, toledo-continuous, mt-sics, chafon-uhf18, impinj-r2000, sm130, rdm6300, hikvision-anpr, container-ocr, nmea0183, jt701, modbus-barrier, lcus-relay)"
    )]
    Protocol(String),
    /// A protocol option is wrong.
    #[error("option `{key}`: {message}")]
    Option {
        /// The option.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A step is wrong.
    #[error("step: {0}")]
    Step(String),
    /// The link failed.
    #[error("link: {0}")]
    Link(String),
}

/// Plays a scenario until its steps are done (or forever with `repeat = 0`) or `shutdown`
/// turns true. `log` receives one line per thing the device does or hears.
pub async fn play(
    scenario: &Scenario,
    mut shutdown: watch::Receiver<bool>,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<(), SimError> {
    let mut speaker = speaker::speaker(&scenario.protocol, &scenario.options)?;
    let mut link = SimLink::open(&scenario.link).await?;
    log(format!(
        "{} device on {}",
        scenario.protocol,
        link.describe()
    ));
    let mut state = DeviceState::default();
    let mut player = Player {
        speaker: &mut *speaker,
        link: &mut link,
        state: &mut state,
        every: scenario.every,
        log,
    };
    let mut round = 0u32;
    while scenario.repeat == 0 || round < scenario.repeat {
        round += 1;
        for step in &scenario.steps {
            if *shutdown.borrow() {
                return Ok(());
            }
            tokio::select! {
                r = player.step(step) => r?,
                _ = crate::device::transport::stopped(&mut shutdown) => return Ok(()),
            }
        }
    }
    Ok(())
}

struct Player<'a> {
    speaker: &'a mut dyn speaker::Speaker,
    link: &'a mut SimLink,
    state: &'a mut DeviceState,
    every: Duration,
    log: &'a mut (dyn FnMut(String) + Send),
}

impl Player<'_> {
    async fn send(&mut self, bytes: Vec<u8>) -> Result<(), SimError> {
        if let Some(note) = self.link.send(&bytes).await? {
            (self.log)(note);
        }
        Ok(())
    }

    /// Streams the state and answers the daemon for `d`.
    async fn live(&mut self, d: Duration) -> Result<(), SimError> {
        let end = Instant::now() + d;
        let mut next_tick = Instant::now();
        loop {
            self.link.accept_pending().await;
            while let Ok(bytes) = self.link.incoming.try_recv() {
                let (answer, note) = self.speaker.answer(&bytes, self.state);
                (self.log)(format!(
                    "heard {}{}",
                    hex::encode_upper(&bytes),
                    note.map(|n| format!(" ({n})")).unwrap_or_default()
                ));
                self.send(answer).await?;
            }
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            if now >= next_tick {
                next_tick = now + self.every;
                if let Some(bytes) = self.speaker.tick(self.state) {
                    self.send(bytes).await?;
                }
            }
            let wake = next_tick.min(end).min(now + Duration::from_millis(5));
            tokio::time::sleep_until(wake).await;
        }
    }

    async fn step(&mut self, step: &Step) -> Result<(), SimError> {
        if let Some(w) = step.weight {
            self.state.weight = w;
            self.state.moving = false;
            (self.log)(format!("weight {w} kg"));
        }
        if let Some(r) = &step.ramp {
            (self.log)(format!("weight {} -> {} kg over {} ms", r.from, r.to, r.ms));
            let start = Instant::now();
            let total = Duration::from_millis(r.ms.max(1));
            self.state.moving = true;
            while start.elapsed() < total {
                let f = start.elapsed().as_secs_f64() / total.as_secs_f64();
                self.state.weight = (r.from + (r.to - r.from) * f).round();
                self.live(self.every).await?;
            }
            self.state.weight = r.to;
            self.state.moving = false;
        }
        if let Some(tags) = &step.tags {
            self.state.tags = tags
                .iter()
                .map(|t| speaker::parse_hex(t))
                .collect::<Result<_, _>>()?;
            (self.log)(format!(
                "tags in the field: {}",
                if tags.is_empty() {
                    "none".into()
                } else {
                    tags.join(", ")
                }
            ));
        }
        if let Some(card) = &step.card {
            self.state.card = if card.is_empty() {
                None
            } else {
                Some(speaker::parse_hex(card)?)
            };
            (self.log)(if card.is_empty() {
                "card removed".into()
            } else {
                format!("card {card} presented")
            });
        }
        if let Some(f) = &step.fix {
            self.state.fix = Some((f.lat, f.lon, f.speed, f.course));
            (self.log)(format!(
                "fix {:.5}, {:.5} at {} km/h",
                f.lat, f.lon, f.speed
            ));
        }
        let event = self.speaker.on_step(step, self.state)?;
        if !event.is_empty() {
            if let Some(p) = &step.plate {
                (self.log)(format!("plate {p}"));
            }
            if let Some(c) = &step.container {
                (self.log)(format!("container {c}"));
            }
            if let Some(s) = &step.seal {
                (self.log)(format!("seal {} {}", s.id, s.state));
            }
            self.send(event).await?;
        }
        if let Some(n) = step.garbage {
            let mut x: u32 = 0x9E37_79B9;
            let junk: Vec<u8> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    // Never a frame start or delimiter: garbage must not look like a frame.
                    match (x & 0xFF) as u8 {
                        0x02 | 0x03 | b'$' | b'(' | b'\r' | b'\n' | 0xA0 | 0xFF => 0x55,
                        b => b,
                    }
                })
                .collect();
            (self.log)(format!("{n} bytes of garbage"));
            self.send(junk).await?;
        }
        for _ in 0..step.corrupt.unwrap_or(0) {
            let mut f = self.speaker.sample(self.state);
            let mid = f.len() / 2;
            f[mid] ^= 0x01;
            (self.log)(format!("corrupt frame {}", hex::encode_upper(&f)));
            self.send(f).await?;
        }
        for _ in 0..step.truncate.unwrap_or(0) {
            let f = self.speaker.sample(self.state);
            let half = f[..f.len() / 2].to_vec();
            (self.log)(format!("truncated frame {}", hex::encode_upper(&half)));
            self.send(half).await?;
        }
        if let Some(raw) = &step.raw {
            self.send(speaker::parse_hex(raw)?).await?;
        }
        if let Some(ms) = step.silence_ms {
            (self.log)(format!("silent for {ms} ms"));
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if let Some(ms) = step.disconnect_ms {
            (self.log)(format!("unplugged for {ms} ms"));
            self.link.down();
            tokio::time::sleep(Duration::from_millis(ms)).await;
            self.link.reconnect().await?;
            (self.log)(format!("plugged back in: {}", self.link.describe()));
        }
        self.live(Duration::from_millis(step.hold_ms.unwrap_or(0)))
            .await
    }
}
