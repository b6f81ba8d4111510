//! Serial lines (RS-232/485 adapters, and pseudo-terminals in tests and simulators).

use tokio_serial::SerialPortBuilderExt;

use super::{Backoff, Ends, LinkEvent, pump};
use crate::config::{FlowControl, Parity, SerialSpec};

fn builder(s: &SerialSpec) -> tokio_serial::SerialPortBuilder {
    let data_bits = match s.data_bits {
        5 => tokio_serial::DataBits::Five,
        6 => tokio_serial::DataBits::Six,
        7 => tokio_serial::DataBits::Seven,
        _ => tokio_serial::DataBits::Eight,
    };
    let parity = match s.parity {
        Parity::None => tokio_serial::Parity::None,
        Parity::Odd => tokio_serial::Parity::Odd,
        Parity::Even => tokio_serial::Parity::Even,
    };
    let stop_bits = if s.stop_bits == 2 {
        tokio_serial::StopBits::Two
    } else {
        tokio_serial::StopBits::One
    };
    let flow = match s.flow_control {
        FlowControl::None => tokio_serial::FlowControl::None,
        FlowControl::Software => tokio_serial::FlowControl::Software,
        FlowControl::Hardware => tokio_serial::FlowControl::Hardware,
    };
    tokio_serial::new(s.path.to_string_lossy(), s.baud)
        .data_bits(data_bits)
        .parity(parity)
        .stop_bits(stop_bits)
        .flow_control(flow)
}

pub(super) async fn run(spec: SerialSpec, mut ends: Ends) {
    let mut backoff = Backoff::new();
    let mut last_error = String::new();
    while !ends.stopping() {
        match builder(&spec).open_native_async() {
            Ok(port) => {
                backoff.reset();
                last_error.clear();
                let up = format!("{} open", spec.path.display());
                if !ends.report(LinkEvent::Up(up)).await {
                    return;
                }
                match pump(port, &mut ends).await {
                    Some(reason) => {
                        if !ends.report(LinkEvent::Down(reason)).await {
                            return;
                        }
                    }
                    None => return,
                }
            }
            Err(e) => {
                let reason = format!("cannot open {}: {e}", spec.path.display());
                // Say it once per outage, not on every retry.
                if reason != last_error {
                    tracing::warn!(device = %ends.name, "{reason}");
                    last_error = reason;
                }
            }
        }
        if !backoff.wait(&mut ends.shutdown).await {
            return;
        }
    }
}
