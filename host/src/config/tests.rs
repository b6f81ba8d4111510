//! Site manifest parsing: a full manifest, and each mistake with its exact message.

use super::*;

const GOOD: &str = r#"
[site]
id = "gz-huangpu-01"
office = "5201"
ruleset = "guangdong-pilot"

[bus]
broker = "embedded"

[[lane]]
id = "L01"
category = "A"
direction = "import"
cargo = "container"
station = "HP01"
devices = [
  { id = "scale", driver = "xk3190", transport = { serial = "/dev/ttyS1", baud = 9600 }, config = { stable-count = 5 } },
  { id = "toledo", driver = "toledo-continuous", transport = { serial = "/dev/ttyS3", baud = 4800, data-bits = 7, parity = "even" } },
  { id = "plate", driver = "hikvision-anpr", transport = { http-listen = "0.0.0.0:8081", path = "/anpr" } },
  { id = "rfid", driver = "chafon-uhf18", transport = { tcp = "192.168.10.21:6000" }, silence-timeout-ms = 3000 },
]

[[lane]]
id = "L02"
category = "B"
direction = "export"
"#;

fn parse(text: &str) -> Result<SiteManifest, String> {
    SiteManifest::parse(Path::new("site/site.toml"), text).map_err(|e| e.to_string())
}

#[test]
fn a_full_manifest() {
    let m = parse(GOOD).unwrap();
    assert_eq!(m.site.id, "gz-huangpu-01");
    assert_eq!(m.site.plugins, Path::new("site/plugins"));
    assert_eq!(m.store.path, Path::new("site/var/kakou.redb"));
    assert_eq!(m.lanes.len(), 2);
    let l1 = m.lane("L01").unwrap();
    assert_eq!(
        (l1.category, l1.direction, l1.cargo),
        (LaneCategory::A, Direction::Import, CargoKind::Container)
    );
    assert_eq!(
        l1.devices[0].settings,
        vec![Setting::new("stable-count", "5")]
    );
    assert_eq!(
        l1.devices[1].transport.describe(),
        "serial /dev/ttyS3 4800 7E1"
    );
    assert_eq!(
        l1.devices[2].transport.describe(),
        "http-listen 0.0.0.0:8081/anpr"
    );
    assert_eq!(l1.devices[3].silence_timeout, Duration::from_millis(3000));
    assert_eq!(m.lane("L02").unwrap().cargo, CargoKind::Any);
}

#[test]
fn mistakes_name_file_line_and_what_was_expected() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "office = \"5201\"\n",
            "",
            "site/site.toml:2:1: missing field `office`",
        ),
        (
            "category = \"A\"",
            "category = \"D\"",
            "site/site.toml:12:12: lane category \"D\": expected \"A\", \"B\" or \"C\"",
        ),
        (
            "id = \"L02\"",
            "id = \"L01\"",
            "site/site.toml:24:6: lane id \"L01\" is used twice",
        ),
        (
            "id = \"L02\"",
            "id = \"L 2\"",
            "site/site.toml:24:6: lane id \"L 2\": expected 1 to 64 letters, digits, `-` or `_`",
        ),
        (
            "{ id = \"toledo\"",
            "{ id = \"scale\"",
            "site/site.toml:18:10: device id \"scale\" is used twice in lane L01",
        ),
        (
            "transport = { serial = \"/dev/ttyS1\", baud = 9600 }",
            "transport = { serial = \"/dev/ttyS1\", tcp = \"x:1\" }",
            "site/site.toml:17:50: device L01/scale: transport: expected exactly one of `serial`, `tcp`, `tcp-listen`, `udp`, `http-listen`; found serial, tcp",
        ),
        (
            "data-bits = 7",
            "data-bits = 9",
            "site/site.toml:18:62: device L01/toledo: transport: `data-bits` = 9: expected 5 to 8",
        ),
        (
            "http-listen = \"0.0.0.0:8081\"",
            "http-listen = \"everywhere\"",
            "site/site.toml:19:58: device L01/plate: transport: `http-listen` = \"everywhere\": expected an address such as \"0.0.0.0:5000\"",
        ),
        (
            "tcp = \"192.168.10.21:6000\"",
            "tcp = \"192.168.10.21:6000\", baud = 9600",
            "site/site.toml:20:55: device L01/rfid: transport: `baud`, `data-bits`, `parity`, `stop-bits` and `flow-control` are for `serial` transports",
        ),
        (
            "direction = \"export\"",
            "direction = \"out\"",
            "site/site.toml:26:13: unknown variant `out`, expected `import` or `export`",
        ),
        (
            "[bus]",
            "[buss]",
            "site/site.toml:7:2: unknown field `buss`, expected one of `site`, `bus`, `store`, `lane`",
        ),
    ];
    crate::diag::assert_edit_errors(GOOD, cases, parse);
}
