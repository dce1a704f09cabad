// SPDX-License-Identifier: MIT
//! The per-connection state machine: bytes in, events and bytes out.
//!
//! One [`Protocol::receive_data`] call handles a whole received buffer: every
//! complete frame in it is unmasked, validated, reassembled, inflated and turned
//! into an [`Event`]; pongs and close replies are queued in the output. Partial
//! frames are kept (at most one header's bytes, plus the message being assembled)
//! until the next call. Protocol errors never escape as `Err`: they queue a close
//! frame with the right code and are kept in [`Protocol::error`].

use sha1::{Digest, Sha1};

use crate::deflate::{Compressor, Decompressor, DeflateParams};
use crate::error::{is_valid_close_code, ProtocolError, SendError};
use crate::external::{External, MessageAllocator};
use crate::frame::{
    encode_frame, encode_header, is_control, FrameHeader, Role, MAX_CONTROL_PAYLOAD,
    MAX_HEADER_LEN, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT,
};
use crate::utf8::Utf8Validator;

/// Close code reported when a close frame carried no status code.
pub const CLOSE_NO_STATUS: u16 = 1005;
/// Close code reported when the connection ended without a close frame.
pub const CLOSE_ABNORMAL: u16 = 1006;

/// Connection state (RFC 6455 section 4 and 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Opening handshake in progress (never the core's own state: it starts open).
    Connecting = 0,
    /// Data may flow both ways.
    Open = 1,
    /// One close frame has been sent or received.
    Closing = 2,
    /// Both close frames exchanged, or the transport ended.
    Closed = 3,
}

/// Options for one connection.
#[derive(Clone, Debug)]
pub struct Config {
    /// Server or client.
    pub role: Role,
    /// Largest frame payload accepted, in bytes.
    pub max_frame_size: usize,
    /// Largest message accepted (after decompression), in bytes.
    pub max_message_size: usize,
    /// Negotiated permessage-deflate parameters, if any.
    pub deflate: Option<DeflateParams>,
    /// zlib level for outgoing messages.
    pub compression_level: u32,
    /// Messages shorter than this are sent uncompressed (RFC 7692 allows it per message).
    pub compress_min_size: usize,
    /// Answer pings with pongs automatically.
    pub auto_pong: bool,
    /// Entropy for client masking keys, supplied by the caller (the core has no RNG).
    pub mask_seed: [u8; 32],
    /// A fixed masking key, for deterministic tests only.
    pub fixed_mask: Option<[u8; 4]>,
}

impl Config {
    /// Defaults for `role`: 1 MiB messages and frames, auto-pong, no compression.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            max_frame_size: 1 << 20,
            max_message_size: 1 << 20,
            deflate: None,
            compression_level: 6,
            compress_min_size: 0,
            auto_pong: true,
            mask_seed: [0; 32],
            fixed_mask: None,
        }
    }
}

/// What an event carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EventKind {
    /// A complete text message (payload is valid UTF-8).
    Text = OP_TEXT,
    /// A complete binary message.
    Binary = OP_BINARY,
    /// A close frame (payload is the reason), or the end of the transport (code 1006).
    Close = OP_CLOSE,
    /// A ping.
    Ping = OP_PING,
    /// A pong.
    Pong = OP_PONG,
}

/// One event of a batch. The payload lives in the protocol's buffers until the next
/// `receive_data`/`receive_eof` call; read it with [`Protocol::payload`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The kind of event.
    pub kind: EventKind,
    /// Close code for `Close` events, 0 otherwise.
    pub code: u16,
    start: usize,
    len: usize,
    /// 1 + index into `Protocol::ext_done` for a message in embedder memory, else 0.
    ext: usize,
}

/// Masking keys from SHA-1 over a caller-supplied seed and a counter: unpredictable
/// to anyone without the seed (RFC 6455 section 10.3), five keys per digest.
#[derive(Clone, Debug)]
struct MaskSource {
    seed: [u8; 32],
    counter: u64,
    pool: [u8; 20],
    used: usize,
    fixed: Option<[u8; 4]>,
}

