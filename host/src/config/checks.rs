//! Checks that span more than one entry of a site manifest: a site whose lanes have no rule
//! set, two devices on one listening port or one serial port, a driver name that is not
//! installed.
//!
//! Each would otherwise show only while running, and then as a symptom far from its cause (a
//! lane that never decides, a device that never comes online, a port "already in use" in a
//! log); each problem names the file, the line, the lane and device, and what to write instead.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;

use super::{SiteManifest, TransportSpec};
use crate::diag::SourceError;

/// Where a device is in the manifest text.
#[derive(Debug, Clone)]
pub(super) struct Located {
    pub(super) lane: String,
    pub(super) device: String,
    /// Its `driver` value.
    pub(super) driver: Range<usize>,
    /// Its `transport` table.
    pub(super) transport: Range<usize>,
}

/// The manifest text and where things are in it.
pub(super) struct Spans<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
    /// Every device that was read, in file order.
    pub(super) located: &'a [Located],
    pub(super) gateway: Option<Range<usize>>,
    /// The site `id`.
    pub(super) site: Range<usize>,
    /// `[bus] listen`.
    pub(super) listen: Option<Range<usize>>,
}

impl Spans<'_> {
    fn error(&self, span: Range<usize>, message: String) -> SourceError {
        SourceError::at(self.path, self.text, Some(span), message)
    }

    fn line(&self, span: &Range<usize>) -> usize {
        crate::diag::line_col(self.text, span.start).0
    }

    fn device(&self, lane: &str, device: &str) -> Option<&Located> {
        self.located
            .iter()
            .find(|l| l.lane == lane && l.device == device)
    }
}

/// A site with lanes decides their passages with a rule set, or says it is only a gateway.
pub(super) fn ruleset(m: &SiteManifest, spans: &Spans<'_>) -> Vec<SourceError> {
    let lanes = m.lanes.len();
    match (&m.site.ruleset, m.site.gateway) {
        (None, false) if lanes > 0 => vec![spans.error(
            spans.site.clone(),
            format!(
                "site {:?} has {lanes} lane{} ({}) but no `ruleset`: no passage would ever be decided and no barrier lifted. Under [site], write `ruleset = \"cn-baseline\"` (a rule set in manifests/regions/, or a path ending in .toml), or `gateway = true` if this daemon only relays device readings and commands",
                m.site.id,
                if lanes == 1 { "" } else { "s" },
                m.lanes
                    .iter()
                    .map(|l| l.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )],
        (Some(r), true) => vec![spans.error(
            spans.gateway.clone().unwrap_or(spans.site.clone()),
            format!(
                "site {:?}: `gateway = true` says the lanes decide nothing, but `ruleset` = {r:?} says they do; keep one of the two",
                m.site.id
            ),
        )],
        _ => Vec::new(),
    }
}

/// What a device holds exclusively: a listening socket or a serial port.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Claim {
    /// A TCP listener (`tcp-listen`, `http-listen`, the embedded broker).
    Tcp(SocketAddr),
    /// A UDP socket.
    Udp(SocketAddr),
    /// A serial port.
    Serial(std::path::PathBuf),
}

impl Claim {
    fn of(t: &TransportSpec) -> Option<(Claim, String)> {
        match t {
            TransportSpec::TcpServer { bind } => {
                Some((Claim::Tcp(*bind), format!("`tcp-listen` {bind}")))
            }
            TransportSpec::HttpListen { bind, .. } => {
                Some((Claim::Tcp(*bind), format!("`http-listen` {bind}")))
            }
            TransportSpec::Udp { bind, .. } => Some((Claim::Udp(*bind), format!("`udp` {bind}"))),
            TransportSpec::Serial(s) => Some((
                Claim::Serial(s.path.clone()),
                format!("serial port {}", s.path.display()),
            )),
            TransportSpec::TcpClient { .. } => None,
        }
    }

    /// Whether two claims cannot both be held: the same serial port, or sockets of one
    /// protocol on one port whose addresses overlap (an unspecified address takes them all).
    /// Port 0 asks for any free port and never clashes.
    fn clashes(&self, other: &Claim) -> bool {
        let sockets = |a: &SocketAddr, b: &SocketAddr| {
            a.port() != 0
                && a.port() == b.port()
                && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
        };
        match (self, other) {
            (Claim::Tcp(a), Claim::Tcp(b)) | (Claim::Udp(a), Claim::Udp(b)) => sockets(a, b),
            (Claim::Serial(a), Claim::Serial(b)) => a == b,
            _ => false,
        }
    }
}

/// Two devices cannot listen on one port or open one serial port, nor a device listen where
/// the embedded broker does: the second would fail to bind or open, while running, and only
/// say so in the log.
pub(super) fn shared_links(m: &SiteManifest, spans: &Spans<'_>) -> Vec<SourceError> {
    let mut problems = Vec::new();
    // (owner, claim, shown, line)
    let mut held: Vec<(String, Claim, String, usize)> = Vec::new();
    if m.bus.broker == "embedded" {
        let line = spans.listen.as_ref().map_or(0, |s| spans.line(s));
        held.push((
            "the embedded broker".into(),
            Claim::Tcp(m.bus.listen),
            format!("[bus] `listen` {}", m.bus.listen),
            line,
        ));
    }
    for lane in &m.lanes {
        for dev in &lane.devices {
            let Some((claim, shown)) = Claim::of(&dev.transport) else {
                continue;
            };
            let Some(at) = spans.device(&lane.id, &dev.id) else {
                continue;
            };
            let owner = format!("device {}/{}", lane.id, dev.id);
            if let Some((first, _, first_shown, first_line)) =
                held.iter().find(|(_, c, _, _)| c.clashes(&claim))
            {
                let what = match claim {
                    Claim::Serial(_) => {
                        "a serial port is opened by one device only; give each device its own port (or, for devices sharing an RS-485 line, one device whose driver polls each address)"
                    }
                    _ => "two listeners cannot share a port; give one of them another port",
                };
                let line = if *first_line > 0 {
                    format!(" (line {first_line})")
                } else {
                    String::new()
                };
                problems.push(spans.error(
                    at.transport.clone(),
                    format!("{owner}: {shown} is also {first}'s {first_shown}{line}: {what}"),
                ));
            } else {
                held.push((owner, claim, shown, spans.line(&at.transport)));
            }
        }
    }
    problems
}

/// The driver folders installed under the site's plugins folder.
pub fn installed_drivers(m: &SiteManifest) -> BTreeSet<String> {
    let dir = m.site.plugins.join("drivers");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return BTreeSet::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join(crate::plugin::manifest::FILE_NAME).is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect()
}

/// Edit distance (insertions, deletions, substitutions) between two names.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The installed name closest to `name`, when it is close enough to be what was meant: at
/// most 3 edits, and fewer than half the name's length.
pub fn closest<'a>(name: &str, installed: impl IntoIterator<Item = &'a String>) -> Option<&'a str> {
    installed
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= 3 && *d * 2 < name.chars().count())
        .min()
        .map(|(_, c)| c.as_str())
}

