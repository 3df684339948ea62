//! Memory of confirmed dialogs and allocations per call, with a counting
//! global allocator that tracks live heap bytes.
//!
//! 1. Bytes per confirmed dialog: alice calls bob `N` times (INVITE, 100,
//!    180, 200, ACK; no BYE), then synthetic time passes 64*T1 so that the
//!    INVITE transactions end (Timers L and M). Each side's footprint is
//!    the live heap released by dropping that core, minus the same for a
//!    core that made one whole call and nothing else; divided by `N`.
//!    Received datagrams that parsed messages still point into count for
//!    the side that keeps them.
//! 2. Allocations and allocated bytes per whole call (both sides, with
//!    BYE), and the live heap before and after many calls (it must not grow).
//!
//! `cargo bench -p sipact-benches --bench call_mem`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

// Not every helper of the pair is used here (`open_dialogs` is the call bench's).
#[allow(dead_code)]
mod duo;
use duo::Duo;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        LIVE.fetch_add(layout.size() as i64, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        LIVE.fetch_add(layout.size() as i64, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A realloc counts as one allocation of the new size.
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size as u64, Relaxed);
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: i64 = 1000;
const CALLS: u64 = 10_000;

fn live() -> i64 {
    LIVE.load(Relaxed)
}

/// A pair that made one whole call (hash maps, queues and timer heaps have
/// had their first growth).
fn warmed() -> Duo {
    let mut d = Duo::new();
    d.call();
    d.advance(Duo::SETTLE);
    d
}

/// Live bytes released by dropping alice, then bob.
fn footprints(d: Duo) -> (i64, i64) {
    let Duo { a, b, .. } = d;
    let l0 = live();
    drop(a);
    let l1 = live();
    drop(b);
    let l2 = live();
    (l0 - l1, l1 - l2)
}

fn main() {
    // 1. Bytes per confirmed dialog.
    let (base_a, base_b) = footprints(warmed());
    let mut d = warmed();
    d.hangup = false;
    let l0 = live();
    for _ in 0..N {
        d.call();
    }
    let l_up = live();
    d.advance(Duo::SETTLE);
    let l1 = live();
    let k = d.counts;
    assert_eq!((k.a_accepted, k.b_accepted), (N as u64 + 1, N as u64 + 1), "{k:?}");
    assert_eq!((d.a.session_ids().len(), d.b.session_ids().len()), (N as usize, N as usize));
    assert!(d.a.transactions().is_some_and(|t| t.is_empty()) && d.b.transactions().is_some_and(|t| t.is_empty()));
    let (fa, fb) = footprints(d);
    let per_a = (fa - base_a) as f64 / N as f64;
    let per_b = (fb - base_b) as f64 / N as f64;
    println!("N = {N} confirmed dialogs, INVITE transactions ended (time advanced 40 s > 64*T1)");
    println!();
    println!("| | bytes per confirmed dialog |");
    println!("|---|---:|");
    println!("| alice (UAC) | {per_a:.0} |");
    println!("| bob (UAS) | {per_b:.0} |");
    println!("| both, live heap growth / N, transactions still live | {:.0} |", (l_up - l0) as f64 / N as f64);
    println!("| both, live heap growth / N, transactions ended | {:.0} |", (l1 - l0) as f64 / N as f64);
    println!();

    // 2. Allocations per whole call, and a flat heap.
    let mut d = warmed();
    for _ in 0..1000 {
        d.call();
    }
    d.advance(Duo::SETTLE);
    let (a0, b0, l0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed), live());
    for i in 0..CALLS {
        d.call();
        if (i + 1) % 256 == 0 {
            d.advance(Duo::SETTLE);
        }
    }
    d.advance(Duo::SETTLE);
    let (a1, b1, l1) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed), live());
    assert!(d.a.session_ids().is_empty() && d.b.session_ids().is_empty());
    assert!(d.a.transactions().is_some_and(|t| t.is_empty()) && d.b.transactions().is_some_and(|t| t.is_empty()));
    println!("{CALLS} whole calls (INVITE..BYE/200, both sides), time advanced 40 s every 256 calls");
    println!();
    println!("| allocs/call | bytes allocated/call | live heap growth over the run |");
    println!("|---:|---:|---:|");
    println!("| {:.1} | {:.0} | {} B |", (a1 - a0) as f64 / CALLS as f64, (b1 - b0) as f64 / CALLS as f64, l1 - l0);
}
