//! The topic scheme. Every topic is rooted at `kakou/{site}/`; docs/bus.md shows each with an
//! example payload.

/// Topic builder for one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    site: String,
    root: String,
}

impl Topics {
    /// Topics of `site`.
    pub fn new(site: &str) -> Self {
        Topics {
            site: site.to_owned(),
            root: format!("kakou/{site}"),
        }
    }

    /// The site id.
    pub fn site(&self) -> &str {
        &self.site
    }

    /// `kakou/{site}`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// A device's readings: `kakou/{site}/lane/{lane}/reading/{device}`.
    pub fn reading(&self, lane: &str, device: &str) -> String {
        format!("{}/lane/{lane}/reading/{device}", self.root)
    }

    /// A device's status (retained): `kakou/{site}/lane/{lane}/device/{device}/status`.
    pub fn device_status(&self, lane: &str, device: &str) -> String {
        format!("{}/lane/{lane}/device/{device}/status", self.root)
    }

    /// Commands to a device: `kakou/{site}/lane/{lane}/device/{device}/command`.
    pub fn device_command(&self, lane: &str, device: &str) -> String {
        format!("{}/lane/{lane}/device/{device}/command", self.root)
    }

    /// Decided passages: `kakou/{site}/lane/{lane}/passage`.
    pub fn passage(&self, lane: &str) -> String {
        format!("{}/lane/{lane}/passage", self.root)
    }

    /// Operator input for a lane: `kakou/{site}/lane/{lane}/manual`.
    pub fn manual(&self, lane: &str) -> String {
        format!("{}/lane/{lane}/manual", self.root)
    }

    /// Operators' acknowledgements of stored alarms: `kakou/{site}/alarm-ack`.
    pub fn alarm_ack(&self) -> String {
        format!("{}/alarm-ack", self.root)
    }

    /// Alarms: `kakou/{site}/alarm`.
    pub fn alarm(&self) -> String {
        format!("{}/alarm", self.root)
    }

    /// Control orders: `kakou/{site}/control-order`.
    pub fn control_order(&self) -> String {
        format!("{}/control-order", self.root)
    }

    /// Parameter library changes: `kakou/{site}/parameter`.
    pub fn parameter(&self) -> String {
        format!("{}/parameter", self.root)
    }

    /// Queries and statistics, answered on the requester's reply topic: `kakou/{site}/query`.
    pub fn query(&self) -> String {
        format!("{}/query", self.root)
    }

    /// Answers to operators' requests: `kakou/{site}/reply/{client}`.
    pub fn reply(&self, client: &str) -> String {
        format!("{}/reply/{client}", self.root)
    }

    /// Platform data feeds: `kakou/{site}/platform/{kind}`.
    pub fn platform(&self, kind: &str) -> String {
        format!("{}/platform/{kind}", self.root)
    }

    /// Rejections of bad input, for the sender to see: `kakou/{site}/rejected`.
    pub fn rejected(&self) -> String {
        format!("{}/rejected", self.root)
    }

    /// The daemon's own status (retained; the broker publishes the last will when the daemon
    /// disappears): `kakou/{site}/daemon/status`.
    pub fn daemon_status(&self) -> String {
        format!("{}/daemon/status", self.root)
    }

    /// Receivers' confirmations of outbox messages: `kakou/{site}/outbox/ack`.
    pub fn outbox_ack(&self) -> String {
        format!("{}/outbox/ack", self.root)
    }

    /// Everything of the site: `kakou/{site}/#`.
    pub fn all(&self) -> String {
        format!("{}/#", self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme() {
        let t = Topics::new("gz-huangpu-01");
        assert_eq!(
            t.reading("L01", "scale"),
            "kakou/gz-huangpu-01/lane/L01/reading/scale"
        );
        assert_eq!(
            t.device_status("L01", "scale"),
            "kakou/gz-huangpu-01/lane/L01/device/scale/status"
        );
        assert_eq!(t.passage("L02"), "kakou/gz-huangpu-01/lane/L02/passage");
        assert_eq!(t.daemon_status(), "kakou/gz-huangpu-01/daemon/status");
        assert_eq!(t.all(), "kakou/gz-huangpu-01/#");
    }
}
