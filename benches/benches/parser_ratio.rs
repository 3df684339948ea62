//! The parser comparison of `parser`, measured interleaved: on a shared VM
//! the speed of the machine drifts over seconds, and criterion measures
//! each parser in its own few-second window, so its ratios move by 2x from
//! run to run. Here every round times a short batch of each parser back to
//! back (order rotated per round), so both see the same machine; the
//! result is the median over rounds of the per-round time ratio.
//!
//! `cargo bench -p sipact-benches --bench parser_ratio` (optional
//! arguments: rounds, batch size).

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn main() {
    // `cargo bench` passes `--bench`; numbers are ours.
    let nums: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let rounds = nums.first().copied().unwrap_or(301);
    let batch = nums.get(1).copied().unwrap_or(2000);
    println!("rounds {rounds}, batch {batch} parses per parser per round; median over rounds\n");
    println!("| message | sipact µs | rsip µs | ezk µs | rsip / sipact | ezk / sipact | rsip / sipact (p10-p90) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for sample in common::samples() {
        // Warm up each parser (caches, the header-vector pool).
        for (_, f) in common::PARSERS {
            for _ in 0..batch {
                f(black_box(&sample.bytes));
            }
        }
        let mut per: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        let mut ratio: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        for round in 0..rounds {
            let mut t = [0f64; 3];
            for k in 0..3 {
                let i = (round + k) % 3;
                let f = common::PARSERS[i].1;
                let start = Instant::now();
                for _ in 0..batch {
                    f(black_box(&sample.bytes));
                }
                t[i] = start.elapsed().as_secs_f64() * 1e6 / batch as f64;
            }
            for i in 0..3 {
                per[i].push(t[i]);
                ratio[i].push(t[i] / t[0]);
            }
        }
        let mut spread = ratio[1].clone();
        spread.sort_by(f64::total_cmp);
        let p = |q: f64| spread[((spread.len() - 1) as f64 * q).round() as usize];
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2}x | {:.2}x | {:.2}x-{:.2}x |",
            sample.id,
            median(&mut per[0]),
            median(&mut per[1]),
            median(&mut per[2]),
            median(&mut ratio[1]),
            median(&mut ratio[2]),
            p(0.1),
            p(0.9),
        );
    }
}
