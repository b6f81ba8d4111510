//! Site manifest parsing: a full manifest, and each mistake with its exact message.

use super::*;
use std::path::Path;

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

/// The checks that span the manifest: each refused with where, what and what to write.
#[test]
fn cross_checks_name_the_device_and_what_to_write() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "tcp = \"192.168.10.21:6000\"",
            "tcp = \"192.168.10.21\"",
            "site/site.toml:20:55: device L01/rfid: transport: `tcp` = \"192.168.10.21\" has no port: write the device's host and port, such as \"192.168.10.21:6000\" (IPv6: \"[fd00::21]:6000\")",
        ),
        (
            "tcp = \"192.168.10.21:6000\"",
            "tcp = \"reader:0\"",
            "site/site.toml:20:55: device L01/rfid: transport: `tcp` = \"reader:0\": port \"0\" is not a port number 1 to 65535; write the device's host and port, such as \"192.168.10.21:6000\" (IPv6: \"[fd00::21]:6000\")",
        ),
        (
            "broker = \"embedded\"",
            "listen = \"127.0.0.1:1884\"",
            "site/site.toml:8:10: [bus] sets `listen` = \"127.0.0.1:1884\" but no `broker`: `listen` is where the embedded broker listens; write `broker = \"embedded\"` beside it (or `broker = \"mqtt://host:1883\"` without `listen` to join an external broker)",
        ),
        (
            "broker = \"embedded\"",
            "broker = \"mqtt://10.0.0.5:1883\"\nlisten = \"127.0.0.1:1884\"",
            "site/site.toml:9:10: bus `listen` = \"127.0.0.1:1884\" with the external broker \"mqtt://10.0.0.5:1883\": the daemon starts no broker of its own then, so nothing would listen there; remove `listen` (or write `broker = \"embedded\"`)",
        ),
        (
            "ruleset = \"guangdong-pilot\"\n",
            "",
            "site/site.toml:3:6: site \"gz-huangpu-01\" has 2 lanes (L01, L02) but no `ruleset`: no passage would ever be decided and no barrier lifted. Under [site], write `ruleset = \"cn-baseline\"` (a rule set in manifests/regions/, or a path ending in .toml), or `gateway = true` if this daemon only relays device readings and commands",
        ),
        (
            "ruleset = \"guangdong-pilot\"\n",
            "ruleset = \"guangdong-pilot\"\ngateway = true\n",
            "site/site.toml:6:11: site \"gz-huangpu-01\": `gateway = true` says the lanes decide nothing, but `ruleset` = \"guangdong-pilot\" says they do; keep one of the two",
        ),
        (
            "serial = \"/dev/ttyS3\"",
            "serial = \"/dev/ttyS1\"",
            "site/site.toml:18:62: device L01/toledo: serial port /dev/ttyS1 is also device L01/scale's serial port /dev/ttyS1 (line 17): a serial port is opened by one device only; give each device its own port (or, for devices sharing an RS-485 line, one device whose driver polls each address)",
        ),
        (
            "tcp = \"192.168.10.21:6000\"",
            "tcp-listen = \"127.0.0.1:8081\"",
            "site/site.toml:20:55: device L01/rfid: `tcp-listen` 127.0.0.1:8081 is also device L01/plate's `http-listen` 0.0.0.0:8081 (line 19): two listeners cannot share a port; give one of them another port",
        ),
        (
            "tcp = \"192.168.10.21:6000\"",
            "tcp-listen = \"0.0.0.0:1883\"",
            "site/site.toml:20:55: device L01/rfid: `tcp-listen` 0.0.0.0:1883 is also the embedded broker's [bus] `listen` 127.0.0.1:1883: two listeners cannot share a port; give one of them another port",
        ),
    ];
    crate::diag::assert_edit_errors(GOOD, cases, parse);
    // A UDP socket and a TCP listener on one port do not clash, nor listeners on another port.
    let both = GOOD.replace("tcp = \"192.168.10.21:6000\"", "udp = \"0.0.0.0:8081\"");
    parse(&both).unwrap();
    // A site without lanes needs no rule set; a gateway site says it decides nothing.
    let gateway = GOOD.replace("ruleset = \"guangdong-pilot\"", "gateway = true");
    let m = parse(&gateway).unwrap();
    assert!(m.site.gateway && m.site.ruleset.is_none());
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = GOOD
        .replace("ruleset = \"guangdong-pilot\"\n", "")
        .replace("serial = \"/dev/ttyS3\"", "serial = \"/dev/ttyS1\"")
        .replace("tcp = \"192.168.10.21:6000\"", "tcp = \"192.168.10.21\"");
    let e = SiteManifest::parse(Path::new("site/site.toml"), &text).unwrap_err();
    let at: Vec<(usize, &str)> = e
        .problems
        .iter()
        .map(|p| (p.line, p.message.split(':').next().unwrap_or_default()))
        .collect();
    assert_eq!(
        at,
        [
            (
                3,
                "site \"gz-huangpu-01\" has 2 lanes (L01, L02) but no `ruleset`"
            ),
            (17, "device L01/toledo"),
            (19, "device L01/rfid"),
        ]
    );
    assert_eq!(e.to_string().lines().count(), 3, "{e}");
}

#[test]
fn a_driver_that_is_not_installed() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "chafon-uhf18",
        "xk3190",
        "hikvision-anpr",
        "toledo-continuous",
    ] {
        let d = dir.path().join("plugins/drivers").join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("plugin.toml"), "").unwrap();
    }
    let path = dir.path().join("site.toml");
    let shown = dir.path().join("plugins/drivers");
    let shown = shown.display();

    // A typo is refused by `kakou run`, with the name it was probably meant to be.
    std::fs::write(
        &path,
        GOOD.replace("driver = \"chafon-uhf18\"", "driver = \"chafon-uhf\""),
    )
    .unwrap();
    let e = SiteManifest::load(&path).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}:20:27: device L01/rfid: driver `chafon-uhf` is not installed in {shown}: did you mean `chafon-uhf18`? (write `driver = \"chafon-uhf18\"`)",
            path.display()
        )
    );

    // A driver not like any installed one may be installed later: the daemon's device waits
    // for it (docs/hot-swap.md), so `kakou run` takes the manifest; `kakou check` does not.
    std::fs::write(
        &path,
        GOOD.replace("driver = \"chafon-uhf18\"", "driver = \"acme-rfid\""),
    )
    .unwrap();
    SiteManifest::load(&path).unwrap();
    let (_, problems) = SiteManifest::check(&path).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].message,
        format!(
            "device L01/rfid: driver `acme-rfid` is not installed in {shown} (no acme-rfid/plugin.toml; installed: chafon-uhf18, hikvision-anpr, toledo-continuous, xk3190): install its package there, or name an installed driver"
        )
    );
    std::fs::write(&path, GOOD).unwrap();
    assert!(SiteManifest::check(&path).unwrap().1.is_empty());
}