impl MaskSource {
    fn next(&mut self) -> [u8; 4] {
        if let Some(key) = self.fixed {
            return key;
        }
        if self.used + 4 > self.pool.len() {
            let mut h = Sha1::new();
            h.update(self.seed);
            h.update(self.counter.to_le_bytes());
            self.counter = self.counter.wrapping_add(1);
            self.pool.copy_from_slice(&h.finalize());
            self.used = 0;
        }
        let k = [
            self.pool[self.used],
            self.pool[self.used + 1],
            self.pool[self.used + 2],
            self.pool[self.used + 3],
        ];
        self.used += 4;
        k
    }
}

/// The frame currently being received (its header is parsed, payload pending).
#[derive(Clone, Copy, Debug)]
struct Incoming {
    header: FrameHeader,
    remaining: u64,
    /// Payload bytes received so far, which is also the masking offset.
    received: usize,
    /// Start of this control frame's payload in `ctrl`.
    ctrl_start: usize,
    /// The payload goes to `Protocol::ext_current` (embedder memory).
    external: bool,
}

/// A sans-I/O WebSocket connection (after the opening handshake).
pub struct Protocol {
    cfg: Config,
    state: State,
    // Receiving.
    header_buf: [u8; MAX_HEADER_LEN],
    header_len: usize,
    incoming: Option<Incoming>,
    msg_opcode: u8,
    msg_compressed: bool,
    msg_start: usize,
    data: Vec<u8>,
    ctrl: Vec<u8>,
    scratch: Vec<u8>,
    events: Vec<Event>,
    utf8: Utf8Validator,
    inflater: Option<Decompressor>,
    discard_input: bool,
    // Embedder memory for large binary messages (see `external`).
    allocator: Option<Box<dyn MessageAllocator>>,
    external_min: usize,
    ext_current: Option<External>,
    ext_done: Vec<External>,
    // Sending.
    out: Vec<u8>,
    deflater: Option<Compressor>,
    send_opcode: u8,
    send_compressed: bool,
    masks: MaskSource,
    // Closing.
    close_sent: Option<(u16, String)>,
    close_received: Option<(u16, String)>,
    error: Option<ProtocolError>,
    eof: bool,
}

impl Protocol {
    /// A protocol in the OPEN state, as after a successful opening handshake.
    pub fn new(cfg: Config) -> Self {
        let inflater = cfg.deflate.as_ref().map(|p| Decompressor::new(p, cfg.role));
        let deflater = cfg
            .deflate
            .as_ref()
            .map(|p| Compressor::new(p, cfg.role, cfg.compression_level));
        let masks = MaskSource {
            seed: cfg.mask_seed,
            counter: 0,
            pool: [0; 20],
            used: 20,
            fixed: cfg.fixed_mask,
        };
        Self {
            cfg,
            state: State::Open,
            header_buf: [0; MAX_HEADER_LEN],
            header_len: 0,
            incoming: None,
            msg_opcode: 0,
            msg_compressed: false,
            msg_start: 0,
            data: Vec::new(),
            ctrl: Vec::new(),
            scratch: Vec::new(),
            events: Vec::new(),
            utf8: Utf8Validator::new(),
            inflater,
            discard_input: false,
            allocator: None,
            external_min: usize::MAX,
            ext_current: None,
            ext_done: Vec::new(),
            out: Vec::new(),
            deflater,
            send_opcode: 0,
            send_compressed: false,
            masks,
            close_sent: None,
            close_received: None,
            error: None,
            eof: false,
        }
    }

    /// Receive whole unfragmented, uncompressed binary messages of at least
    /// `min_size` bytes into memory from `allocator` instead of the protocol's own
    /// buffer. Events carry the allocation's token ([`Protocol::event_token`]).
    /// Returns false (and changes nothing) while a message is being received into
    /// the current allocator's memory.
    pub fn set_allocator(&mut self, allocator: Box<dyn MessageAllocator>, min_size: usize) -> bool {
        if self.ext_current.is_some() {
            return false;
        }
        self.release_external();
        self.events.clear();
        self.allocator = Some(allocator);
        self.external_min = min_size.max(1);
        true
    }

