//! Parse and print benchmarks: sipact against rsip 0.4 and ezk-sip-types 0.6.
//!
//! `cargo bench -p sipact-benches --bench parser`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod common;

fn parse(c: &mut Criterion) {
    for sample in common::samples() {
        let mut group = c.benchmark_group(format!("parse/{}", sample.id));
        group.throughput(Throughput::Bytes(sample.bytes.len() as u64));
        for (name, f) in common::PARSERS {
            // Every parser must accept every sample before it is timed.
            f(&sample.bytes);
            group.bench_function(name, |b| b.iter(|| f(black_box(&sample.bytes))));
        }
        group.finish();
    }
}

fn print(c: &mut Criterion) {
    let mut group = c.benchmark_group("print/200ok");
    group.throughput(Throughput::Bytes(common::OK_200.len() as u64));

    let msg = sipact_message::SipMessage::parse(common::OK_200.to_vec()).expect("sipact parse 200");
    let sipact_message::SipMessage::Response(resp) = msg else { panic!("not a response") };
    let mut out = Vec::with_capacity(1024);
    group.bench_function("sipact", |b| {
        b.iter(|| {
            out.clear();
            black_box(&resp).write(&mut out);
            black_box(&out);
        })
    });

    let rsip_msg = rsip::SipMessage::try_from(common::OK_200).expect("rsip parse 200");
    group.bench_function("rsip", |b| b.iter(|| black_box(black_box(&rsip_msg).to_string())));
    group.finish();
}

criterion_group!(benches, parse, print);
criterion_main!(benches);
