//! One device's task: link events in, driver calls, device events out, commands and polls.
//!
//! Driver calls run inline on the task: each is bounded by the plugin's fuel and deadline, and
//! every device has its own task, so a slow or flooding device costs only its own time.
//!
//! Online status follows what the device sends ([`Sends`]): a device that sends steadily is
//! offline when silent past its timeout; one that sends on events is online while its link is
//! open and offline when what was sent to it gets no answer in time; a write-only one is online
//! while its link is open and offline when the link (or a write on it) fails.
//!
//! A driver swap ([`SwapRequest`]) is handled by the same task, between two link events: the
//! old decoder's unconsumed bytes (`drain`) are fed to the new decoder, and every byte that
//! arrived meanwhile waits in the link's channel for the new decoder, so none slips between
//! the two and no frame is decoded twice.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kakou_plugin_sdk::model::{Command, Rejected};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use super::transport::{Link, LinkEvent};
use super::{
    CommandFailed, CommandSent, DeviceCommand, DeviceEvent, DeviceEventKind, DeviceStats,
    DriverSwap, SwapRequest, now_ms,
};
use crate::config::{DeviceConfig, Sends};
use crate::plugin::DriverInstance;

/// Far enough in the future to mean "never".
const NEVER: Duration = Duration::from_secs(86_400 * 365);

pub(super) struct Runner {
    pub(super) lane: Arc<str>,
    pub(super) device: Arc<str>,
    /// Where the device's driver is installed (for the message while it is missing).
    pub(super) driver_dir: PathBuf,
    pub(super) config: DeviceConfig,
    /// None while the device waits for its driver to be installed.
    pub(super) driver: Option<DriverInstance>,
    pub(super) link: Link,
    pub(super) commands: mpsc::Receiver<DeviceCommand>,
    pub(super) swaps: mpsc::Receiver<SwapRequest>,
    pub(super) events: mpsc::Sender<DeviceEvent>,
    pub(super) stats: Arc<Mutex<DeviceStats>>,
    pub(super) shutdown: watch::Receiver<bool>,
    /// A device that sends on events: when the bytes sent to it must have had an answer.
    pub(super) answer_due: Option<Instant>,
}

/// Why the task woke up.
enum Wake {
    Link(Option<LinkEvent>),
    Command(Option<DeviceCommand>),
    Swap(SwapRequest),
    Poll,
    Silence,
    NoAnswer,
    Close,
    Stop,
}

/// Byte budget per one-second window.
struct RateWindow {
    start: Instant,
    used: u64,
    dropped: u64,
}

