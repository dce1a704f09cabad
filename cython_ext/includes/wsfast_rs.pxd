# SPDX-License-Identifier: MIT
# Declarations of the Rust C API (includes/wsfast_rs.h).

cdef extern from "wsfast_rs.h":
    int WSF_ABI_VERSION
    int WSF_DEFAULT_COMPRESSION_LEVEL

    ctypedef struct wsf_protocol:
        pass

    ctypedef struct wsf_config:
        uint8_t role
        uint8_t auto_pong
        uint8_t deflate
        uint8_t server_no_context_takeover
        uint8_t client_no_context_takeover
        uint8_t server_max_window_bits
        uint8_t client_max_window_bits
        uint8_t mem_level
        uint8_t compress_window_bits
        uint8_t compress_no_context
        uint32_t compression_level
        size_t max_frame_size
        size_t max_message_size
        size_t compress_min_size
        uint8_t mask_seed[32]

    ctypedef struct wsf_event:
        uint8_t kind
        uint8_t ascii
        uint16_t code
        const uint8_t *data
        size_t len
        void *handle

    ctypedef void *(*wsf_alloc_fn)(void *, size_t, uint8_t **) noexcept
    ctypedef void (*wsf_release_fn)(void *, void *) noexcept

    ctypedef struct wsf_capi:
        uint32_t abi_version
        wsf_protocol *(*protocol_new)(const wsf_config *) noexcept nogil
        void (*protocol_free)(wsf_protocol *) noexcept nogil
        size_t (*receive_data)(wsf_protocol *, const uint8_t *, size_t) noexcept nogil
        size_t (*receive_eof)(wsf_protocol *) noexcept nogil
        const wsf_event *(*events)(wsf_protocol *) noexcept nogil
        int32_t (*send_frame)(
            wsf_protocol *, uint8_t, const uint8_t *, size_t, int32_t) noexcept nogil
        int32_t (*send_frame_header)(wsf_protocol *, uint8_t, size_t, int32_t) noexcept nogil
        int32_t (*send_control)(wsf_protocol *, uint8_t, const uint8_t *, size_t) noexcept nogil
        int32_t (*send_close)(wsf_protocol *, int32_t, const uint8_t *, size_t) noexcept nogil
        void (*fail)(wsf_protocol *, uint16_t, const uint8_t *, size_t) noexcept nogil
        const uint8_t *(*output)(wsf_protocol *, size_t *) noexcept nogil
        void (*consume_output)(wsf_protocol *, size_t) noexcept nogil
        int32_t (*state)(wsf_protocol *) noexcept nogil
        int32_t (*close_expected)(wsf_protocol *) noexcept nogil
        int32_t (*close_sent)(wsf_protocol *, const uint8_t **, size_t *) noexcept nogil
        int32_t (*close_received)(wsf_protocol *, const uint8_t **, size_t *) noexcept nogil
        const uint8_t *(*last_error)(wsf_protocol *, size_t *) noexcept nogil
        void (*release_memory)(wsf_protocol *, size_t) noexcept nogil
        void (*apply_mask)(uint8_t *, size_t, const uint8_t *, size_t) noexcept nogil
        int32_t (*set_allocator)(
            wsf_protocol *, wsf_alloc_fn, wsf_release_fn, void *, size_t) noexcept nogil
        uint8_t *(*direct_target)(wsf_protocol *, size_t *) noexcept nogil
        size_t (*receive_direct)(wsf_protocol *, size_t) noexcept nogil
        int32_t (*close_ok)(wsf_protocol *) noexcept nogil
        void (*end_batch)(wsf_protocol *) noexcept nogil
        void (*release_all)(wsf_protocol *) noexcept nogil
        int32_t (*release_idle_compressor)(wsf_protocol *) noexcept nogil
        uint32_t (*utf8_shape)(const uint8_t *, size_t, size_t *) noexcept nogil
        size_t (*utf8_decode)(const uint8_t *, size_t, void *, uint32_t, size_t) noexcept nogil
