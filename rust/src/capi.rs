// SPDX-License-Identifier: MIT
//! The C API that the Cython glue calls on the hot path.
//!
//! `wsfast._rust._C_API` is a PyCapsule holding a pointer to [`WSFAST_CAPI`], a
//! struct of `extern "C"` function pointers (the shape of CPython's datetime
//! C-API capsule). `cython_ext/includes/wsfast_rs.h` declares the same layout;
//! bump [`ABI_VERSION`] whenever either side changes.
//!
//! One `receive_data` call per received buffer returns every event of that buffer,
//! so Cython never calls Rust once per frame.

use std::ffi::c_void;
use std::ptr::{self, NonNull};
use std::slice;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::deflate::{
    CompressorSettings, DeflateParams, DEFAULT_COMPRESS_WINDOW_BITS, DEFAULT_MEM_LEVEL,
};
use crate::external::MessageAllocator;
use crate::frame::Role;
use crate::protocol::{Config, EventKind, Protocol, SendError};

/// Version of the struct layout below; checked by the Cython side at import.
pub const ABI_VERSION: u32 = 6;

/// Connection options, C layout.
#[repr(C)]
pub struct WsfConfig {
    /// 0 = server, 1 = client.
    pub role: u8,
    /// Answer pings automatically when non-zero.
    pub auto_pong: u8,
    /// permessage-deflate negotiated when non-zero.
    pub deflate: u8,
    /// Negotiated `server_no_context_takeover`.
    pub server_no_context_takeover: u8,
    /// Negotiated `client_no_context_takeover`.
    pub client_no_context_takeover: u8,
    /// Negotiated `server_max_window_bits`, 0 if absent.
    pub server_max_window_bits: u8,
    /// Negotiated `client_max_window_bits`, 0 if absent.
    pub client_max_window_bits: u8,
    /// zlib `memLevel` of our compressor, 1 to 9; 0 for the default.
    pub mem_level: u8,
    /// Largest window (log2, 8 to 15) our compressor uses, further capped by
    /// the negotiated one; 0 for the default.
    pub compress_window_bits: u8,
    /// Non-zero: keep no compression context between messages even with
    /// context takeover on our side (`CompressorSettings::keep_context`).
    pub compress_no_context: u8,
    /// zlib level for outgoing messages.
    pub compression_level: u32,
    /// Largest frame payload accepted.
    pub max_frame_size: usize,
    /// Largest message accepted (after decompression).
    pub max_message_size: usize,
    /// Smaller messages are sent uncompressed.
    pub compress_min_size: usize,
    /// Entropy for client masking keys.
    pub mask_seed: [u8; 32],
}

/// One event, C layout. `data` points into the protocol's buffers and stays valid
/// until the next `receive_data`/`receive_eof`/`release_memory`/`protocol_free` call on it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WsfEvent {
    /// Opcode: 1 text, 2 binary, 8 close, 9 ping, 10 pong.
    pub kind: u8,
    /// 1 for a text message whose every byte is ASCII, 0 otherwise or when unknown.
    pub ascii: u8,
    /// Close code for close events.
    pub code: u16,
    /// Payload (close reason for close events).
    pub data: *const u8,
    /// Payload length.
    pub len: usize,
    /// The allocator handle holding the payload (see `set_allocator`), or null when
    /// it is in the protocol's own buffer.
    pub handle: *mut c_void,
}

/// `alloc(ctx, len, &data)`: a handle for `len` writable bytes at `*data`, or null.
pub type AllocFn = unsafe extern "C" fn(*mut c_void, usize, *mut *mut u8) -> *mut c_void;
/// `release(ctx, handle)`: the protocol is done with the handle's memory.
pub type ReleaseFn = unsafe extern "C" fn(*mut c_void, *mut c_void);

/// A C allocator: two function pointers and their context.
struct CAllocator {
    alloc: AllocFn,
    release: ReleaseFn,
    ctx: usize,
}

impl MessageAllocator for CAllocator {
    fn allocate(&mut self, len: usize) -> Option<(NonNull<u8>, usize)> {
        let mut data: *mut u8 = ptr::null_mut();
        // SAFETY: the embedder's function, called as its contract says.
        let handle = unsafe { (self.alloc)(self.ctx as *mut c_void, len, &raw mut data) };
        if handle.is_null() {
            return None;
        }
        Some((NonNull::new(data)?, handle as usize))
    }

