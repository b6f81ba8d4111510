//! Decode throughput of every driver: the same code natively and through the sandbox, fed
//! 4 KiB at a time as a transport delivers it.

#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop right there

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kakou_host::plugin::{LoadOptions, Runtime};
use kakou_host::sdk::model::ContainerPosition;
use kakou_host::sdk::{Driver, harness, wire};

/// What a transport hands a driver in one read.
const CHUNK: usize = 4096;

/// `frame(i)` repeated until the stream is at least one chunk long.
fn stream(frame: impl Fn(u32) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < CHUNK {
        out.extend(frame(i));
        i += 1;
    }
    out
}

fn bench<D: Driver>(c: &mut Criterion, rt: &Runtime, name: &str, input: &[u8]) {
    let plugin = rt
        .load_driver(
            &common::plugin(&format!("plugins/drivers/{name}")),
            &LoadOptions::development(),
        )
        .unwrap();
    let mut g = c.benchmark_group(format!("decode_{name}"));
    g.throughput(Throughput::Bytes(input.len() as u64));
    let mut native = harness::open::<D>(&[]).unwrap();
    g.bench_function("native", |b| {
        b.iter(|| black_box(native.feed(black_box(input))))
    });
    let mut sandboxed = plugin.open(&[]).unwrap();
    g.bench_function("sandbox", |b| {
        b.iter(|| black_box(sandboxed.feed(black_box(input)).unwrap()))
    });
    g.finish();
}

fn drivers(c: &mut Criterion) {
    let rt = Runtime::new(None).unwrap();
    let epc = hex::decode("E2000017221101441890ABCD").unwrap();
    let kg = |i: u32| f64::from(20_000 + (i % 500) * 10);
    bench::<kakou_driver_xk3190::Xk3190>(
        c,
        &rt,
        "xk3190",
        &stream(|i| wire::xk3190::tf0_frame(kg(i), 0)),
    );
    bench::<kakou_driver_yaohua_a12::YaohuaA12>(
        c,
        &rt,
        "yaohua-a12",
        &stream(|i| wire::yaohua::weight_line(kg(i) / 1000.0, 3, false)),
    );
    bench::<kakou_driver_toledo_continuous::ToledoContinuous>(
        c,
        &rt,
        "toledo-continuous",
        &stream(|i| {
            wire::toledo::continuous_frame(&wire::toledo::Output {
                weight: kg(i),
                ..Default::default()
            })
        }),
    );
    bench::<kakou_driver_mt_sics::MtSics>(
        c,
        &rt,
        "mt-sics",
        &stream(|i| wire::mt_sics::weight(kg(i), 0, "kg", true)),
    );
    bench::<kakou_driver_chafon_uhf18::ChafonUhf18>(
        c,
        &rt,
        "chafon-uhf18",
        &stream(|_| wire::chafon::inventory_reply(0, 0x01, &[&epc])),
    );
    bench::<kakou_driver_impinj_r2000::ImpinjR2000>(
        c,
        &rt,
        "impinj-r2000",
        &stream(|i| wire::impinj::tag_report(1, 1 + (i % 4) as u8, 0x3000, &epc, -60)),
    );
    bench::<kakou_driver_sm130::Sm130>(
        c,
        &rt,
        "sm130",
        &stream(|_| wire::sm130::tag_response(0x82, 0x02, &[0x04, 0xA2, 0x2B, 0x91])),
    );
    bench::<kakou_driver_rdm6300::Rdm6300>(
        c,
        &rt,
        "rdm6300",
        &stream(|i| wire::rdm6300::frame(wire::rdm6300::card_id(0x62, 0xE308_6C00 + i)).to_vec()),
    );
    bench::<kakou_driver_hikvision_anpr::HikvisionAnpr>(
        c,
        &rt,
        "hikvision-anpr",
        &stream(|_| {
            let e = wire::hikvision::AnprEvent::new(
                "粤B12345",
                "yellow",
                96,
                "2026-11-27T10:00:00+08:00",
            );
            wire::hikvision::anpr_request(&e, wire::hikvision::XmlEncoding::Gbk)
        }),
    );
    bench::<kakou_driver_container_ocr::ContainerOcr>(
        c,
        &rt,
        "container-ocr",
        &stream(|_| {
            wire::container_ocr::json_line(&wire::container_ocr::OcrEvent {
                lane: "L01".into(),
                time: "2026-11-27T10:00:00+08:00".into(),
                id: String::new(),
                containers: vec![wire::container_ocr::OcrContainer::new(
                    "CSQU3054383",
                    "22G1",
                    ContainerPosition::Single,
                    93,
                )],
            })
        }),
    );
    bench::<kakou_driver_modbus_barrier::ModbusBarrier>(
        c,
        &rt,
        "modbus-barrier",
        &stream(|i| wire::modbus::echo(&wire::modbus::write_single_coil(1, 0, i % 2 == 0))),
    );
    bench::<kakou_driver_lcus_relay::LcusRelay>(
        c,
        &rt,
        "lcus-relay",
        &stream(|i| wire::lcus::status_line(1, i % 2 == 0)),
    );
    bench::<kakou_driver_nmea0183::Nmea0183>(
        c,
        &rt,
        "nmea0183",
        &stream(|_| {
            b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n".to_vec()
        }),
    );
    bench::<kakou_driver_jt701::Jt701>(
        c,
        &rt,
        "jt701",
        &stream(|_| {
            b"(8000632862,P45,290322,132412,25.28217,S,57.54683,W,A,0,0,5,0,0000000000,0,0,9,0)"
                .to_vec()
        }),
    );
}

criterion_group!(benches, drivers);
criterion_main!(benches);
