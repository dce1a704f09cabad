// SPDX-License-Identifier: MIT
//! Receiving data and getting events: frames are parsed, unmasked, checked,
//! reassembled, inflated and validated, one received buffer per call.

use super::ProtocolError;
use super::{Event, EventKind, Protocol, State, CLOSE_ABNORMAL};
use crate::external::External;
use crate::frame::{
    is_control, FrameHeader, MAX_HEADER_LEN, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING,
    OP_PONG, OP_TEXT,
};

/// The frame currently being received (its header is parsed, payload pending).
#[derive(Clone, Copy, Debug)]
pub(super) struct Incoming {
    header: FrameHeader,
    remaining: u64,
    /// Payload bytes received so far, which is also the masking offset.
    received: usize,
    /// Start of this control frame's payload in `ctrl`.
    ctrl_start: usize,
    /// The payload goes to `Protocol::ext_current` (embedder memory).
    external: bool,
}

impl Protocol {
    // ---- receiving data ----

    /// Process one received buffer. Events from earlier calls are discarded.
    ///
    /// A protocol error after complete messages of the same buffer does not
    /// fail the connection at once: those messages are delivered first, and the
    /// replies to them queued before the close frame (fail-fast delivery). The
    /// connection stays OPEN until [`Protocol::end_batch`], which the I/O layer
    /// calls once it has handled the batch's events (the next batch ends it
    /// too); input after the error is ignored.
    pub fn receive_data(&mut self, data: &[u8]) {
        self.begin_batch();
        if self.discard_input || self.eof {
            return;
        }
        if let Err(err) = self.process(data) {
            let delivers = self
                .events
                .iter()
                .any(|e| matches!(e.kind, EventKind::Text | EventKind::Binary));
            if delivers {
                self.discard_input = true;
                self.pending_error = Some(err);
            } else {
                self.fail_with(err);
            }
        }
    }

    /// The I/O layer handled the last batch's events: fail the connection now
    /// if a protocol error was found after the batch's messages (see
    /// [`Protocol::receive_data`]). Does nothing otherwise. The events stay
    /// readable until the next batch.
    pub fn end_batch(&mut self) {
        if let Some(err) = self.pending_error.take() {
            self.fail_with(err);
        }
    }

    /// The transport reached end of file.
    pub fn receive_eof(&mut self) {
        self.begin_batch();
        if self.eof {
            return;
        }
        self.eof = true;
        if self.close_received.is_none() {
            // No close frame: report an abnormal closure (1006 never goes on the wire).
            self.close_received = Some((CLOSE_ABNORMAL, String::new()));
            self.push_event(EventKind::Close, CLOSE_ABNORMAL, 0, 0);
        }
        self.state = State::Closed;
    }

    fn begin_batch(&mut self) {
        self.end_batch();
        self.events.clear();
        self.release_external();
        match self.incoming.as_mut() {
            // A control frame split across reads keeps its partial payload.
            Some(inc) if is_control(inc.header.opcode) => {
                self.ctrl.drain(..inc.ctrl_start);
                inc.ctrl_start = 0;
            }
            _ => self.ctrl.clear(),
        }
        if self.msg_opcode == 0 {
            self.data.clear();
            self.msg_start = 0;
        } else if self.msg_start > 0 {
            // Keep only the message in progress. It began in the last batch, so this
            // moves at most one read's worth of bytes.
            self.data.drain(..self.msg_start);
            self.msg_start = 0;
        }
    }

    fn process(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        let mut pos = 0;
        while pos < data.len() && !self.discard_input {
            let Some(mut inc) = self.incoming else {
                pos += self.read_header(&data[pos..])?;
                continue;
            };
            let n = (data.len() - pos).min(usize::try_from(inc.remaining).unwrap_or(usize::MAX));
            self.payload_chunk(&inc, &data[pos..pos + n])?;
            pos += n;
            inc.received += n;
            inc.remaining -= n as u64;
            self.incoming = Some(inc);
            if inc.remaining == 0 {
                self.end_frame(&inc)?;
            }
        }
        Ok(())
    }