impl Runner {
    fn stats(&self) -> std::sync::MutexGuard<'_, DeviceStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn emit(&mut self, kind: DeviceEventKind) {
        let event = DeviceEvent {
            lane: self.lane.clone(),
            device: self.device.clone(),
            at_ms: now_ms(),
            kind,
        };
        // A full channel slows this device down rather than losing its events.
        let _ = self.events.send(event).await;
    }

    async fn set_online(&mut self, online: bool, why: String) {
        {
            let mut s = self.stats();
            if s.online == online && s.status == why {
                return;
            }
            s.online = online;
            s.status = why.clone();
            s.since_ms = now_ms();
        }
        tracing::info!(lane = %self.lane, device = %self.device, online, "{why}");
        let kind = if online {
            DeviceEventKind::Online { link: why }
        } else {
            DeviceEventKind::Offline { reason: why }
        };
        self.emit(kind).await;
    }

    /// Hands bytes to the link; false when the link has gone. `cause` (a poll, or the
    /// command) is only for the trace log: what became of a command is its receipt's.
    async fn send(&mut self, bytes: Vec<u8>, cause: &(dyn std::fmt::Debug + Sync)) -> bool {
        if bytes.is_empty() {
            return true;
        }
        self.stats().bytes_out += bytes.len() as u64;
        tracing::trace!(lane = %self.lane, device = %self.device, "sending {} ({cause:?})", hex::encode_upper(&bytes));
        let sent = self.link.outgoing.send(bytes).await.is_ok();
        if sent && self.sends() == Sends::OnEvent && self.answer_due.is_none() {
            self.answer_due = Some(Instant::now() + self.config.silence_timeout);
        }
        sent
    }

    /// When the device sends bytes: the site's word for it, else its driver's.
    fn sends(&self) -> Sends {
        self.config.sends.unwrap_or_else(|| {
            self.driver
                .as_ref()
                .map_or(Sends::default(), |d| d.plugin().manifest().sends)
        })
    }

    /// When a device that sends steadily is called silent after `now`; never for the others.
    fn silence_after(&self, now: Instant) -> Instant {
        match self.sends() {
            Sends::Steadily => now + self.config.silence_timeout,
            Sends::OnEvent | Sends::Never => now + NEVER,
        }
    }

    /// Online as soon as the link is open, for a device whose silence says nothing.
    async fn link_open(&mut self, link: &str) {
        let why = match self.sends() {
            Sends::Steadily => return,
            Sends::OnEvent => format!(
                "{link}; the device sends on events: online while the link is open, offline when \
                 a command or poll gets no answer within {} s",
                self.config.silence_timeout.as_secs_f64()
            ),
            Sends::Never => format!(
                "{link}; the device never answers: online while the link is open and takes \
                 what is written, offline when a write fails or the link drops"
            ),
        };
        if self.driver.is_some() {
            self.set_online(true, why).await;
        }
    }

    async fn fault(&mut self, error: String) {
        self.stats().faults += 1;
        self.emit(DeviceEventKind::Fault { error }).await;
    }

    async fn reject(&mut self, r: Rejected) {
        {
            let mut s = self.stats();
            s.rejected += 1;
            s.rejected_bytes += u64::from(r.bytes);
            s.count_reason(&r.reason);
        }
        self.emit(DeviceEventKind::Rejected { rejected: r }).await;
    }

    async fn on_bytes(&mut self, mut bytes: Vec<u8>, window: &mut RateWindow) {
        let now = Instant::now();
        if now.duration_since(window.start) >= Duration::from_secs(1) {
            if window.dropped > 0 {
                let dropped = window.dropped;
                self.reject(Rejected {
                    reason: format!(
                        "rate limit: over {} bytes/s, excess dropped",
                        self.config.max_bytes_per_sec
                    ),
                    bytes: u32::try_from(dropped).unwrap_or(u32::MAX),
                })
                .await;
            }
            *window = RateWindow {
                start: now,
                used: 0,
                dropped: 0,
            };
        }
        self.stats().bytes_in += bytes.len() as u64;
        let allowed = u64::from(self.config.max_bytes_per_sec).saturating_sub(window.used);
        if bytes.len() as u64 > allowed {
            let excess = bytes.len() as u64 - allowed;
            bytes.truncate(allowed as usize);
            window.dropped += excess;
            self.stats().rate_dropped_bytes += excess;
        }
        window.used += bytes.len() as u64;
        if bytes.is_empty() {
            return;
        }
        if self.driver.is_none() {
            self.reject(Rejected {
                reason: format!("no driver: {}", self.waiting()),
                bytes: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            })
            .await;
            return;
        }
        if !self.stats().online {
            let link = self.stats().transport.clone();
            self.set_online(true, format!("receiving on {link}")).await;
        }
        self.decode(&bytes).await;
    }

    /// Why the device has no driver.
    fn waiting(&self) -> String {
        format!(
            "waiting for driver `{}` to be installed in {}",
            self.config.driver,
            self.driver_dir.display()
        )
    }

    /// Feeds bytes to the driver and sends out what it made of them; returns the readings.
    async fn decode(&mut self, bytes: &[u8]) -> usize {
        let Some(driver) = self.driver.as_mut() else {
            return 0;
        };
        match driver.feed(bytes) {
            Ok(out) => {
                let n = out.readings.len();
                for r in out.rejected {
                    self.reject(r).await;
                }
                for reading in out.readings {
                    {
                        let mut s = self.stats();
                        s.readings += 1;
                        s.last_reading = Some((now_ms(), reading.clone()));
                    }
                    self.emit(DeviceEventKind::Reading { reading }).await;
                }
                n
            }
            Err(e) => {
                // The bytes of a faulted call are lost with the instance.
                self.reject(Rejected {
                    reason: format!("driver fault: {}", e.kind),
                    bytes: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
                })
                .await;
                self.fault(e.to_string()).await;
                0
            }
        }
    }

    /// Puts a new decoder in place: the old one's unconsumed bytes go to it first.
    async fn on_swap(&mut self, request: SwapRequest) {
        let SwapRequest { instance, reply } = request;
        let current = instance.plugin().id();
        let (previous, carried, lost) = match self.driver.replace(instance) {
            None => (None, Vec::new(), None),
            Some(mut old) => match old.drain() {
                Ok(bytes) => (Some(old.plugin().id()), bytes, None),
                Err(e) => (Some(old.plugin().id()), Vec::new(), Some(e.to_string())),
            },
        };
        self.stats().driver = current.clone();
        if let Some(reason) = &lost {
            // What the old decoder held is gone with its instance.
            self.fault(reason.clone()).await;
        }
        let carried_readings = if carried.is_empty() {
            0
        } else {
            self.decode(&carried).await
        };
        tracing::info!(
            lane = %self.lane,
            device = %self.device,
            "driver {} -> {current}: {} unconsumed bytes carried over, {carried_readings} readings from them",
            previous.as_deref().unwrap_or("(none)"),
            carried.len()
        );
        let _ = reply.send(DriverSwap {
            previous,
            current,
            carried_bytes: carried.len(),
            carried_readings,
            lost,
        });
    }

    /// Encodes and sends a command; a driver fault gets one more try on the rebuilt
    /// instance (a fault costs the call, not the command). The receipt, when there is one,
    /// says whether the bytes reached the link.
    async fn on_command(
        &mut self,
        command: DeviceCommand,
        link_up: bool,
        pending_close: &mut Option<Instant>,
    ) {
        let DeviceCommand { command, receipt } = command;
        let result = self.command(&command, link_up, pending_close).await;
        if let Err(e) = &result {
            self.fault(format!("command {command:?}: {e}")).await;
        }
        if let Some(r) = receipt {
            let _ = r.send(result);
        }
    }

    async fn command(
        &mut self,
        command: &Command,
        link_up: bool,
        pending_close: &mut Option<Instant>,
    ) -> Result<CommandSent, CommandFailed> {
        let waiting = self.waiting();
        let Some(driver) = self.driver.as_mut() else {
            return Err(CommandFailed::NoDriver(waiting));
        };
        let bytes = match driver.encode(command) {
            Ok(b) => b,
            // A fault discarded the instance: one more try runs on a fresh one. A refusal
            // (the driver cannot do this command) would only be refused again.
            Err(first) if crate::plugin::health::is_fault(&first.kind) => {
                tracing::warn!(lane = %self.lane, device = %self.device, "encode failed, trying again on a fresh instance: {first}");
                driver
                    .encode(command)
                    .map_err(|e| CommandFailed::Encode(format!("{e} (first try: {first})")))?
            }
            Err(refused) => return Err(CommandFailed::Encode(refused.to_string())),
        };
        if !link_up {
            let status = self.stats().status.clone();
            return Err(CommandFailed::LinkDown(status));
        }
        let n = bytes.len();
        if !self.send(bytes, command).await {
            return Err(CommandFailed::LinkDown("the link has closed".into()));
        }
        if let Command::Pulse(ms) = command {
            *pending_close = Some(Instant::now() + Duration::from_millis(u64::from(*ms)));
        }
        Ok(CommandSent { bytes: n })
    }

    /// How often the driver wants the device polled, if at all.
    fn poll_every(&self) -> Option<Duration> {
        self.driver
            .as_ref()?
            .plugin()
            .description()
            .poll_interval_ms
            .map(|ms| Duration::from_millis(u64::from(ms.max(10))))
    }

    pub(super) async fn run(mut self) {
        if self.driver.is_none() {
            let why = self.waiting();
            self.set_online(false, why).await;
        }
        let mut poll_every = self.poll_every();
        let mut next_poll = Instant::now() + poll_every.unwrap_or(NEVER);
        let mut silence_at = Instant::now() + NEVER;
        self.answer_due = None;
        let mut pending_close: Option<Instant> = None;
        let mut window = RateWindow {
            start: Instant::now(),
            used: 0,
            dropped: 0,
        };
        let mut link_up = false;
        loop {
            let close_at = pending_close.unwrap_or(Instant::now() + NEVER);
            let answer_due = self.answer_due.unwrap_or(Instant::now() + NEVER);
            let wake = tokio::select! {
                event = self.link.events.recv() => Wake::Link(event),
                command = self.commands.recv() => Wake::Command(command),
                Some(swap) = self.swaps.recv() => Wake::Swap(swap),
                _ = sleep_until(next_poll), if poll_every.is_some() => Wake::Poll,
                _ = sleep_until(silence_at) => Wake::Silence,
                _ = sleep_until(answer_due), if self.answer_due.is_some() => Wake::NoAnswer,
                _ = sleep_until(close_at), if pending_close.is_some() => Wake::Close,
                _ = super::transport::stopped(&mut self.shutdown) => Wake::Stop,
            };
            match wake {
                Wake::Link(Some(LinkEvent::Data { bytes, ack })) => {
                    silence_at = self.silence_after(Instant::now());
                    self.answer_due = None;
                    self.on_bytes(bytes, &mut window).await;
                    if let Some(ack) = ack {
                        let _ = ack.send(());
                    }
                }
                Wake::Link(Some(LinkEvent::Up(link))) => {
                    link_up = true;
                    tracing::info!(lane = %self.lane, device = %self.device, "{link}");
                    silence_at = self.silence_after(Instant::now());
                    next_poll = Instant::now();
                    self.link_open(&link).await;
                }
                Wake::Link(Some(LinkEvent::Down(reason))) => {
                    link_up = false;
                    silence_at = Instant::now() + NEVER;
                    self.answer_due = None;
                    self.set_online(false, reason).await;
                }
                Wake::Command(Some(c)) => self.on_command(c, link_up, &mut pending_close).await,
                Wake::Swap(request) => {
                    let before = self.sends();
                    self.on_swap(request).await;
                    // The new driver may declare otherwise (or be the first one).
                    if self.sends() != before {
                        silence_at = self.silence_after(Instant::now());
                        if link_up {
                            let link = self.stats().transport.clone();
                            self.link_open(&link).await;
                        }
                    }
                    poll_every = self.poll_every();
                    next_poll = Instant::now() + poll_every.unwrap_or(NEVER);
                }
                Wake::Poll => {
                    next_poll = Instant::now() + poll_every.unwrap_or(NEVER);
                    if link_up && let Some(driver) = self.driver.as_mut() {
                        match driver.poll() {
                            Ok(Some(bytes)) => {
                                self.send(bytes, &"poll").await;
                            }
                            Ok(None) => {}
                            Err(e) => self.fault(e.to_string()).await,
                        }
                    }
                }
                Wake::Silence => {
                    silence_at = Instant::now() + NEVER;
                    let secs = self.config.silence_timeout.as_secs_f64();
                    self.set_online(false, format!("silent for {secs} s")).await;
                }
                Wake::NoAnswer => {
                    self.answer_due = None;
                    let secs = self.config.silence_timeout.as_secs_f64();
                    self.set_online(
                        false,
                        format!("no answer within {secs} s to what was sent (a command or a poll)"),
                    )
                    .await;
                }
                Wake::Close => {
                    pending_close = None;
                    let close = DeviceCommand {
                        command: Command::Close,
                        receipt: None,
                    };
                    self.on_command(close, link_up, &mut None).await;
                }
                Wake::Link(None) | Wake::Command(None) | Wake::Stop => break,
            }
        }
    }
}
