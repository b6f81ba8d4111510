//! Alarms the daemon itself raises (devices, the bus, hot swap, bad input): each is written to
//! the store, as an alarm with its state (where a station that was offline finds it) and to
//! the outbox, in one transaction, so it reaches the alarm topic once the broker is back, and
//! never waits for the broker. A device's alarms are thinned (a device faulting on every frame
//! would flood the store): at most one per code, lane and device per [`QUIET`], the next one
//! saying how many were held back and counting them on the stored alarm. Every other alarm is
//! kept.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::bus::{AlarmMessage, Outbox};
use crate::device::now_ms;
use crate::store::{Confirm, StoreError, Writer};

/// The shortest time between two alarms with the same code, lane and device.
pub const QUIET: Duration = Duration::from_secs(10);

/// What makes two alarms alike: code, lane, device.
type AlarmKey = (String, Option<String>, Option<String>);

/// Raises alarms through the outbox.
pub struct Alarms {
    writer: Writer,
    outbox: Outbox,
    prefix: String,
    next: u64,
    /// When each kind of alarm last went out, and how many were held back since.
    last: HashMap<AlarmKey, (Instant, u64)>,
}

impl Alarms {
    /// Alarms with envelope ids `{prefix}-alarm-N`.
    pub fn new(writer: Writer, outbox: Outbox, prefix: String) -> Self {
        Alarms {
            writer,
            outbox,
            prefix,
            next: 0,
            last: HashMap::new(),
        }
    }

    /// Queues `alarm` (unless one like it went out within [`QUIET`]); returns at once.
    pub fn raise(&mut self, mut alarm: AlarmMessage) {
        let key = (alarm.code.clone(), alarm.lane.clone(), alarm.device.clone());
        let now = Instant::now();
        let thinned = alarm.device.is_some();
        // Raised this many times since the last one stored: the held-back repeats count.
        let mut times = 1;
        match self.last.get_mut(&key).filter(|_| thinned) {
            Some((at, held)) if now.duration_since(*at) < QUIET => {
                *held += 1;
                return;
            }
            Some((at, held)) => {
                times += *held;
                if *held > 0 {
                    alarm.message = format!("{} ({held} more like it held back)", alarm.message);
                }
                *at = now;
                *held = 0;
            }
            None if !thinned => {}
            None => {
                if self.last.len() > 10_000 {
                    self.last
                        .retain(|_, (at, _)| now.duration_since(*at) < QUIET);
                }
                self.last.insert(key, (now, 0));
            }
        }
        tracing::warn!(code = %alarm.code, lane = ?alarm.lane, device = ?alarm.device, "{}", alarm.message);
        self.next += 1;
        let at = now_ms();
        let id = format!("{}-alarm-{}", self.prefix, self.next);
        let stored = alarm.to_record();
        let message = self.outbox.message_confirmed_by(
            self.outbox.topics().alarm(),
            id,
            at,
            alarm,
            Confirm::Broker,
        );
        let (writer, outbox) = (self.writer.clone(), self.outbox.clone());
        tokio::spawn(async move {
            let written: Result<(), StoreError> = writer
                .write(move |tx| {
                    tx.outbox_push(&message)?;
                    tx.raise_alarm(&message.message_id, &stored, at, times)
                        .map(drop)
                })
                .await;
            match written {
                Ok(()) => outbox.wake(),
                Err(e) => tracing::error!("alarm not recorded: {e}"),
            }
        });
    }
}