    /// Give the finished external messages of the last batch back to the allocator.
    fn release_external(&mut self) {
        if let Some(alloc) = self.allocator.as_mut() {
            for ext in self.ext_done.drain(..) {
                alloc.release(ext.token);
            }
        }
    }

    // ---- receiving data ----

    /// Process one received buffer. Events from earlier calls are discarded.
    pub fn receive_data(&mut self, data: &[u8]) {
        self.begin_batch();
        if self.discard_input || self.eof {
            return;
        }
        if let Err(err) = self.process(data) {
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
        } else {
            unmask_append(&mut self.data, chunk, h.mask, inc.received);
        }
        if self.msg_opcode == OP_TEXT {
            self.utf8.feed(&self.data[before..])?;
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
                    if self.msg_opcode == OP_TEXT {
                        self.utf8.feed(&self.data[before..])?;
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
                self.msg_opcode = 0;
                self.msg_compressed = false;
                self.msg_start = self.data.len();
            }
            _ => {}
        }
        Ok(())
    }

    fn receive_close(&mut self, start: usize) -> Result<(), ProtocolError> {
        let payload = &self.ctrl[start..];
        let (code, reason_start) = match payload.len() {
            0 => (CLOSE_NO_STATUS, start),
            1 => return Err(ProtocolError::ClosePayloadTooShort),
            _ => {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                if !is_valid_close_code(code) {
                    return Err(ProtocolError::InvalidCloseCode(code));
                }
                (code, start + 2)
            }
        };
        let reason = std::str::from_utf8(&self.ctrl[reason_start..])
            .map_err(|_| ProtocolError::InvalidCloseReason)?
            .to_owned();
        self.push_event(
            EventKind::Close,
            code,
            reason_start,
            self.ctrl.len() - reason_start,
        );
        self.close_received = Some((code, reason));
        // Nothing after a close frame is data (RFC 6455 section 5.5.1).
        self.discard_input = true;
        if self.close_sent.is_none() {
            // Echo the status code, as section 5.5.1 suggests.
            let reply = if code == CLOSE_NO_STATUS {
                None
            } else {
                Some(code)
            };
            self.write_close(reply, "");
        }
        self.state = State::Closed;
        Ok(())
    }