    fn release(&mut self, token: usize) {
        // SAFETY: `token` is a handle that `alloc` returned and nobody released yet.
        unsafe { (self.release)(self.ctx as *mut c_void, token as *mut c_void) }
    }
}

/// A protocol plus the C-shaped copies of its last batch of events.
pub struct CProtocol {
    proto: Protocol,
    events: Vec<WsfEvent>,
    last_error: String,
}

impl CProtocol {
    fn refresh_events(&mut self) -> usize {
        self.events.clear();
        for ev in self.proto.events() {
            let payload = self.proto.payload(ev);
            self.events.push(WsfEvent {
                kind: ev.kind as u8,
                ascii: u8::from(ev.ascii),
                code: ev.code,
                data: payload.as_ptr(),
                len: payload.len(),
                handle: self
                    .proto
                    .event_token(ev)
                    .map_or(ptr::null_mut(), |t| t as *mut c_void),
            });
        }
        self.events.len()
    }

    fn send_result(&mut self, r: Result<i32, SendError>) -> i32 {
        match r {
            Ok(v) => v,
            Err(e) => {
                let code = match e {
                    SendError::Closing => -1,
                    SendError::ExpectedContinuation | SendError::UnexpectedContinuation => -2,
                    SendError::ControlTooLong(_) | SendError::InvalidCloseCode(_) => -3,
                    SendError::Deflate(_) => -4,
                };
                self.last_error = e.to_string();
                code
            }
        }
    }
}

/// The function table published in the capsule.
#[repr(C)]
pub struct WsfCApi {
    /// [`ABI_VERSION`].
    pub abi_version: u32,
    /// Create a protocol; free it with `protocol_free`.
    pub protocol_new: unsafe extern "C" fn(*const WsfConfig) -> *mut CProtocol,
    /// Free a protocol.
    pub protocol_free: unsafe extern "C" fn(*mut CProtocol),
    /// Feed received bytes; returns the number of events.
    pub receive_data: unsafe extern "C" fn(*mut CProtocol, *const u8, usize) -> usize,
    /// Feed end of file; returns the number of events.
    pub receive_eof: unsafe extern "C" fn(*mut CProtocol) -> usize,
    /// The events of the last batch.
    pub events: unsafe extern "C" fn(*mut CProtocol) -> *const WsfEvent,
    /// Queue a data frame. 0 ok, negative on error (see `last_error`).
    pub send_frame: unsafe extern "C" fn(*mut CProtocol, u8, *const u8, usize, i32) -> i32,
    /// Queue only a header for a zero-copy payload: 1 queued, 0 not possible, negative on error.
    pub send_frame_header: unsafe extern "C" fn(*mut CProtocol, u8, usize, i32) -> i32,
    /// Queue a ping (opcode 9) or pong (10).
    pub send_control: unsafe extern "C" fn(*mut CProtocol, u8, *const u8, usize) -> i32,
    /// Queue a close frame; `code < 0` sends an empty one.
    pub send_close: unsafe extern "C" fn(*mut CProtocol, i32, *const u8, usize) -> i32,
    /// Fail the connection with a close code and reason.
    pub fail: unsafe extern "C" fn(*mut CProtocol, u16, *const u8, usize),
    /// Pending output bytes; the length goes to `*len`.
    pub output: unsafe extern "C" fn(*mut CProtocol, *mut usize) -> *const u8,
    /// Drop `n` written bytes from the output.
    pub consume_output: unsafe extern "C" fn(*mut CProtocol, usize),
    /// State as in `protocol::State`.
    pub state: unsafe extern "C" fn(*mut CProtocol) -> i32,
    /// Non-zero when the transport should be closed after flushing.
    pub close_expected: unsafe extern "C" fn(*mut CProtocol) -> i32,
    /// Close code we sent (or -1) and its reason.
    pub close_sent: unsafe extern "C" fn(*mut CProtocol, *mut *const u8, *mut usize) -> i32,
    /// Close code we received (or -1) and its reason.
    pub close_received: unsafe extern "C" fn(*mut CProtocol, *mut *const u8, *mut usize) -> i32,
    /// Message of the protocol error that failed the connection, or of the last send error.
    pub last_error: unsafe extern "C" fn(*mut CProtocol, *mut usize) -> *const u8,
    /// Release buffer memory beyond `keep` bytes.
    pub release_memory: unsafe extern "C" fn(*mut CProtocol, usize),
    /// XOR `len` bytes in place with a 4-byte key from payload offset `offset`.
    pub apply_mask: unsafe extern "C" fn(*mut u8, usize, *const u8, usize),
    /// Receive whole binary messages of at least `min_size` bytes into memory from
    /// `alloc`; returns 0 if a message is in progress (nothing changed), 1 if set.
    pub set_allocator:
        unsafe extern "C" fn(*mut CProtocol, AllocFn, ReleaseFn, *mut c_void, usize) -> i32,
    /// Where the rest of the current frame may be received directly (length to `*len`), or null.
    pub direct_target: unsafe extern "C" fn(*mut CProtocol, *mut usize) -> *mut u8,
    /// `n` bytes were written at `direct_target`; returns the number of events.
    pub receive_direct: unsafe extern "C" fn(*mut CProtocol, usize) -> usize,
    /// 1 if the connection closed cleanly (`Protocol::close_ok`), else 0.
    pub close_ok: unsafe extern "C" fn(*mut CProtocol) -> i32,
    /// The last batch's events are handled: fail now for an error found after
    /// its messages (`Protocol::end_batch`).
    pub end_batch: unsafe extern "C" fn(*mut CProtocol),
    /// The transport is gone: free all memory but how the connection ended
    /// (`Protocol::release_all`); ends the batch.
    pub release_all: unsafe extern "C" fn(*mut CProtocol),
    /// Free the compressor if it compressed nothing since the last call
    /// (`Protocol::release_idle_compressor`); 1 if it freed it, else 0.
    pub release_idle_compressor: unsafe extern "C" fn(*mut CProtocol) -> i32,
    /// `utf8_shape(data, len, &chars)`: the largest code point class of valid UTF-8
    /// (0x7f, 0xff, 0xffff or 0x10ffff) and, in `chars`, its length in code points.
    pub utf8_shape: unsafe extern "C" fn(*const u8, usize, *mut usize) -> u32,
    /// `utf8_decode(data, len, out, unit, capacity)`: decode valid UTF-8 into
    /// `capacity` code units of `unit` bytes (1, 2 or 4) at `out`; returns the
    /// units written (0 for another `unit`).
    pub utf8_decode: unsafe extern "C" fn(*const u8, usize, *mut c_void, u32, usize) -> usize,
}

