//! Mutable access to a header vector's `Arc` without an atomic
//! read-modify-write when nothing else holds it.
//!
//! `Arc::make_mut` and `Arc::get_mut` take the weak count's lock with a
//! `lock cmpxchg` on every call, to stay correct against `Weak` pointers.
//! Every `Headers::push` went through it, and perf put that one instruction
//! at about 1.5 % of a whole call's time. The `Arc`s handled here never have
//! a `Weak`: they live only inside `Headers` (a private field) and its
//! per-thread pool, and nothing calls `Arc::downgrade` on them. Then a
//! strong count of one, read through `&mut`, means no other `Arc` exists and
//! none can appear while the borrow lasts (a new one can only be cloned
//! from this one).

// The `unsafe` blocks of this module turn the unique `Arc`'s pointer into
// a mutable reference.
#![allow(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};

/// `a`'s value to change in place when no other `Arc` shares it.
///
/// Only for `Arc`s that never have a `Weak` (see the module comment).
#[inline]
pub(crate) fn unique_mut<T>(a: &mut Arc<T>) -> Option<&mut T> {
    if Arc::strong_count(a) != 1 {
        return None;
    }
    // Pairs with the release decrement of a clone dropped on another
    // thread: what that thread did with the value happens before our writes.
    fence(Ordering::Acquire);
    // SAFETY: the count is one and there is no `Weak`, so `a` is the only
    // pointer to the allocation; `&mut a` keeps it so (a clone would need
    // `&a`) for the lifetime of the returned reference.
    Some(unsafe { &mut *Arc::as_ptr(a).cast_mut() })
}

/// [`Arc::make_mut`] without the atomic read-modify-write when `a` is
/// unshared: the value in place, or a copy of it when shared.
///
/// Only for `Arc`s that never have a `Weak` (see the module comment).
#[inline]
pub(crate) fn make_mut<T: Clone>(a: &mut Arc<T>) -> &mut T {
    if Arc::strong_count(a) != 1 {
        return Arc::make_mut(a);
    }
    fence(Ordering::Acquire);
    // SAFETY: as in `unique_mut`: the only pointer, kept so by `&mut a`.
    unsafe { &mut *Arc::as_ptr(a).cast_mut() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unshared_arc_is_handed_out() {
        let mut a = Arc::new(vec![1]);
        unique_mut(&mut a).map(|v| v.push(2)).unwrap();
        assert_eq!(*a, [1, 2]);
        let b = Arc::clone(&a);
        assert!(unique_mut(&mut a).is_none(), "shared: no mutable access");
        drop(b);
        unique_mut(&mut a).map(|v| v.push(3)).unwrap();
        assert_eq!(*a, [1, 2, 3]);
        // Shared with another thread and released there.
        let c = Arc::clone(&a);
        std::thread::spawn(move || assert_eq!(c.len(), 3)).join().unwrap();
        assert!(unique_mut(&mut a).is_some());
        // make_mut: in place when unshared, a copy when shared.
        let before = Arc::as_ptr(&a);
        make_mut(&mut a).push(4);
        assert_eq!(Arc::as_ptr(&a), before);
        let d = Arc::clone(&a);
        make_mut(&mut a).push(5);
        assert_ne!(Arc::as_ptr(&a), before, "copied on write");
        assert_eq!((d.len(), a.len()), (4, 5));
    }
}