    fn push_event(&mut self, kind: EventKind, code: u16, start: usize, len: usize) {
        self.events.push(Event {
            kind,
            code,
            start,
            len,
            ext: 0,
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

    // ---- sending events ----

    fn check_can_send(&self) -> Result<(), SendError> {
        if self.close_sent.is_some() || self.state == State::Closed {
            Err(SendError::Closing)
        } else {
            Ok(())
        }
    }

    /// Validate fragmentation order for a data frame and return (opcode on the wire, compress).
    fn begin_data_frame(
        &mut self,
        opcode: u8,
        len: usize,
        fin: bool,
    ) -> Result<(u8, bool), SendError> {
        self.check_can_send()?;
        let first = match (opcode, self.send_opcode) {
            (OP_CONTINUATION, 0) => return Err(SendError::UnexpectedContinuation),
            (OP_CONTINUATION, _) => false,
            (_, 0) => true,
            _ => return Err(SendError::ExpectedContinuation),
        };
        if first {
            self.send_compressed =
                self.deflater.is_some() && (len >= self.cfg.compress_min_size || !fin);
            self.send_opcode = opcode;
        }
        if fin {
            self.send_opcode = 0;
        }
        Ok((
            if first { opcode } else { OP_CONTINUATION },
            first && self.send_compressed,
        ))
    }

    /// Queue one data frame: `opcode` is text, binary, or continuation for later fragments.
    pub fn send_frame(&mut self, opcode: u8, payload: &[u8], fin: bool) -> Result<(), SendError> {
        let (wire_op, rsv1) = self.begin_data_frame(opcode, payload.len(), fin)?;
        if self.send_compressed {
            let mut compressed = std::mem::take(&mut self.scratch);
            compressed.clear();
            let deflater = self
                .deflater
                .as_mut()
                .expect("compression needs a deflater");
            let result = deflater.compress(payload, fin, &mut compressed);
            if result.is_ok() {
                self.write_frame(fin, rsv1, wire_op, &compressed);
            }
            self.scratch = compressed;
            result?;
        } else {
            self.write_frame(fin, false, wire_op, payload);
        }
        Ok(())
    }

    /// Queue a complete text (`OP_TEXT`) or binary (`OP_BINARY`) message.
    pub fn send_message(&mut self, opcode: u8, payload: &[u8]) -> Result<(), SendError> {
        self.send_frame(opcode, payload, true)
    }

    /// Zero-copy send: when the payload can go out untouched (server side, not
    /// compressed), queue only the header and return `Ok(true)`; the caller must then
    /// write `payload_len` payload bytes right after [`Protocol::data_to_send`].
    /// Returns `Ok(false)` without doing anything when masking or compression applies.
    pub fn send_frame_header(
        &mut self,
        opcode: u8,
        payload_len: usize,
        fin: bool,
    ) -> Result<bool, SendError> {
        let would_compress = if opcode == OP_CONTINUATION {
            self.send_compressed
        } else {
            self.deflater.is_some() && (payload_len >= self.cfg.compress_min_size || !fin)
        };
        if self.cfg.role == Role::Client || would_compress {
            self.check_can_send()?;
            return Ok(false);
        }
        let (wire_op, _) = self.begin_data_frame(opcode, payload_len, fin)?;
        let mut header = [0u8; MAX_HEADER_LEN];
        let n = encode_header(&mut header, fin, false, wire_op, None, payload_len);
        self.out.extend_from_slice(&header[..n]);
        Ok(true)
    }

    /// Queue a ping.
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_control(OP_PING, payload)
    }

    /// Queue a pong.
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_control(OP_PONG, payload)
    }

    fn send_control(&mut self, opcode: u8, payload: &[u8]) -> Result<(), SendError> {
        self.check_can_send()?;
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlTooLong(payload.len()));
        }
        self.write_frame(true, false, opcode, payload);
        Ok(())
    }

    /// Start (or answer) the closing handshake. `code = None` sends an empty close frame.
    pub fn send_close(&mut self, code: Option<u16>, reason: &str) -> Result<(), SendError> {
        if self.close_sent.is_some() {
            return Err(SendError::Closing);
        }
        match code {
            Some(c) if !is_valid_close_code(c) => return Err(SendError::InvalidCloseCode(c)),
            None if !reason.is_empty() => return Err(SendError::InvalidCloseCode(CLOSE_NO_STATUS)),
            _ => {}
        }
        if reason.len() + 2 > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlTooLong(reason.len() + 2));
        }
        self.write_close(code, reason);
        Ok(())
    }

    /// Fail the connection: send a close frame with `code` (if none was sent) and
    /// ignore further input. The transport should be closed once the output is flushed.
    pub fn fail(&mut self, code: u16, reason: &str) {
        if self.close_sent.is_none() {
            self.write_close(Some(code), truncate_reason(reason));
        }
        self.discard_input = true;
        self.msg_opcode = 0;
        self.incoming = None;
        if let (Some(ext), Some(alloc)) = (self.ext_current.take(), self.allocator.as_mut()) {
            alloc.release(ext.token);
        }
    }

    fn fail_with(&mut self, err: ProtocolError) {
        let reason = err.to_string();
        self.fail(err.close_code(), &reason);
        self.error = Some(err);
    }

    fn write_close(&mut self, code: Option<u16>, reason: &str) {
        let mut payload = Vec::with_capacity(2 + reason.len());
        if let Some(c) = code {
            payload.extend_from_slice(&c.to_be_bytes());
            payload.extend_from_slice(reason.as_bytes());
        }
        self.write_frame(true, false, OP_CLOSE, &payload);
        self.close_sent = Some((code.unwrap_or(CLOSE_NO_STATUS), reason.to_owned()));
        self.state = if self.close_received.is_some() {
            State::Closed
        } else {
            State::Closing
        };
    }

    fn write_frame(&mut self, fin: bool, rsv1: bool, opcode: u8, payload: &[u8]) {
        let mask = match self.cfg.role {
            Role::Client => Some(self.masks.next()),
            Role::Server => None,
        };
        encode_frame(&mut self.out, fin, rsv1, opcode, payload, mask);
    }

    // ---- getting outgoing data ----

    /// Bytes to write to the transport, in order. Call [`Protocol::consume_output`] after writing.
    pub fn data_to_send(&self) -> &[u8] {
        &self.out
    }

    /// Drop the first `n` bytes of the output (they were written).
    pub fn consume_output(&mut self, n: usize) {
        let n = n.min(self.out.len());
        if n == self.out.len() {
            self.out.clear();
        } else {
            self.out.drain(..n);
        }
    }

    /// Take the whole output buffer.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Whether the I/O layer should close the transport once the output is flushed:
    /// after a failure, or (server side) once the closing handshake is complete.
    pub fn close_expected(&self) -> bool {
        self.error.is_some()
            || self.eof
            || (self.discard_input && self.close_sent.is_some() && self.close_received.is_none())
            || (self.cfg.role == Role::Server && self.state == State::Closed)
    }

    // ---- state ----

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Role given at construction.
    pub fn role(&self) -> Role {
        self.cfg.role
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The error that failed the connection, if any.
    pub fn error(&self) -> Option<&ProtocolError> {
        self.error.as_ref()
    }

    /// The close code and reason we sent, if any.
    pub fn close_sent(&self) -> Option<&(u16, String)> {
        self.close_sent.as_ref()
    }

    /// The close code and reason we received (1006 if the transport ended first).
    pub fn close_received(&self) -> Option<&(u16, String)> {
        self.close_received.as_ref()
    }

    /// Give back buffer memory beyond `keep` bytes each: when idle, or as soon as
    /// the last batch's events have been handled. This ends the batch: its events
    /// are dropped and their payloads must not be read any more. A message still
    /// being received keeps its bytes.
    ///
    /// Servers call it after each large read: the next large message then gets
    /// memory from the allocator, most likely a block another connection has just
    /// freed and that is still in the CPU cache, instead of this connection's own
    /// buffer, untouched since its last read (with many connections, out of cache).
    pub fn release_memory(&mut self, keep: usize) {
        self.events.clear();
        self.release_external();
        if self.msg_opcode == 0 {
            self.data.clear();
            self.msg_start = 0;
            self.data.shrink_to(keep);
        }
        self.scratch.clear();
        self.scratch.shrink_to(keep);
        if self.out.is_empty() {
            self.out.shrink_to(keep);
        }
    }
}

impl Drop for Protocol {
    fn drop(&mut self) {
        self.release_external();
        if let (Some(ext), Some(alloc)) = (self.ext_current.take(), self.allocator.as_mut()) {
            alloc.release(ext.token);
        }
    }
}

/// Append `chunk` to `buf`, unmasking with `mask` from payload offset `offset`.
///
/// The unmasked bytes are written straight into the vector's spare capacity: a
/// `resize` first would zero-fill every byte of a large message only to overwrite
/// it, a second pass over memory that is cold for big messages (it showed as 14% of
/// the server's profile at 1 MiB).
fn unmask_append(buf: &mut Vec<u8>, chunk: &[u8], mask: Option<[u8; 4]>, offset: usize) {
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

/// Cut a close reason to the 123 bytes a close frame allows, on a character boundary.
fn truncate_reason(reason: &str) -> &str {
    let max = MAX_CONTROL_PAYLOAD - 2;
    if reason.len() <= max {
        return reason;
    }
    let mut end = max;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