    /// Consume header bytes from `avail`; returns how many were used.
    fn read_header(&mut self, avail: &[u8]) -> Result<usize, ProtocolError> {
        let (header, used) = if self.header_len == 0 {
            match FrameHeader::parse(avail)? {
                Some(h) => (h, h.header_len),
                None => {
                    // At most 13 bytes: a header is never longer than 14.
                    self.header_buf[..avail.len()].copy_from_slice(avail);
                    self.header_len = avail.len();
                    return Ok(avail.len());
                }
            }
        } else {
            let have = self.header_len;
            let take = (MAX_HEADER_LEN - have).min(avail.len());
            self.header_buf[have..have + take].copy_from_slice(&avail[..take]);
            match FrameHeader::parse(&self.header_buf[..have + take])? {
                Some(h) => {
                    self.header_len = 0;
                    (h, h.header_len - have)
                }
                None => {
                    self.header_len += take;
                    return Ok(take);
                }
            }
        };
        self.start_frame(header)?;
        Ok(used)
    }

    fn start_frame(&mut self, h: FrameHeader) -> Result<(), ProtocolError> {
        h.check(
            self.cfg.role,
            self.inflater.is_some(),
            self.cfg.max_frame_size,
        )?;
        let mut inc = Incoming {
            header: h,
            remaining: h.payload_len,
            received: 0,
            ctrl_start: self.ctrl.len(),
            external: false,
        };
        if !is_control(h.opcode) {
            if h.opcode == OP_CONTINUATION {
                if self.msg_opcode == 0 {
                    return Err(ProtocolError::UnexpectedContinuation);
                }
                if h.rsv1 {
                    return Err(ProtocolError::CompressedContinuation);
                }
            } else {
                if self.msg_opcode != 0 {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                self.msg_opcode = h.opcode;
                self.msg_compressed = h.rsv1;
                self.msg_start = self.data.len();
                self.msg_ascii = true;
                self.utf8.reset();
            }
            if !self.msg_compressed {
                let size = (self.data.len() - self.msg_start) as u64 + h.payload_len;
                if size > self.cfg.max_message_size as u64 {
                    return Err(ProtocolError::MessageTooBig {
                        size,
                        limit: self.cfg.max_message_size,
                    });
                }
                inc.external = self.start_external(&h);
                if !inc.external {
                    // Reserve up front (bounded) so large frames are not regrown piecemeal.
                    self.data.reserve((h.payload_len as usize).min(1 << 20));
                }
            }
        }
        self.incoming = Some(inc);
        if h.payload_len == 0 {
            self.end_frame(&inc)?;
        }
        Ok(())
    }

    /// A whole binary message of at least `external_min` bytes goes to embedder
    /// memory, if an allocator is set and gives some. The size was checked already.
    fn start_external(&mut self, h: &FrameHeader) -> bool {
        if !(h.fin && h.opcode == OP_BINARY && !h.rsv1) {
            return false;
        }
        let Ok(len) = usize::try_from(h.payload_len) else {
            return false;
        };
        if len < self.external_min {
            return false;
        }
        let Some((ptr, token)) = self.allocator.as_mut().and_then(|a| a.allocate(len)) else {
            return false;
        };
        self.ext_current = Some(External::new(ptr, len, token));
        true
    }

    fn payload_chunk(&mut self, inc: &Incoming, chunk: &[u8]) -> Result<(), ProtocolError> {
        let h = &inc.header;
        if inc.external {
            let ext = self.ext_current.expect("external frame has its memory");
            // SAFETY: the allocation is held until the message's batch ends, and only
            // this frame writes to it.
            let dst = unsafe { ext.bytes_mut(inc.received, chunk.len()) };
            match h.mask {
                Some(key) => crate::mask::copy_masked(dst, chunk, key, inc.received),
                None => dst.copy_from_slice(chunk),
            }
            return Ok(());
        }
        if is_control(h.opcode) {
            unmask_append(&mut self.ctrl, chunk, h.mask, inc.received);
            return Ok(());
        }
        let before = self.data.len();
        if self.msg_compressed {
            let limit = self.msg_start.saturating_add(self.cfg.max_message_size);
            let inflater = self
                .inflater
                .as_mut()
                .expect("rsv1 accepted only with deflate");
            let input = match h.mask {
                Some(key) => {
                    self.scratch.clear();
                    unmask_append(&mut self.scratch, chunk, Some(key), inc.received);
                    &self.scratch[..]
                }
                None => chunk,
            };
            // A whole message in this chunk: the first frame, final, and all of
            // its payload at once.
            let whole = h.fin
                && h.opcode != OP_CONTINUATION
                && inc.received == 0
                && chunk.len() as u64 == h.payload_len;
            if whole {
                inflater.decompress_message(input, &mut self.data, limit)?;
            } else {
                inflater.decompress(input, &mut self.data, limit)?;
            }
        } else if let (OP_TEXT, Some(key)) = (self.msg_opcode, h.mask) {
            // Unmasking sees every byte: ASCII text needs no validator pass.
            if unmask_append_ascii(&mut self.data, chunk, key, inc.received)
                && self.utf8.skip_ascii(chunk.len())
            {
                return Ok(());
            }
        } else {
            unmask_append(&mut self.data, chunk, h.mask, inc.received);
        }
        // The validator's own pass (any byte not known to be ASCII, or a sequence
        // still open) also says whether the piece was ASCII.
        if self.msg_opcode == OP_TEXT {
            self.msg_ascii &= self.utf8.feed_report_ascii(&self.data[before..])?;
        }
        Ok(())
    }

    fn end_frame(&mut self, inc: &Incoming) -> Result<(), ProtocolError> {
        self.incoming = None;
        let h = &inc.header;
        match h.opcode {
            OP_PING => {
                let (start, len) = (inc.ctrl_start, self.ctrl.len() - inc.ctrl_start);
                self.push_event(EventKind::Ping, 0, start, len);
                if self.cfg.auto_pong && self.close_sent.is_none() {
                    let payload = self.ctrl[start..].to_vec();
                    self.write_frame(true, false, OP_PONG, &payload);
                }
            }
            OP_PONG => {
                let (start, len) = (inc.ctrl_start, self.ctrl.len() - inc.ctrl_start);
                self.push_event(EventKind::Pong, 0, start, len);
            }
            OP_CLOSE => self.receive_close(inc.ctrl_start)?,
            _ if h.fin && inc.external => {
                let ext = self
                    .ext_current
                    .take()
                    .expect("external frame has its memory");
                self.ext_done.push(ext);
                self.events.push(Event {
                    kind: EventKind::Binary,
                    code: 0,
                    start: 0,
                    len: ext.len,
                    ext: self.ext_done.len(),
                    ascii: false,
                });
                self.msg_opcode = 0;
                self.msg_compressed = false;
            }
            _ if h.fin => {
                if self.msg_compressed {
                    let before = self.data.len();
                    let limit = self.msg_start.saturating_add(self.cfg.max_message_size);
                    let inflater = self
                        .inflater
                        .as_mut()
                        .expect("rsv1 accepted only with deflate");
                    inflater.finish(&mut self.data, limit)?;
                    // Without context takeover nothing carries over to the next
                    // message: an idle connection holds no decompressor.
                    inflater.release();
                    if self.msg_opcode == OP_TEXT {
                        self.msg_ascii &= self.utf8.feed_report_ascii(&self.data[before..])?;
                    }
                }
                if self.msg_opcode == OP_TEXT {
                    self.utf8.finish()?;
                }
                let kind = if self.msg_opcode == OP_TEXT {
                    EventKind::Text
                } else {
                    EventKind::Binary
                };
                let (start, len) = (self.msg_start, self.data.len() - self.msg_start);
                self.push_event(kind, 0, start, len);
                if kind == EventKind::Text && self.msg_ascii {
                    self.events.last_mut().expect("just pushed").ascii = true;
                }
                self.msg_opcode = 0;
                self.msg_compressed = false;
                self.msg_start = self.data.len();
            }
            _ => {}
        }
        Ok(())
    }

    /// Add an event whose payload is `len` bytes from `start` of its buffer.
    pub(super) fn push_event(&mut self, kind: EventKind, code: u16, start: usize, len: usize) {
        self.events.push(Event {
            kind,
            code,
            start,
            len,
            ext: 0,
            ascii: false,
        });
    }

    // ---- getting events ----

    /// Events produced by the last `receive_data`/`receive_eof` call.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The payload of `event` (a close event's payload is its reason).
    pub fn payload(&self, event: &Event) -> &[u8] {
        if event.ext > 0 {
            // SAFETY: external messages of the current batch are held until the next
            // batch starts, which needs `&mut self`.
            return unsafe { self.ext_done[event.ext - 1].bytes() };
        }
        let buf = match event.kind {
            EventKind::Text | EventKind::Binary => &self.data,
            _ => &self.ctrl,
        };
        &buf[event.start..event.start + event.len]
    }

    /// The allocator token of `event`'s memory, if the message is in embedder memory.
    pub fn event_token(&self, event: &Event) -> Option<usize> {
        (event.ext > 0).then(|| self.ext_done[event.ext - 1].token)
    }

    /// Where the rest of the current frame's payload may be received directly:
    /// `(pointer, length)` into embedder memory, when a frame going there is in
    /// progress. Write at most `length` bytes there as they come off the wire (still
    /// masked), then call [`Protocol::receive_direct`] with the count.
    pub fn direct_target(&self) -> Option<(*mut u8, usize)> {
        let inc = self.incoming.as_ref()?;
        let ext = self.ext_current?;
        if !inc.external || inc.remaining == 0 || self.discard_input || self.eof {
            return None;
        }
        let remaining = usize::try_from(inc.remaining).ok()?;
        // SAFETY: `received + remaining == len`, inside the allocation.
        Some((unsafe { ext.as_ptr().add(inc.received) }, remaining))
    }

    /// `n` bytes were written at [`Protocol::direct_target`]'s pointer: unmask them
    /// and finish the frame if it is complete. Starts a new batch, like
    /// [`Protocol::receive_data`].
    ///
    /// # Panics
    /// If no direct target exists or `n` is more than its length.
    pub fn receive_direct(&mut self, n: usize) {
        let (_, room) = self.direct_target().expect("no direct target");
        assert!(n <= room, "receive_direct past the frame's end");
        self.begin_batch();
        let mut inc = self.incoming.expect("frame in progress");
        let ext = self.ext_current.expect("external frame has its memory");
        if let Some(key) = inc.header.mask {
            // SAFETY: held allocation; this frame is its only writer.
            let buf = unsafe { ext.bytes_mut(inc.received, n) };
            crate::mask::apply_mask(buf, key, inc.received);
        }
        inc.received += n;
        inc.remaining -= n as u64;
        self.incoming = Some(inc);
        if inc.remaining == 0 {
            // Binary, uncompressed, whole: ending it cannot fail.
            if let Err(err) = self.end_frame(&inc) {
                self.fail_with(err);
            }
        }
    }
}

/// Append `chunk` to `buf`, unmasking with `mask` from payload offset `offset`.
///
/// The unmasked bytes are written straight into the vector's spare capacity: a
/// `resize` first would zero-fill every byte of a large message only to overwrite
/// it, a second pass over memory that is cold for big messages (it showed as 14% of
/// the server's profile at 1 MiB).
pub(super) fn unmask_append(buf: &mut Vec<u8>, chunk: &[u8], mask: Option<[u8; 4]>, offset: usize) {
    let Some(key) = mask else {
        buf.extend_from_slice(chunk);
        return;
    };
    buf.reserve(chunk.len());
    let start = buf.len();
    let spare = &mut buf.spare_capacity_mut()[..chunk.len()];
    // The key as it applies from `offset`, repeated over one 32-byte block, so the
    // compiler turns the block loop into vector XORs.
    let mut wide = [0u8; 32];
    for (i, w) in wide.iter_mut().enumerate() {
        *w = key[(offset + i) & 3];
    }
    let mut dst = spare.chunks_exact_mut(32);
    let mut src = chunk.chunks_exact(32);
    for (d, s) in (&mut dst).zip(&mut src) {
        let mut block = [0u8; 32];
        for ((b, s), k) in block.iter_mut().zip(s).zip(&wide) {
            *b = s ^ k;
        }
        // SAFETY: `d` is 32 writable bytes of spare capacity; `block` does not overlap it.
        unsafe { std::ptr::copy_nonoverlapping(block.as_ptr(), d.as_mut_ptr().cast::<u8>(), 32) };
    }
    // Whole blocks keep the key phase, so the tail starts at `wide[0]` again.
    for ((d, s), k) in dst
        .into_remainder()
        .iter_mut()
        .zip(src.remainder())
        .zip(&wide)
    {
        d.write(s ^ k);
    }
    // SAFETY: the loops above initialised all `chunk.len()` bytes after `start`,
    // which `reserve` made sure fit in the capacity.
    unsafe { buf.set_len(start + chunk.len()) };
}

/// [`unmask_append`] of a masked chunk that also tells whether every appended byte
/// is ASCII, so a text message's UTF-8 check and `str` sizing need no pass of their
/// own. SSE2 (always there on x86_64) keeps the OR of the unmasked blocks in a
/// register beside the XOR: one more instruction per 16 bytes. Elsewhere it answers
/// false ("not known"), and the validator's pass finds out.
// `loadu`/`storeu` take any alignment: the casts only name the vector type.
#[allow(clippy::cast_ptr_alignment)]
pub(super) fn unmask_append_ascii(
    buf: &mut Vec<u8>,
    chunk: &[u8],
    key: [u8; 4],
    offset: usize,
) -> bool {
    #[cfg(not(target_arch = "x86_64"))]
    {
        unmask_append(buf, chunk, Some(key), offset);
        false
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_setzero_si128,
            _mm_storeu_si128, _mm_xor_si128,
        };
        let n = chunk.len();
        buf.reserve(n);
        let start = buf.len();
        // The key from `offset` on, over 16 bytes: 16 is a multiple of 4, so byte `i`
        // of the chunk takes `wide[i % 16]`.
        let mut wide = [0u8; 16];
        for (i, w) in wide.iter_mut().enumerate() {
            *w = key[(offset + i) & 3];
        }
        let src = chunk.as_ptr();
        // SAFETY: `reserve` made room for `n` bytes after `start`; every load reads
        // inside `chunk` and every store writes inside that room (`i + 16 <= n`).
        unsafe {
            let dst = buf.as_mut_ptr().add(start);
            let wide_key = _mm_loadu_si128(wide.as_ptr().cast::<__m128i>());
            let mut acc = _mm_setzero_si128();
            let mut i = 0;
            while i + 32 <= n {
                let lo = _mm_xor_si128(_mm_loadu_si128(src.add(i).cast::<__m128i>()), wide_key);
                let hi =
                    _mm_xor_si128(_mm_loadu_si128(src.add(i + 16).cast::<__m128i>()), wide_key);
                _mm_storeu_si128(dst.add(i).cast::<__m128i>(), lo);
                _mm_storeu_si128(dst.add(i + 16).cast::<__m128i>(), hi);
                acc = _mm_or_si128(acc, _mm_or_si128(lo, hi));
                i += 32;
            }
            if i + 16 <= n {
                let lo = _mm_xor_si128(_mm_loadu_si128(src.add(i).cast::<__m128i>()), wide_key);
                _mm_storeu_si128(dst.add(i).cast::<__m128i>(), lo);
                acc = _mm_or_si128(acc, lo);
                i += 16;
            }
            let mut tail = 0u8;
            while i < n {
                let v = *src.add(i) ^ wide[i & 15];
                *dst.add(i) = v;
                tail |= v;
                i += 1;
            }
            buf.set_len(start + n);
            _mm_movemask_epi8(acc) == 0 && tail < 0x80
        }
    }
}
