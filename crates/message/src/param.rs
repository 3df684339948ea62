//! Generic parameters (`;name=value`), shared by URIs and headers.

use crate::ByteString;
use crate::out::put;

use crate::text::eq_ic;

/// One `name[=value]` parameter. The value is kept as written (a quoted
/// value keeps its quotes), so that printing reproduces it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Param {
    /// Parameter name as written.
    pub name: ByteString,
    /// Value as written, if the parameter has one.
    pub value: Option<ByteString>,
}

impl Param {
    /// A parameter with a value.
    pub fn new(name: impl Into<ByteString>, value: impl Into<ByteString>) -> Self {
        Param { name: name.into(), value: Some(value.into()) }
    }

    /// A parameter without a value (`;lr`).
    pub fn flag(name: impl Into<ByteString>) -> Self {
        Param { name: name.into(), value: None }
    }

    /// The value with surrounding quotes removed (no unescaping).
    pub fn unquoted(&self) -> Option<&str> {
        self.value
            .as_deref()
            .map(|v| if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') { &v[1..v.len() - 1] } else { v })
    }
}

/// An ordered list of parameters with case-insensitive lookup.
///
/// Nearly every list holds one to four parameters (a tag; a branch with
/// `rport` and `received`), so vectors of four slots are reused through a
/// per-thread pool instead of going to the allocator for each list parsed,
/// copied into a response, or dropped.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Params(pub Vec<Param>);

/// Four-slot parameter vectors kept for reuse on this thread.
mod pool {
    use super::Param;
    use crate::pool::{FreeList, keep, take as spare};

    /// Slots of a pooled vector.
    pub(super) const SLOTS: usize = 4;
    /// Vectors kept per thread (about 18 KB).
    const KEEP: usize = 64;

    thread_local! {
        static POOL: FreeList<Vec<Param>> = const { FreeList::new(Vec::new()) };
    }

    /// An empty vector with [`SLOTS`] slots.
    pub(super) fn take() -> Vec<Param> {
        spare(&POOL).unwrap_or_else(|| Vec::with_capacity(SLOTS))
    }

    /// Empties `v` and keeps it when it has [`SLOTS`] slots and the pool room.
    pub(super) fn give(v: &mut Vec<Param>) {
        if v.capacity() != SLOTS {
            return;
        }
        // The parameters are dropped before the pool is borrowed.
        v.clear();
        keep(&POOL, std::mem::take(v), KEEP);
    }
}

impl Drop for Params {
    fn drop(&mut self) {
        pool::give(&mut self.0);
    }
}

impl Clone for Params {
    fn clone(&self) -> Self {
        if self.0.is_empty() {
            return Params::new();
        }
        if self.0.len() <= pool::SLOTS {
            let mut v = pool::take();
            v.extend(self.0.iter().cloned());
            return Params(v);
        }
        Params(self.0.clone())
    }
}

impl Params {
    /// A copy whose strings keep no received buffer alive (see [`ByteString::detached`]).
    pub fn detached(&self) -> Params {
        Params(
            self.0
                .iter()
                .map(|p| Param { name: p.name.detached(), value: p.value.as_ref().map(ByteString::detached) })
                .collect(),
        )
    }

    /// [`Params::detached`] in place. The vector is also cut to its length:
    /// what is detached is kept long (a dialog's addresses), and a pooled
    /// four-slot vector holding one tag would waste three slots.
    pub fn detach(&mut self) {
        self.0.shrink_to_fit();
        for p in &mut self.0 {
            p.name.detach();
            if let Some(v) = &mut p.value {
                v.detach();
            }
        }
    }

    /// No parameters.
    pub const fn new() -> Self {
        Params(Vec::new())
    }

    /// The parameter named `name` (ASCII case-insensitive).
    pub fn find(&self, name: &str) -> Option<&Param> {
        self.0.iter().find(|p| eq_ic(&p.name, name))
    }

    /// `Some(value)` if the parameter is present: `Some(None)` for a flag.
    #[inline]
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.find(name).map(|p| p.value.as_deref())
    }

    /// The value of `name`, if present with a value (quotes removed).
    #[inline]
    pub fn value(&self, name: &str) -> Option<&str> {
        self.find(name).and_then(|p| p.unquoted())
    }

    /// Whether `name` is present.
    #[inline]
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Sets `name` to `value`, replacing an existing parameter of that name.
    #[inline]
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        self.set_string(name, value.map(ByteString::from));
    }

    /// [`Params::set`] with a value that is already a [`ByteString`] (one
    /// made from a number or an address, say), taken as it is.
    #[inline]
    pub fn set_string(&mut self, name: &str, value: Option<ByteString>) {
        if let Some(p) = self.0.iter_mut().find(|p| eq_ic(&p.name, name)) {
            p.value = value;
        } else {
            if self.0.capacity() == 0 {
                self.0 = pool::take();
            }
            self.0.push(Param { name: ByteString::from(name), value });
        }
    }

    /// Removes `name`; returns whether it was present.
    #[inline]
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|p| !eq_ic(&p.name, name));
        before != self.0.len()
    }

    /// Appends a parameter.
    #[inline]
    pub fn push(&mut self, p: Param) {
        if self.0.capacity() == 0 {
            self.0 = pool::take();
        }
        self.0.push(p);
    }

    /// Iterates in order.
    #[inline]
    pub fn iter(&self) -> std::slice::Iter<'_, Param> {
        self.0.iter()
    }

    /// Number of parameters.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>, lead: u8) {
        for p in &self.0 {
            out.push(lead);
            put(out, p.name.as_bytes());
            if let Some(v) = &p.value {
                out.push(b'=');
                put(out, v.as_bytes());
            }
        }
    }
}

/// Parses `*( SEMI name [EQUAL value] )` for header parameters, where a value
/// is a token/host or a quoted string. Stops at anything else.
pub(crate) fn header_params<'a>(src: &ByteString, mut s: &'a str) -> Result<(&'a str, Params), &'a str> {
    use crate::text::{GENVALUE, TOKEN, long_run_of, quoted_raw, run_of, sub, trim_ws_start};
    let mut params = Vec::new();
    loop {
        let t = trim_ws_start(s);
        let Some(rest) = t.strip_prefix(';') else {
            return Ok((s, Params(params)));
        };
        if params.capacity() == 0 {
            params = pool::take();
        }
        let rest = trim_ws_start(rest);
        let n = run_of(rest, TOKEN);
        if n == 0 {
            return Err(rest);
        }
        let (name, rest) = rest.split_at(n);
        let after = trim_ws_start(rest);
        if let Some(v) = after.strip_prefix('=') {
            let v = trim_ws_start(v);
            let (rest, value) = if v.starts_with('"') {
                match quoted_raw(v) {
                    Ok((rest, _)) => (rest, &v[..v.len() - rest.len()]),
                    Err(_) => return Err(v),
                }
            } else {
                let end = long_run_of(v, GENVALUE);
                if end == 0 {
                    return Err(v);
                }
                (&v[end..], &v[..end])
            };
            params.push(Param { name: sub(src, name), value: Some(sub(src, value)) });
            s = rest;
        } else {
            params.push(Param { name: sub(src, name), value: None });
            s = rest;
        }
    }
}