/// Protocols made by `protocol_new` and not freed yet, process-wide.
static LIVE_PROTOCOLS: AtomicUsize = AtomicUsize::new(0);

/// How many protocols of the C API are alive (made and not freed), for tests:
/// a closed connection's must go as soon as its last reference does.
pub fn live_protocols() -> usize {
    LIVE_PROTOCOLS.load(Ordering::Relaxed)
}

unsafe extern "C" fn protocol_new(cfg: *const WsfConfig) -> *mut CProtocol {
    // SAFETY: the caller passes a valid, initialised config.
    let c = unsafe { &*cfg };
    let role = if c.role == 1 {
        Role::Client
    } else {
        Role::Server
    };
    let opt_bits = |b: u8| if b == 0 { None } else { Some(b) };
    let or_default = |value: u8, default: u8| if value == 0 { default } else { value };
    let mut config = Config::new(role);
    config.auto_pong = c.auto_pong != 0;
    config.max_frame_size = c.max_frame_size;
    config.max_message_size = c.max_message_size;
    config.compressor = CompressorSettings {
        level: c.compression_level,
        mem_level: or_default(c.mem_level, DEFAULT_MEM_LEVEL),
        window_bits: or_default(c.compress_window_bits, DEFAULT_COMPRESS_WINDOW_BITS),
        keep_context: c.compress_no_context == 0,
    };
    config.compress_min_size = c.compress_min_size;
    config.mask_seed = c.mask_seed;
    if c.deflate != 0 {
        config.deflate = Some(DeflateParams {
            server_no_context_takeover: c.server_no_context_takeover != 0,
            client_no_context_takeover: c.client_no_context_takeover != 0,
            server_max_window_bits: opt_bits(c.server_max_window_bits),
            client_max_window_bits: opt_bits(c.client_max_window_bits),
        });
    }
    LIVE_PROTOCOLS.fetch_add(1, Ordering::Relaxed);
    Box::into_raw(Box::new(CProtocol {
        proto: Protocol::new(config),
        events: Vec::new(),
        last_error: String::new(),
    }))
}

