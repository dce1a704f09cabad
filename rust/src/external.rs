// SPDX-License-Identifier: MIT
//! Message memory supplied by the embedder.
//!
//! A large binary message normally lands in the protocol's own buffer and the
//! embedder then copies it into its own object (a Python `bytes`). With a
//! [`MessageAllocator`], the protocol unmasks the payload straight into memory the
//! embedder allocated for the final object, and the embedder may even `recv()` the
//! rest of the frame into it ([`crate::protocol::Protocol::direct_target`]): one pass
//! over the payload instead of three. The core still does no I/O and allocates
//! nothing it cannot account for: the embedder hands out memory and gets it back.

use std::ptr::NonNull;

/// Hands out memory for whole binary messages and takes it back.
pub trait MessageAllocator: Send {
    /// `len` writable bytes and a token naming them, or `None` to fall back to the
    /// protocol's own buffer. The memory stays valid until `release(token)`.
    fn allocate(&mut self, len: usize) -> Option<(NonNull<u8>, usize)>;

    /// The protocol is done with `token`'s memory (the embedder may keep using it).
    fn release(&mut self, token: usize);
}

/// One allocation: `len` bytes at `addr`, named `token` by the allocator.
///
/// The address is kept as an integer so that the protocol stays `Send`; it is only
/// dereferenced while the allocation is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct External {
    addr: usize,
    pub(crate) len: usize,
    pub(crate) token: usize,
}

impl External {
    pub(crate) fn new(ptr: NonNull<u8>, len: usize, token: usize) -> Self {
        Self {
            addr: ptr.as_ptr() as usize,
            len,
            token,
        }
    }

    pub(crate) fn as_ptr(self) -> *mut u8 {
        self.addr as *mut u8
    }

    /// The whole allocation.
    ///
    /// # Safety
    /// The allocation must still be held (not released).
    pub(crate) unsafe fn bytes<'a>(self) -> &'a [u8] {
        // SAFETY: the allocator guarantees `len` valid bytes until release.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.len) }
    }

    /// `range` of the allocation, writable.
    ///
    /// # Safety
    /// The allocation must still be held, and nothing else may borrow the range.
    pub(crate) unsafe fn bytes_mut<'a>(self, start: usize, len: usize) -> &'a mut [u8] {
        assert!(start + len <= self.len, "range outside the allocation");
        // SAFETY: in bounds (checked above); exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.as_ptr().add(start), len) }
    }
}

/// An allocator backed by the Rust heap, for tests and for embedders without one.
#[derive(Debug, Default)]
pub struct VecAllocator {
    live: std::collections::HashMap<usize, Vec<u8>>,
    next: usize,
    /// Allocations handed out so far.
    pub allocated: usize,
}

impl VecAllocator {
    /// Allocations not yet released.
    pub fn outstanding(&self) -> usize {
        self.live.len()
    }
}

impl MessageAllocator for VecAllocator {
    fn allocate(&mut self, len: usize) -> Option<(NonNull<u8>, usize)> {
        let mut buf = vec![0u8; len.max(1)];
        let ptr = NonNull::new(buf.as_mut_ptr())?;
        self.next += 1;
        self.allocated += 1;
        self.live.insert(self.next, buf);
        Some((ptr, self.next))
    }

    fn release(&mut self, token: usize) {
        assert!(
            self.live.remove(&token).is_some(),
            "token {token} released twice"
        );
    }
}
