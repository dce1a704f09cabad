/* SPDX-License-Identifier: MIT */
/* The C API of wsfast._rust, published as the capsule "wsfast._rust._C_API".
 * Must match rust/src/capi.rs field for field; WSF_ABI_VERSION guards it. */
#ifndef WSFAST_RS_H
#define WSFAST_RS_H

#include <stddef.h>
#include <stdint.h>

#define WSF_ABI_VERSION 6

/* The zlib level of a connection that does not choose one: the Rust core's
 * DEFAULT_COMPRESSION_LEVEL (wsfast._rust.DEFAULT_COMPRESSION_LEVEL). A Rust
 * unit test (capi_tests.rs) checks that the two agree. */
#define WSF_DEFAULT_COMPRESSION_LEVEL 1

typedef struct wsf_protocol wsf_protocol;

typedef struct {
    uint8_t role; /* 0 server, 1 client */
    uint8_t auto_pong;
    uint8_t deflate;
    uint8_t server_no_context_takeover;
    uint8_t client_no_context_takeover;
    uint8_t server_max_window_bits; /* 0 = absent */
    uint8_t client_max_window_bits; /* 0 = absent */
    uint8_t mem_level; /* zlib memLevel of our compressor, 1..9; 0 = default */
    uint8_t compress_window_bits; /* our compressor's window cap, 8..15; 0 = default */
    uint8_t compress_no_context; /* 1 = keep no context between messages, even with takeover */
    uint32_t compression_level;
    size_t max_frame_size;
    size_t max_message_size;
    size_t compress_min_size;
    uint8_t mask_seed[32];
} wsf_config;

/* An event's data stays valid until the next receive_data, receive_eof,
 * release_memory or protocol_free call on its protocol. */
typedef struct {
    uint8_t kind; /* 1 text, 2 binary, 8 close, 9 ping, 10 pong */
    uint8_t ascii; /* text whose every byte is ASCII (0 when unknown) */
    uint16_t code;
    const uint8_t *data;
    size_t len;
    void *handle; /* allocator handle holding the payload, or NULL */
} wsf_event;

/* alloc(ctx, len, &data): a handle for len writable bytes at *data, or NULL.
 * release(ctx, handle): the protocol is done with that memory. */
typedef void *(*wsf_alloc_fn)(void *, size_t, uint8_t **);
typedef void (*wsf_release_fn)(void *, void *);

typedef struct {
    uint32_t abi_version;
    wsf_protocol *(*protocol_new)(const wsf_config *);
    void (*protocol_free)(wsf_protocol *);
    size_t (*receive_data)(wsf_protocol *, const uint8_t *, size_t);
    size_t (*receive_eof)(wsf_protocol *);
    const wsf_event *(*events)(wsf_protocol *);
    int32_t (*send_frame)(wsf_protocol *, uint8_t, const uint8_t *, size_t, int32_t);
    int32_t (*send_frame_header)(wsf_protocol *, uint8_t, size_t, int32_t);
    int32_t (*send_control)(wsf_protocol *, uint8_t, const uint8_t *, size_t);
    int32_t (*send_close)(wsf_protocol *, int32_t, const uint8_t *, size_t);
    void (*fail)(wsf_protocol *, uint16_t, const uint8_t *, size_t);
    const uint8_t *(*output)(wsf_protocol *, size_t *);
    void (*consume_output)(wsf_protocol *, size_t);
    int32_t (*state)(wsf_protocol *);
    int32_t (*close_expected)(wsf_protocol *);
    int32_t (*close_sent)(wsf_protocol *, const uint8_t **, size_t *);
    int32_t (*close_received)(wsf_protocol *, const uint8_t **, size_t *);
    const uint8_t *(*last_error)(wsf_protocol *, size_t *);
    void (*release_memory)(wsf_protocol *, size_t);
    void (*apply_mask)(uint8_t *, size_t, const uint8_t *, size_t);
    int32_t (*set_allocator)(wsf_protocol *, wsf_alloc_fn, wsf_release_fn, void *, size_t);
    uint8_t *(*direct_target)(wsf_protocol *, size_t *);
    size_t (*receive_direct)(wsf_protocol *, size_t);
    int32_t (*close_ok)(wsf_protocol *); /* 1 closed cleanly, 0 not (yet) */
    void (*end_batch)(wsf_protocol *); /* fail now for an error after the batch's messages */
    void (*release_all)(wsf_protocol *); /* transport gone: free all but the close state */
    int32_t (*release_idle_compressor)(wsf_protocol *); /* free it if unused since last call */
    /* Valid UTF-8 only: its widest code point class (0x7f, 0xff, 0xffff, 0x10ffff),
     * and its length in code points in *chars. */
    uint32_t (*utf8_shape)(const uint8_t *, size_t, size_t *chars);
    /* Valid UTF-8 only: decode into capacity units of unit (1, 2, 4) bytes; returns
     * the units written. */
    size_t (*utf8_decode)(const uint8_t *, size_t, void *out, uint32_t unit, size_t capacity);
} wsf_capi;

#endif