unsafe extern "C" fn protocol_free(p: *mut CProtocol) {
    if !p.is_null() {
        // SAFETY: `p` came from `protocol_new` and is freed once.
        drop(unsafe { Box::from_raw(p) });
        LIVE_PROTOCOLS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// # Safety
/// `ptr` must be valid for `len` bytes (or `len == 0`).
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { slice::from_raw_parts(ptr, len) }
    }
}

unsafe extern "C" fn receive_data(p: *mut CProtocol, data: *const u8, len: usize) -> usize {
    // SAFETY: `p` is a live protocol and `data` is valid for `len` bytes.
    let (c, data) = unsafe { (&mut *p, bytes(data, len)) };
    c.proto.receive_data(data);
    c.refresh_events()
}

unsafe extern "C" fn receive_eof(p: *mut CProtocol) -> usize {
    // SAFETY: `p` is a live protocol.
    let c = unsafe { &mut *p };
    c.proto.receive_eof();
    c.refresh_events()
}

unsafe extern "C" fn events(p: *mut CProtocol) -> *const WsfEvent {
    // SAFETY: `p` is a live protocol.
    unsafe { (*p).events.as_ptr() }
}

unsafe extern "C" fn send_frame(
    p: *mut CProtocol,
    opcode: u8,
    data: *const u8,
    len: usize,
    fin: i32,
) -> i32 {
    // SAFETY: `p` is a live protocol and `data` is valid for `len` bytes.
    let (c, data) = unsafe { (&mut *p, bytes(data, len)) };
    let r = c.proto.send_frame(opcode, data, fin != 0).map(|()| 0);
    c.send_result(r)
}

unsafe extern "C" fn send_frame_header(p: *mut CProtocol, opcode: u8, len: usize, fin: i32) -> i32 {
    // SAFETY: `p` is a live protocol.
    let c = unsafe { &mut *p };
    let r = c
        .proto
        .send_frame_header(opcode, len, fin != 0)
        .map(i32::from);
    c.send_result(r)
}

unsafe extern "C" fn send_control(
    p: *mut CProtocol,
    opcode: u8,
    data: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: `p` is a live protocol and `data` is valid for `len` bytes.
    let (c, data) = unsafe { (&mut *p, bytes(data, len)) };
    let r = if opcode == EventKind::Ping as u8 {
        c.proto.send_ping(data)
    } else {
        c.proto.send_pong(data)
    };
    c.send_result(r.map(|()| 0))
}

unsafe extern "C" fn send_close(
    p: *mut CProtocol,
    code: i32,
    reason: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: `p` is a live protocol and `reason` is valid for `len` bytes.
    let (c, reason) = unsafe { (&mut *p, bytes(reason, len)) };
    let Ok(reason) = std::str::from_utf8(reason) else {
        c.last_error = "close reason is not valid utf-8".into();
        return -3;
    };
    let code = u16::try_from(code).ok();
    let r = c.proto.send_close(code, reason).map(|()| 0);
    c.send_result(r)
}

unsafe extern "C" fn fail(p: *mut CProtocol, code: u16, reason: *const u8, len: usize) {
    // SAFETY: `p` is a live protocol and `reason` is valid for `len` bytes.
    let (c, reason) = unsafe { (&mut *p, bytes(reason, len)) };
    c.proto.fail(code, &String::from_utf8_lossy(reason));
}

unsafe extern "C" fn output(p: *mut CProtocol, len: *mut usize) -> *const u8 {
    // SAFETY: `p` is a live protocol and `len` is writable.
    unsafe {
        let out = (*p).proto.data_to_send();
        *len = out.len();
        out.as_ptr()
    }
}

unsafe extern "C" fn consume_output(p: *mut CProtocol, n: usize) {
    // SAFETY: `p` is a live protocol.
    unsafe { (*p).proto.consume_output(n) }
}

unsafe extern "C" fn state(p: *mut CProtocol) -> i32 {
    // SAFETY: `p` is a live protocol.
    unsafe { (*p).proto.state() as i32 }
}

unsafe extern "C" fn close_expected(p: *mut CProtocol) -> i32 {
    // SAFETY: `p` is a live protocol.
    i32::from(unsafe { (*p).proto.close_expected() })
}

unsafe extern "C" fn close_ok(p: *mut CProtocol) -> i32 {
    // SAFETY: `p` is a live protocol.
    i32::from(unsafe { (*p).proto.close_ok() })
}

