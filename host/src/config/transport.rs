//! How a device's bytes arrive: serial line, TCP (either side), UDP or HTTP push.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// A device transport, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportSpec {
    /// A serial port (or a pseudo-terminal).
    Serial(SerialSpec),
    /// The device is a TCP server; connect to it (and reconnect).
    TcpClient {
        /// `host:port`.
        addr: String,
    },
    /// The device connects to us.
    TcpServer {
        /// Address to listen on.
        bind: SocketAddr,
    },
    /// Datagrams.
    Udp {
        /// Address to bind.
        bind: SocketAddr,
        /// Where commands go (default: the last sender).
        peer: Option<SocketAddr>,
    },
    /// The device POSTs events (cameras).
    HttpListen {
        /// Address to listen on.
        bind: SocketAddr,
        /// Path the device posts to (any path when absent).
        path: Option<String>,
    },
}

/// Serial line settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialSpec {
    /// Device path, e.g. `/dev/ttyS1`.
    pub path: PathBuf,
    /// Baud rate.
    pub baud: u32,
    /// 5 to 8.
    pub data_bits: u8,
    /// Parity.
    pub parity: Parity,
    /// 1 or 2.
    pub stop_bits: u8,
    /// Flow control.
    pub flow_control: FlowControl,
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Parity {
    /// None.
    None,
    /// Odd.
    Odd,
    /// Even (Toledo scales: 7E1).
    Even,
}

/// Serial flow control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowControl {
    /// None.
    None,
    /// XON/XOFF.
    Software,
    /// RTS/CTS.
    Hardware,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawTransport {
    serial: Option<PathBuf>,
    baud: Option<u32>,
    data_bits: Option<u8>,
    parity: Option<Parity>,
    stop_bits: Option<u8>,
    flow_control: Option<FlowControl>,
    tcp: Option<String>,
    tcp_listen: Option<String>,
    udp: Option<String>,
    peer: Option<String>,
    http_listen: Option<String>,
    path: Option<String>,
}

fn socket(text: &str, key: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("`{key}` = {text:?}: expected an address such as \"0.0.0.0:5000\""))
}

/// A `tcp` address must name the device's host and port: without a port there is nothing to
/// connect to, and the mistake would only show as a device that never comes online.
fn check_host_port(addr: &str) -> Result<(), String> {
    let example = "such as \"192.168.10.21:6000\" (IPv6: \"[fd00::21]:6000\")";
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(format!(
            "`tcp` = {addr:?} has no port: write the device's host and port, {example}"
        ));
    };
    // `fd00::21` is an IPv6 address without brackets, hence without a port.
    if host.is_empty() || (host.contains(':') && !(host.starts_with('[') && host.ends_with(']'))) {
        return Err(format!(
            "`tcp` = {addr:?}: expected the device's host and port, {example}"
        ));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!(
            "`tcp` = {addr:?}: port {port:?} is not a port number 1 to 65535; write the device's host and port, {example}"
        )),
    }
}

impl TransportSpec {
    pub(super) fn from_raw(r: &RawTransport) -> Result<Self, String> {
        let kinds = [
            ("serial", r.serial.is_some()),
            ("tcp", r.tcp.is_some()),
            ("tcp-listen", r.tcp_listen.is_some()),
            ("udp", r.udp.is_some()),
            ("http-listen", r.http_listen.is_some()),
        ];
        let chosen: Vec<&str> = kinds
            .iter()
            .filter(|(_, set)| *set)
            .map(|(k, _)| *k)
            .collect();
        if chosen.len() != 1 {
            return Err(format!(
                "expected exactly one of `serial`, `tcp`, `tcp-listen`, `udp`, `http-listen`; found {}",
                if chosen.is_empty() {
                    "none".to_owned()
                } else {
                    chosen.join(", ")
                }
            ));
        }
        let serial_only = r.baud.is_some()
            || r.data_bits.is_some()
            || r.parity.is_some()
            || r.stop_bits.is_some()
            || r.flow_control.is_some();
        if serial_only && r.serial.is_none() {
            return Err("`baud`, `data-bits`, `parity`, `stop-bits` and `flow-control` are for `serial` transports".into());
        }
        if r.peer.is_some() && r.udp.is_none() {
            return Err("`peer` is for `udp` transports".into());
        }
        if r.path.is_some() && r.http_listen.is_none() {
            return Err("`path` is for `http-listen` transports".into());
        }
        Ok(match chosen[0] {
            "serial" => {
                let data_bits = r.data_bits.unwrap_or(8);
                if !(5..=8).contains(&data_bits) {
                    return Err(format!("`data-bits` = {data_bits}: expected 5 to 8"));
                }
                let stop_bits = r.stop_bits.unwrap_or(1);
                if !(1..=2).contains(&stop_bits) {
                    return Err(format!("`stop-bits` = {stop_bits}: expected 1 or 2"));
                }
                let baud = r.baud.unwrap_or(9600);
                if baud == 0 {
                    return Err("`baud` = 0: expected a rate such as 9600".into());
                }
                TransportSpec::Serial(SerialSpec {
                    path: r.serial.clone().unwrap_or_default(),
                    baud,
                    data_bits,
                    parity: r.parity.unwrap_or(Parity::None),
                    stop_bits,
                    flow_control: r.flow_control.unwrap_or(FlowControl::None),
                })
            }
            "tcp" => {
                let addr = r.tcp.clone().unwrap_or_default();
                check_host_port(&addr)?;
                TransportSpec::TcpClient { addr }
            }
            "tcp-listen" => TransportSpec::TcpServer {
                bind: socket(r.tcp_listen.as_deref().unwrap_or_default(), "tcp-listen")?,
            },
            "udp" => TransportSpec::Udp {
                bind: socket(r.udp.as_deref().unwrap_or_default(), "udp")?,
                peer: r.peer.as_deref().map(|p| socket(p, "peer")).transpose()?,
            },
            _ => TransportSpec::HttpListen {
                bind: socket(r.http_listen.as_deref().unwrap_or_default(), "http-listen")?,
                path: r.path.clone(),
            },
        })
    }

    /// A short description for logs: `serial /dev/ttyS1 9600 8N1`.
    pub fn describe(&self) -> String {
        match self {
            TransportSpec::Serial(s) => {
                let parity = match s.parity {
                    Parity::None => 'N',
                    Parity::Odd => 'O',
                    Parity::Even => 'E',
                };
                format!(
                    "serial {} {} {}{}{}",
                    s.path.display(),
                    s.baud,
                    s.data_bits,
                    parity,
                    s.stop_bits
                )
            }
            TransportSpec::TcpClient { addr } => format!("tcp {addr}"),
            TransportSpec::TcpServer { bind } => format!("tcp-listen {bind}"),
            TransportSpec::Udp { bind, .. } => format!("udp {bind}"),
            TransportSpec::HttpListen { bind, path } => {
                format!("http-listen {bind}{}", path.as_deref().unwrap_or(""))
            }
        }
    }
}
