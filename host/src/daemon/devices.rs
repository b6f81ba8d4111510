//! Device events: readings to their lane first, then telemetry on the bus (best effort), and
//! faults as alarms. Lane events: replies to operators (best effort; the operator's command
//! line asks again) and nothing else: passages and the lanes' alarms left through the outbox
//! with the record they belong to.

use kakou_plugin_sdk::model::Severity;

use super::{Daemon, DeviceStatusMessage, ReadingMessage};
use crate::bus::QoS;
use crate::bus::payload::Envelope;
use crate::device::{DeviceEvent, DeviceEventKind};
use crate::lane::{LaneEvent, LaneInput};

/// Routes one device event.
pub(super) async fn on_event(d: &mut Daemon, e: DeviceEvent) {
    let (lane, device) = (e.lane.to_string(), e.device.to_string());
    match e.kind {
        DeviceEventKind::Reading { reading } => {
            if let Some(l) = d.lanes.get(&lane) {
                let input = LaneInput::Reading {
                    device: device.clone(),
                    reading: reading.clone(),
                    at_ms: e.at_ms,
                };
                // The lane's own queue: it is never held up by the bus.
                let _ = l.inputs.send(input).await;
            }
            // Readings are a stream (QoS 0): the next one supersedes a lost one.
            let body = ReadingMessage {
                lane: lane.clone(),
                device: device.clone(),
                reading,
            };
            let bytes = Envelope::new(d.ids.next(), e.at_ms, body).to_bytes();
            let topic = d.topics.reading(&lane, &device);
            if let Err(err) = d.bus.try_publish(&topic, bytes, QoS::AtMostOnce, false) {
                tracing::trace!("{err}");
            }
        }
        DeviceEventKind::Online { link } => status(d, &lane, &device, e.at_ms, "online", link),
        DeviceEventKind::Offline { reason } => {
            status(d, &lane, &device, e.at_ms, "offline", reason)
        }
        DeviceEventKind::Fault { error } => d.alarm(
            "device.fault",
            Some(&lane),
            Some(&device),
            Severity::Warning,
            error,
        ),
        DeviceEventKind::Rejected { .. } => {}
    }
}

/// Device status is state: retained, so a subscriber that comes later sees it.
fn status(d: &mut Daemon, lane: &str, device: &str, at_ms: i64, state: &str, reason: String) {
    let body = DeviceStatusMessage {
        lane: lane.to_owned(),
        device: device.to_owned(),
        state: state.into(),
        reason,
    };
    let topic = d.topics.device_status(lane, device);
    d.telemetry(&topic, at_ms, body, true);
}

/// Routes one lane event.
pub(super) fn on_lane_event(d: &mut Daemon, e: LaneEvent) {
    if let LaneEvent::Reply { topic, reply } = e {
        d.telemetry(&topic, crate::device::now_ms(), reply, false);
    }
}
