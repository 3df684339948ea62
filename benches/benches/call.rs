//! Whole calls between two `UserAgentCore`s in memory: INVITE, 100, 180,
//! 200, ACK, BYE, 200, every message printed by the sender and parsed by the
//! receiver (`handle_bytes`), events drained, in synthetic time. Every
//! `BATCH` calls, synthetic time jumps past the transaction timers (40 s)
//! and the cores fire them, so all transactions end and memory stays flat;
//! that timer work is inside the measurement.
//!
//! `cargo bench -p sipact-benches --bench call`

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod duo;
use duo::Duo;

const BATCH: u64 = 256;
/// Calls held open in the second measurement.
const OPEN: usize = 10_000;

/// `iters` whole calls, firing every timer after each batch and at the
/// end (so every transaction of these calls has ended), timed.
fn calls(duo: &mut Duo, iters: u64) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        duo.call();
        if (i + 1) % BATCH == 0 {
            duo.advance(Duo::SETTLE);
        }
    }
    duo.advance(Duo::SETTLE);
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let mut duo = Duo::new();
    // Check the ladder once: 3 messages alice→bob (INVITE, ACK, BYE), 4
    // bob→alice (100, 180, 200, 200), both sides accepted and terminated,
    // nothing left afterwards.
    duo.call();
    duo.advance(Duo::SETTLE);
    let k = duo.counts;
    assert_eq!((k.a_to_b, k.b_to_a, k.a_accepted, k.b_accepted, k.terminated), (3, 4, 1, 1, 2), "{k:?}");
    assert!(duo.a.session_ids().is_empty() && duo.b.session_ids().is_empty());
    assert!(duo.a.transactions().is_some_and(|t| t.is_empty()) && duo.b.transactions().is_some_and(|t| t.is_empty()));

    let mut g = c.benchmark_group("call");
    g.throughput(Throughput::Elements(1));
    g.bench_function("invite_100_180_200_ack_bye_200", |bch| bch.iter_custom(|iters| calls(&mut duo, iters)));
    // The same calls while 10,000 others stay established, each core asked
    // for its next deadline after every message (as the dialog actor does):
    // what a load test holding calls open costs per new call.
    let mut held = Duo::new();
    held.open_dialogs(OPEN);
    held.poll_after_input = true;
    g.bench_function("with_10000_open_dialogs", |bch| bch.iter_custom(|iters| calls(&mut held, iters)));
    assert_eq!(held.a.session_ids().len(), OPEN);
    assert_eq!(held.b.session_ids().len(), OPEN);
    g.finish();
    assert!(duo.a.session_ids().is_empty() && duo.b.session_ids().is_empty());
    assert!(duo.a.transactions().is_some_and(|t| t.is_empty()) && duo.b.transactions().is_some_and(|t| t.is_empty()));
    let k = duo.counts;
    assert_eq!(k.a_to_b * 4, k.b_to_a * 3, "{k:?}");
    assert_eq!(k.terminated, 2 * k.a_accepted, "{k:?}");
}

criterion_group!(benches, bench);
criterion_main!(benches);