/// A device's driver must be installed. While running, a device whose driver is missing waits
/// for it to be installed (docs/hot-swap.md), so `kakou run` refuses only a name close to an
/// installed one (a typo would wait for ever); `every` (`kakou check`) reports every one.
pub(super) fn drivers(m: &SiteManifest, spans: &Spans<'_>, every: bool) -> Vec<SourceError> {
    let installed = installed_drivers(m);
    let dir = m.site.plugins.join("drivers");
    let mut problems = Vec::new();
    for lane in &m.lanes {
        for dev in &lane.devices {
            if installed.contains(&dev.driver) {
                continue;
            }
            let Some(at) = spans.device(&lane.id, &dev.id) else {
                continue;
            };
            let message = match closest(&dev.driver, &installed) {
                Some(near) => format!(
                    "device {}/{}: driver `{}` is not installed in {}: did you mean `{near}`? (write `driver = \"{near}\"`)",
                    lane.id,
                    dev.id,
                    dev.driver,
                    dir.display()
                ),
                None if every => format!(
                    "device {}/{}: driver `{}` is not installed in {} (no {}/plugin.toml; installed: {}): install its package there, or name an installed driver",
                    lane.id,
                    dev.id,
                    dev.driver,
                    dir.display(),
                    dev.driver,
                    if installed.is_empty() {
                        "none".to_owned()
                    } else {
                        installed.iter().cloned().collect::<Vec<_>>().join(", ")
                    }
                ),
                None => continue,
            };
            problems.push(spans.error(at.driver.clone(), message));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("chafon-uhf18", "chafon-uhf18"), 0);
        assert_eq!(edit_distance("chafon-uhf", "chafon-uhf18"), 2);
        assert_eq!(edit_distance("xk3109", "xk3190"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn the_closest_name_only_when_close() {
        let installed: Vec<String> = ["xk3190", "yaohua-a12", "chafon-uhf18", "lcus-relay"]
            .map(String::from)
            .to_vec();
        assert_eq!(closest("chafon-uhf", &installed), Some("chafon-uhf18"));
        assert_eq!(closest("lcus_relay", &installed), Some("lcus-relay"));
        assert_eq!(closest("xk319", &installed), Some("xk3190"));
        assert_eq!(closest("acme-scale", &installed), None);
        assert_eq!(closest("xk", &installed), None, "too short to guess");
    }

    #[test]
    fn clashing_claims() {
        let tcp = |s: &str| Claim::Tcp(s.parse().unwrap());
        assert!(tcp("0.0.0.0:7003").clashes(&tcp("127.0.0.1:7003")));
        assert!(tcp("127.0.0.1:7003").clashes(&tcp("127.0.0.1:7003")));
        assert!(!tcp("127.0.0.1:7003").clashes(&tcp("127.0.0.2:7003")));
        assert!(!tcp("127.0.0.1:7003").clashes(&tcp("127.0.0.1:7004")));
        assert!(!tcp("127.0.0.1:0").clashes(&tcp("127.0.0.1:0")));
        assert!(!tcp("0.0.0.0:7003").clashes(&Claim::Udp("0.0.0.0:7003".parse().unwrap())));
        let tty = |s: &str| Claim::Serial(s.into());
        assert!(tty("/dev/ttyS1").clashes(&tty("/dev/ttyS1")));
        assert!(!tty("/dev/ttyS1").clashes(&tty("/dev/ttyS2")));
    }
}
