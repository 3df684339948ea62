//! Per-thread free lists for the vectors every message allocates (its
//! header vector, its parameter lists): taking one back costs far less than
//! the allocator's round trip. Each user keeps its own `thread_local!` list
//! and decides which vectors are worth keeping; this module only moves them.

use std::cell::RefCell;
use std::thread::LocalKey;

/// A per-thread list of spare values.
pub(crate) type FreeList<T> = RefCell<Vec<T>>;

/// A spare value, if the list has one (and is reachable: not during thread
/// exit, not while borrowed).
pub(crate) fn take<T: 'static>(list: &'static LocalKey<FreeList<T>>) -> Option<T> {
    list.try_with(|l| l.try_borrow_mut().ok().and_then(|mut l| l.pop())).ok().flatten()
}

/// Keeps `v` when the list holds fewer than `max`; drops it otherwise.
pub(crate) fn keep<T: 'static>(list: &'static LocalKey<FreeList<T>>, v: T, max: usize) {
    let _ = list.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut()
            && l.len() < max
        {
            l.push(v);
        }
    });
}