/// # Safety
/// `reason` and `len` must be writable.
unsafe fn write_close(v: Option<&(u16, String)>, reason: *mut *const u8, len: *mut usize) -> i32 {
    // SAFETY: guaranteed by the caller.
    unsafe {
        match v {
            Some((code, text)) => {
                *reason = text.as_ptr();
                *len = text.len();
                i32::from(*code)
            }
            None => {
                *reason = ptr::null();
                *len = 0;
                -1
            }
        }
    }
}

unsafe extern "C" fn close_sent(p: *mut CProtocol, reason: *mut *const u8, len: *mut usize) -> i32 {
    // SAFETY: `p` is a live protocol; out-pointers are writable.
    unsafe { write_close((*p).proto.close_sent(), reason, len) }
}

unsafe extern "C" fn close_received(
    p: *mut CProtocol,
    reason: *mut *const u8,
    len: *mut usize,
) -> i32 {
    // SAFETY: `p` is a live protocol; out-pointers are writable.
    unsafe { write_close((*p).proto.close_received(), reason, len) }
}

unsafe extern "C" fn last_error(p: *mut CProtocol, len: *mut usize) -> *const u8 {
    // SAFETY: `p` is a live protocol and `len` is writable.
    let c = unsafe { &mut *p };
    if let Some(err) = c.proto.error() {
        c.last_error = err.to_string();
    }
    // SAFETY: `len` is writable.
    unsafe { *len = c.last_error.len() };
    c.last_error.as_ptr()
}

unsafe extern "C" fn release_memory(p: *mut CProtocol, keep: usize) {
    // SAFETY: `p` is a live protocol.
    unsafe { (*p).proto.release_memory(keep) }
}

unsafe extern "C" fn apply_mask(data: *mut u8, len: usize, key: *const u8, offset: usize) {
    if len == 0 {
        return;
    }
    // SAFETY: the caller passes `len` writable bytes and a 4-byte key.
    let (buf, key) = unsafe {
        (
            slice::from_raw_parts_mut(data, len),
            [*key, *key.add(1), *key.add(2), *key.add(3)],
        )
    };
    crate::mask::apply_mask(buf, key, offset);
}

unsafe extern "C" fn set_allocator(
    p: *mut CProtocol,
    alloc: AllocFn,
    release: ReleaseFn,
    ctx: *mut c_void,
    min_size: usize,
) -> i32 {
    // SAFETY: `p` is a live protocol.
    let c = unsafe { &mut *p };
    let allocator = CAllocator {
        alloc,
        release,
        ctx: ctx as usize,
    };
    let ok = c.proto.set_allocator(Box::new(allocator), min_size);
    c.events.clear();
    i32::from(ok)
}

unsafe extern "C" fn direct_target(p: *mut CProtocol, len: *mut usize) -> *mut u8 {
    // SAFETY: `p` is a live protocol and `len` is writable.
    let (c, len) = unsafe { (&mut *p, &mut *len) };
    match c.proto.direct_target() {
        Some((data, n)) => {
            *len = n;
            data
        }
        None => {
            *len = 0;
            ptr::null_mut()
        }
    }
}

unsafe extern "C" fn receive_direct(p: *mut CProtocol, n: usize) -> usize {
    // SAFETY: `p` is a live protocol.
    let c = unsafe { &mut *p };
    let room = c.proto.direct_target().map_or(0, |(_, room)| room);
    // A caller bug must not unwind across the C boundary: ignore bad counts.
    if n <= room && room > 0 {
        c.proto.receive_direct(n);
    } else {
        c.proto.receive_data(&[]);
    }
    c.refresh_events()
}

unsafe extern "C" fn end_batch(p: *mut CProtocol) {
    // SAFETY: `p` is a live protocol.
    unsafe { (*p).proto.end_batch() }
}

unsafe extern "C" fn release_all(p: *mut CProtocol) {
    // SAFETY: `p` is a live protocol.
    let c = unsafe { &mut *p };
    c.proto.release_all();
    c.events = Vec::new();
    // `last_error` rebuilds the message from the protocol when asked.
    c.last_error = String::new();
}

unsafe extern "C" fn release_idle_compressor(p: *mut CProtocol) -> i32 {
    // SAFETY: `p` is a live protocol.
    i32::from(unsafe { (*p).proto.release_idle_compressor() })
}

unsafe extern "C" fn utf8_shape(data: *const u8, len: usize, chars: *mut usize) -> u32 {
    // SAFETY: the caller passes `len` readable bytes (any pointer when 0) and a
    // writable `chars`.
    let (data, chars) = unsafe { (bytes(data, len), &mut *chars) };
    let shape = crate::utf8::shape(data);
    *chars = shape.chars;
    shape.max_char
}

unsafe extern "C" fn utf8_decode(
    data: *const u8,
    len: usize,
    out: *mut c_void,
    unit: u32,
    capacity: usize,
) -> usize {
    use crate::utf8::decode_into;
    // SAFETY: the caller passes `len` bytes of valid UTF-8: the payload of a text
    // or close event, which the protocol validated before reporting it.
    let text = unsafe { std::str::from_utf8_unchecked(bytes(data, len)) };
    if capacity == 0 {
        return 0;
    }
    // SAFETY (each arm): `out` holds `capacity` writable units of `unit` bytes,
    // aligned for them (a PyUnicode_New buffer).
    match unit {
        1 => decode_into(text, unsafe {
            slice::from_raw_parts_mut(out.cast::<u8>(), capacity)
        }),
        2 => decode_into(text, unsafe {
            slice::from_raw_parts_mut(out.cast::<u16>(), capacity)
        }),
        4 => decode_into(text, unsafe {
            slice::from_raw_parts_mut(out.cast::<u32>(), capacity)
        }),
        _ => 0,
    }
}

/// The table behind the `_C_API` capsule.
pub static WSFAST_CAPI: WsfCApi = WsfCApi {
    abi_version: ABI_VERSION,
    protocol_new,
    protocol_free,
    receive_data,
    receive_eof,
    events,
    send_frame,
    send_frame_header,
    send_control,
    send_close,
    fail,
    output,
    consume_output,
    state,
    close_expected,
    close_sent,
    close_received,
    last_error,
    release_memory,
    apply_mask,
    set_allocator,
    direct_target,
    receive_direct,
    close_ok,
    end_batch,
    release_all,
    release_idle_compressor,
    utf8_shape,
    utf8_decode,
};

/// Size and field offsets of one C-API struct, in bytes, fields in order and
/// named as in `wsfast_rs.h`: what the Cython side computes from the header
/// with `sizeof`/`offsetof`, so a test can compare the two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StructLayout {
    /// The C type name, e.g. `wsf_config`.
    pub name: &'static str,
    /// `size_of` the struct.
    pub size: usize,
    /// Each field's name and `offset_of`.
    pub fields: Vec<(&'static str, usize)>,
}

/// The [`StructLayout`] of `$ty`, named `$c_name`, with the fields listed.
macro_rules! layout {
    ($c_name:literal, $ty:ident { $($field:ident),* $(,)? }) => {{
        // A pattern naming every field: a field added to the struct but not
        // to this list fails to compile.
        let _exhaustive = |value: &$ty| {
            let $ty { $($field: _),* } = value;
        };
        StructLayout {
            name: $c_name,
            size: std::mem::size_of::<$ty>(),
            fields: vec![$((stringify!($field), std::mem::offset_of!($ty, $field))),*],
        }
    }};
}

/// The layout of `wsf_config`, `wsf_event` and `wsf_capi` as Rust lays them out.
pub fn layout() -> Vec<StructLayout> {
    vec![
        layout!(
            "wsf_config",
            WsfConfig {
                role,
                auto_pong,
                deflate,
                server_no_context_takeover,
                client_no_context_takeover,
                server_max_window_bits,
                client_max_window_bits,
                mem_level,
                compress_window_bits,
                compress_no_context,
                compression_level,
                max_frame_size,
                max_message_size,
                compress_min_size,
                mask_seed,
            }
        ),
        layout!(
            "wsf_event",
            WsfEvent {
                kind,
                ascii,
                code,
                data,
                len,
                handle,
            }
        ),
        layout!(
            "wsf_capi",
            WsfCApi {
                abi_version,
                protocol_new,
                protocol_free,
                receive_data,
                receive_eof,
                events,
                send_frame,
                send_frame_header,
                send_control,
                send_close,
                fail,
                output,
                consume_output,
                state,
                close_expected,
                close_sent,
                close_received,
                last_error,
                release_memory,
                apply_mask,
                set_allocator,
                direct_target,
                receive_direct,
                close_ok,
                end_batch,
                release_all,
                release_idle_compressor,
                utf8_shape,
                utf8_decode,
            }
        ),
    ]
}

#[cfg(test)]
#[path = "capi_tests.rs"]
mod tests;
