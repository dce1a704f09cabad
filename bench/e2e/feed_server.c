// SPDX-License-Identifier: MIT
// wsfast client benchmark: a native WebSocket feed server that is never the bottleneck.
//
// One thread, epoll, non-blocking sockets, its own HTTP/1.1 upgrade handshake (SHA-1 and
// base64 written here for Sec-WebSocket-Accept). Listens on 127.0.0.1 only.
//
// Modes:
//   feed   per connection, after the handshake, sends --count frames (text, unmasked) from
//          a corpus of --kinds distinct market-data-like JSON messages of about --size
//          bytes (seeded RNG: varying symbols, prices, quantities, ids, timestamps), cycled,
//          as fast as the socket accepts them: every frame is built once at start-up into
//          one ring of back-to-back frames (>= 256 KiB), so one send() carries many frames.
//          A request target with "count=N" (e.g. GET /?count=N) overrides --count for that
//          connection (1 <= N <= 100,000,000). Then a close frame 1000; waits for the client's close, then closes.
//          --message FILE: the corpus is that one message, sent over and over.
//          With --deflate and a client offering permessage-deflate, it answers
//          "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
//          (plus server_max_window_bits=B when the client asked for it) and sends each
//          message pre-compressed on its own (zlib --level, default 6, raw deflate with
//          the negotiated window, Z_SYNC_FLUSH, 00 00 ff ff tail stripped, RSV1 set), so
//          the client inflates every message.
//          With --context-takeover as well, it answers "permessage-deflate" (plus
//          server_max_window_bits=B when asked) unless the client requested
//          server_no_context_takeover, and the frames are pre-compressed as one deflate
//          stream: a period of at least 1,024 messages (the corpus cycled), each flushed
//          with Z_SYNC_FLUSH and referring back to the ones before it. Replaying the
//          period is valid: its first message was compressed with an empty history, so
//          it refers to nothing before it, and the rest refer only within the period.
//   echo   echoes every data frame back unmasked (same opcode and FIN), answers pings,
//          closes on close. No extension is negotiated.
// --tls CERT KEY serves wss: TLS 1.3 with TLS_AES_128_GCM_SHA256 only (the cipher every
// client then runs), the handshake non-blocking, then SSL_read/SSL_write on the sockets.
// --spin polls epoll without sleeping while a connection is open, so the server adds no
// wake-up latency to a round trip (it burns its own core; meant for a pinned server).
//
// Output (stdout, one JSON object per line):
//   {"event":"listening","port":P,...}        once, when ready
//   {"event":"conn",...}                       per connection, when it ends: frames and
//                                               payload bytes sent, seconds, server CPU
//   {"event":"exit",...}                       on SIGTERM/SIGINT or --max-seconds
// Limits: --max-conns connections at once (default 64), --count <= 100,000,000,
// --size <= 1 MiB, --max-seconds <= 3600 (default 600), then it exits by itself.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_COUNT 100000000LL
#define MAX_SIZE (1u << 20)
#define MAX_KINDS 65536
#define MAX_CONNS_LIMIT 1024
#define MAX_HEAD 8192
#define RING_MIN (256u * 1024u)
#define SEND_CHUNK (1u << 20)
#define READ_CHUNK (64u * 1024u)
#define MAX_IN_FRAME (16u << 20)
#define CLOSE_WAIT_S 5.0
#define STREAM_MIN 1024 /* messages in one period of a context-takeover stream */

/* ---- SHA-1 (FIPS 180-4) and base64 (RFC 4648) ------------------------------------- */

struct sha1 {
    uint32_t h[5];
    uint64_t len;
    uint8_t block[64];
    size_t used;
};

static uint32_t rol32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_compress(struct sha1 *s, const uint8_t *p) {
    uint32_t w[80];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 |
               (uint32_t)p[4 * t + 2] << 8 | (uint32_t)p[4 * t + 3];
    for (int t = 16; t < 80; t++) w[t] = rol32(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];
    for (int t = 0; t < 80; t++) {
        uint32_t f, k;
        if (t < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999u;
        } else if (t < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1u;
        } else if (t < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdcu;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6u;
        }
        uint32_t tmp = rol32(a, 5) + f + e + k + w[t];
        e = d;
        d = c;
        c = rol32(b, 30);
        b = a;
        a = tmp;
    }
    s->h[0] += a;
    s->h[1] += b;
    s->h[2] += c;
    s->h[3] += d;
    s->h[4] += e;
}

static void sha1_init(struct sha1 *s) {
    static const uint32_t iv[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u,
                                   0xc3d2e1f0u};
    memcpy(s->h, iv, sizeof iv);
    s->len = 0;
    s->used = 0;
}

static void sha1_update(struct sha1 *s, const void *data, size_t n) {
    const uint8_t *p = data;
    s->len += n;
    while (n > 0) {
        size_t take = 64 - s->used < n ? 64 - s->used : n;
        memcpy(s->block + s->used, p, take);
        s->used += take;
        p += take;
        n -= take;
        if (s->used == 64) {
            sha1_compress(s, s->block);
            s->used = 0;
        }
    }
}

static void sha1_final(struct sha1 *s, uint8_t out[20]) {
    uint64_t bits = s->len * 8;
    uint8_t pad = 0x80;
    sha1_update(s, &pad, 1);
    pad = 0;
    while (s->used != 56) sha1_update(s, &pad, 1);
    uint8_t lenbuf[8];
    for (int i = 0; i < 8; i++) lenbuf[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(s, lenbuf, 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

static size_t base64_encode(const uint8_t *in, size_t n, char *out) {
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? abc[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

/* Sec-WebSocket-Accept for a key (RFC 6455 section 4.2.2). */
static void ws_accept(const char *key, size_t keylen, char out[29]) {
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    struct sha1 s;
    uint8_t digest[20];
    sha1_init(&s);
    sha1_update(&s, key, keylen);
    sha1_update(&s, guid, sizeof guid - 1);
    sha1_final(&s, digest);
    base64_encode(digest, 20, out);
}

/* ---- options ------------------------------------------------------------------------ */

enum mode { MODE_FEED, MODE_ECHO };

static struct {
    enum mode mode;
    int port;
    long long count;
    size_t size;
    int kinds;
    uint64_t seed;
    int deflate;
    int level;
    int max_conns;
    double max_seconds;
    int spin;
    int takeover;
    const char *message_file;
    const char *tls_cert, *tls_key;
} opt = {MODE_FEED, 0, 100000, 64, 1024, 20261126, 0, 6, 64, 600.0, 0, 0, NULL, NULL, NULL};
static SSL_CTX *tls_ctx;

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void cpu_s(double *user, double *sys) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "feed_server: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "feed_server: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

/* ---- corpus: market-data-like JSON messages ---------------------------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t n) { return rng_next() % n; }

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

static void buf_put(struct buf *b, const void *data, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static void buf_printf(struct buf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        buf_reserve(b, (size_t)n + 1);
    }
}

static void buf_consume(struct buf *b, size_t n) {
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static const char *const SYMBOLS[] = {"BTCUSDT", "ETHUSDT", "SOLUSDT",  "XRPUSDT", "DOGEUSDT",
                                      "ADAUSDT", "BNBUSDT", "AVAXUSDT", "LINKUSDT", "DOTUSDT",
                                      "LTCUSDT", "TRXUSDT", "ETHBTC",   "SOLBTC",   "OPUSDT"};
static const double BASE_PRICE[] = {43250.0, 2301.5, 98.12,  0.6123, 0.0871, 0.5512, 312.4, 36.7,
                                    14.82,   7.31,   72.05,  0.1042, 0.0532, 0.00227, 3.41};

static void put_price(struct buf *b, double base) {
    double p = base * (1.0 + ((double)rng_below(20001) - 10000.0) / 200000.0);
    int decimals = base >= 1000 ? 2 : base >= 10 ? 3 : base >= 1 ? 4 : 6;
    buf_printf(b, "\"%.*f\"", decimals, p);
}

static void put_qty(struct buf *b) {
    int decimals = (int)rng_below(6);
    double q = (double)(rng_below(5000000) + 1) / 1000.0;
    buf_printf(b, "\"%.*f\"", decimals, q);
}

/* One message of about `target` bytes (small targets: a trade; larger: a depth update). */
static void make_message(struct buf *b, size_t target) {
    size_t sym = rng_below(sizeof SYMBOLS / sizeof SYMBOLS[0]);
    uint64_t ts = 1732612345678ull + rng_below(86400000ull);
    uint64_t id = 100000000ull + rng_below(4000000000ull);
    b->len = 0;
    if (target < 160) {
        buf_printf(b, "{\"s\":\"%s\",\"p\":", SYMBOLS[sym]);
        put_price(b, BASE_PRICE[sym]);
        buf_printf(b, ",\"q\":");
        put_qty(b);
        buf_printf(b, ",\"T\":%llu", (unsigned long long)ts);
        if (b->len + 16 < target) buf_printf(b, ",\"i\":%llu", (unsigned long long)id);
        if (b->len + 10 < target) buf_printf(b, ",\"m\":%s", rng_below(2) ? "true" : "false");
        buf_put(b, "}", 1);
        return;
    }
    buf_printf(b,
               "{\"e\":\"depthUpdate\",\"E\":%llu,\"T\":%llu,\"s\":\"%s\",\"U\":%llu,"
               "\"u\":%llu,\"pu\":%llu,\"b\":[",
               (unsigned long long)(ts + 3), (unsigned long long)ts, SYMBOLS[sym],
               (unsigned long long)id, (unsigned long long)(id + rng_below(40)),
               (unsigned long long)(id - 1));
    int side = 0, first = 1;
    while (b->len + 30 < target) {
        if (!first) buf_put(b, ",", 1);
        first = 0;
        buf_put(b, "[", 1);
        put_price(b, BASE_PRICE[sym]);
        buf_put(b, ",", 1);
        put_qty(b);
        buf_put(b, "]", 1);
        if (!side && b->len * 2 > target) {
            buf_printf(b, "],\"a\":[");
            side = 1;
            first = 1;
        }
    }
    buf_printf(b, side ? "]}" : "],\"a\":[]}");
}

/* Raw deflate of one message (RFC 7692 7.2.1), tail 00 00 ff ff removed; with no context
 * (`reset`) or continuing the stream of the messages before it. */
static void deflate_message(z_stream *z, const char *in, size_t n, struct buf *out, int reset) {
    out->len = 0;
    buf_reserve(out, deflateBound(z, n) + 16);
    if (reset && deflateReset(z) != Z_OK) exit(2);
    z->next_in = (Bytef *)in;
    z->avail_in = (uInt)n;
    z->next_out = (Bytef *)out->p;
    z->avail_out = (uInt)out->cap;
    if (deflate(z, Z_SYNC_FLUSH) != Z_OK || z->avail_in != 0) {
        fprintf(stderr, "feed_server: deflate failed\n");
        exit(2);
    }
    out->len = out->cap - z->avail_out;
    if (out->len < 4 || memcmp(out->p + out->len - 4, "\x00\x00\xff\xff", 4) != 0) {
        fprintf(stderr, "feed_server: unexpected deflate tail\n");
        exit(2);
    }
    out->len -= 4;
}

static size_t frame_header(uint8_t *h, uint8_t first_byte, size_t n) {
    h[0] = first_byte;
    if (n < 126) {
        h[1] = (uint8_t)n;
        return 2;
    }
    if (n < 65536) {
        h[1] = 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    return 10;
}

/* One period of frames (the corpus, or for a context-takeover stream the corpus cycled
 * to at least STREAM_MIN messages), back to back, repeated until the ring is big. */
struct ring {
    char *data;
    size_t len;          /* bytes of the whole ring (reps copies of the period) */
    int n;               /* frames in one period */
    size_t kinds_len;    /* bytes of one period */
    size_t *frame_end;   /* frame_end[i]: end offset of frame i within one period */
    uint64_t *payload_prefix; /* payload bytes of the first i frames (uncompressed) */
};

static struct buf *messages; /* the K plain messages */
static struct ring plain_ring;
static struct ring deflate_rings[2][16]; /* by context takeover and window bits, lazily */

static void build_ring(struct ring *r, int wbits, int takeover) {
    z_stream z;
    struct buf one = {0}, all = {0};
    memset(&z, 0, sizeof z);
    if (wbits && deflateInit2(&z, opt.level, Z_DEFLATED, -wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        exit(2);
    r->n = opt.kinds;
    while (takeover && r->n < STREAM_MIN) r->n += opt.kinds;
    r->frame_end = xmalloc(sizeof(size_t) * (size_t)r->n);
    r->payload_prefix = xmalloc(sizeof(uint64_t) * ((size_t)r->n + 1));
    r->payload_prefix[0] = 0;
    for (int i = 0; i < r->n; i++) {
        const struct buf *m = &messages[i % opt.kinds];
        const char *payload = m->p;
        size_t n = m->len;
        uint8_t first = 0x81; /* FIN + text */
        if (wbits) {
            deflate_message(&z, m->p, m->len, &one, !takeover || i == 0);
            payload = one.p;
            n = one.len;
            first |= 0x40; /* RSV1: compressed */
        }
        uint8_t h[10];
        size_t hl = frame_header(h, first, n);
        buf_put(&all, h, hl);
        buf_put(&all, payload, n);
        r->frame_end[i] = all.len;
        r->payload_prefix[i + 1] = r->payload_prefix[i] + m->len;
    }
    if (wbits) deflateEnd(&z);
    free(one.p);
    r->kinds_len = all.len;
    size_t reps = (RING_MIN + all.len - 1) / all.len;
    r->len = reps * all.len;
    r->data = xmalloc(r->len);
    for (size_t i = 0; i < reps; i++) memcpy(r->data + i * all.len, all.p, all.len);
    free(all.p);
}

/* --message FILE: a corpus of that one message. */
static void read_message(struct buf *m) {
    FILE *f = fopen(opt.message_file, "rb");
    if (!f) {
        perror(opt.message_file);
        exit(2);
    }
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && m->len <= MAX_SIZE) buf_put(m, chunk, n);
    fclose(f);
    if (m->len < 1 || m->len > MAX_SIZE) {
        fprintf(stderr, "feed_server: --message must hold 1 byte to 1 MiB\n");
        exit(2);
    }
}

static void build_corpus(void) {
    rng_state = opt.seed;
    if (opt.message_file) opt.kinds = 1;
    messages = calloc((size_t)opt.kinds, sizeof *messages);
    if (!messages) exit(2);
    if (opt.message_file) {
        read_message(&messages[0]);
        opt.size = messages[0].len;
        build_ring(&plain_ring, 0, 0);
        return;
    }
    for (int i = 0; i < opt.kinds; i++) {
        /* sizes vary around S: uniform in [0.85 S, 1.15 S] */
        size_t target = opt.size * (85 + rng_below(31)) / 100;
        make_message(&messages[i], target < 40 ? 40 : target);
    }
    build_ring(&plain_ring, 0, 0);
}

static struct ring *deflate_ring(int wbits, int takeover) {
    struct ring *r = &deflate_rings[takeover][wbits];
    if (!r->data) build_ring(r, wbits, takeover);
    return r;
}

/* Wire bytes and payload bytes of the first n frames of the feed. */
static uint64_t feed_wire_bytes(const struct ring *r, long long n) {
    uint64_t full = (uint64_t)n / (uint64_t)r->n, rest = (uint64_t)n % (uint64_t)r->n;
    return full * r->kinds_len + (rest ? r->frame_end[rest - 1] : 0);
}

static uint64_t feed_payload_bytes(const struct ring *r, long long n) {
    uint64_t full = (uint64_t)n / (uint64_t)r->n, rest = (uint64_t)n % (uint64_t)r->n;
    return full * r->payload_prefix[r->n] + r->payload_prefix[rest];
}

/* ---- connections -------------------------------------------------------------------- */

enum cstate { CS_HANDSHAKE, CS_OPEN, CS_CLOSE_SENT, CS_DONE };

struct conn {
    int fd;
    unsigned id;
    enum cstate st;
    struct buf in, out;   /* bytes received; control/echo/handshake bytes to send */
    const struct ring *ring; /* feed mode: frames to send */
    uint64_t feed_total, feed_sent;
    int deflate, wbits, takeover;
    int want_out;         /* EPOLLOUT registered */
    int peer_closed;      /* close frame received */
    int close_code;       /* feed mode: the client closed first with this code */
    long long count;      /* feed mode: frames to send (--count, or ?count=N in the URL) */
    long long echoed, received;
    uint64_t echo_bytes;
    double t_open, t_close_sent, cpu_user0, cpu_sys0;
    SSL *ssl;             /* --tls */
    int tls_pending;      /* --tls: the TLS handshake is not finished yet */
    int ring_retry;       /* --tls: an SSL_write of ring data must be retried first */
};

/* send()/recv() with one contract on plain and TLS connections: -1 with errno EAGAIN
 * when the socket must be waited for, 0 from io_recv at end of stream. */
static ssize_t io_send(struct conn *c, const void *p, size_t n) {
    if (!c->ssl) return send(c->fd, p, n, MSG_NOSIGNAL);
    int w = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
    if (w > 0) return w;
    int e = SSL_get_error(c->ssl, w);
    errno = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? EAGAIN : EIO;
    return -1;
}

static ssize_t io_recv(struct conn *c, void *p, size_t n) {
    if (!c->ssl) return recv(c->fd, p, n, 0);
    int r = SSL_read(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
    if (r > 0) return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) return 0;
    errno = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? EAGAIN : EIO;
    return -1;
}

static int epfd;
static int nconns;
static unsigned next_id;
static struct conn **conns;
static double total_user0, total_sys0;

/* Frames of the feed sent completely. */
static long long frames_sent(const struct conn *c) {
    long long lo = 0, hi = c->count;
    while (lo < hi) {
        long long mid = lo + (hi - lo + 1) / 2;
        if (feed_wire_bytes(c->ring, mid) <= c->feed_sent)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

static void conn_report(struct conn *c) {
    double user, sys;
    cpu_s(&user, &sys);
    double secs = c->t_open > 0 ? now_s() - c->t_open : 0.0;
    long long frames = 0;
    uint64_t payload = 0, wire = 0;
    if (opt.mode == MODE_FEED && c->ring) {
        frames = frames_sent(c);
        payload = feed_payload_bytes(c->ring, frames);
        wire = c->feed_sent;
    } else {
        frames = c->echoed;
        payload = c->echo_bytes;
    }
    printf("{\"event\":\"conn\",\"id\":%u,\"mode\":\"%s\",\"deflate\":%s,\"window_bits\":%d,"
           "\"context_takeover\":%s,"
           "\"count\":%lld,\"frames\":%lld,\"payload_bytes\":%llu,\"wire_bytes\":%llu,\"complete\":%s,"
           "\"clean_close\":%s,\"seconds\":%.6f,\"cpu_user\":%.6f,\"cpu_sys\":%.6f,"
           "\"cpu_s\":%.6f}\n",
           c->id, opt.mode == MODE_FEED ? "feed" : "echo", c->deflate ? "true" : "false",
           c->wbits, c->takeover ? "true" : "false", c->count, frames, (unsigned long long)payload, (unsigned long long)wire,
           opt.mode == MODE_FEED ? (frames == c->count ? "true" : "false") : "true",
           c->peer_closed ? "true" : "false", secs, user - c->cpu_user0, sys - c->cpu_sys0,
           user - c->cpu_user0 + sys - c->cpu_sys0);
    fflush(stdout);
}

static void conn_free(struct conn *c) {
    if (c->st != CS_HANDSHAKE) conn_report(c);
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    for (int i = 0; i < nconns; i++) {
        if (conns[i] == c) {
            conns[i] = conns[--nconns];
            break;
        }
    }
    free(c->in.p);
    free(c->out.p);
    if (c->ssl) SSL_free(c->ssl);
    free(c);
}

static void set_out_interest(struct conn *c, int want) {
    if (c->want_out == want) return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
}

static void http_error(struct conn *c, const char *status) {
    c->out.len = 0;
    buf_printf(&c->out, "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
    io_send(c, c->out.p, c->out.len); /* best effort */
    c->st = CS_DONE;
}

static int token_eq(const char *s, size_t n, const char *word) {
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

static void trim(const char **s, size_t *n) {
    while (*n && (**s == ' ' || **s == '\t')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

/* Header list contains the token `word` (comma separated, case-insensitive). */
static int has_token(const char *v, size_t n, const char *word) {
    while (n) {
        const char *comma = memchr(v, ',', n);
        size_t len = comma ? (size_t)(comma - v) : n;
        const char *t = v;
        size_t tl = len;
        trim(&t, &tl);
        if (token_eq(t, tl, word)) return 1;
        if (!comma) break;
        v = comma + 1;
        n -= len + 1;
    }
    return 0;
}

/*
 * One permessage-deflate offer (RFC 7692 section 7.1). Returns 1 if acceptable and sets
 * *server_bits to the server_max_window_bits the client asked for (0: none) and
 * *no_takeover to whether it asked for server_no_context_takeover.
 * Decline (0) on an unknown or duplicate parameter or an invalid value; also decline
 * server_max_window_bits=8, which zlib cannot produce (it raises a raw window of 8 to 9).
 */
static int parse_offer(const char *s, size_t n, int *server_bits, int *no_takeover) {
    int seen[4] = {0, 0, 0, 0};
    *server_bits = 0;
    *no_takeover = 0;
    const char *semi = memchr(s, ';', n);
    const char *name = s;
    size_t name_len = semi ? (size_t)(semi - s) : n;
    trim(&name, &name_len);
    if (!token_eq(name, name_len, "permessage-deflate")) return 0;
    while (semi) {
        const char *p = semi + 1;
        size_t rest = n - (size_t)(p - s);
        semi = memchr(p, ';', rest);
        size_t len = semi ? (size_t)(semi - p) : rest;
        const char *eq = memchr(p, '=', len);
        const char *key = p, *val = NULL;
        size_t key_len = eq ? (size_t)(eq - p) : len, val_len = 0;
        trim(&key, &key_len);
        if (eq) {
            val = eq + 1;
            val_len = len - (size_t)(val - p);
            trim(&val, &val_len);
            if (val_len >= 2 && val[0] == '"' && val[val_len - 1] == '"') val++, val_len -= 2;
        }
        int idx, bits = 0;
        if (token_eq(key, key_len, "server_no_context_takeover")) idx = 0;
        else if (token_eq(key, key_len, "client_no_context_takeover")) idx = 1;
        else if (token_eq(key, key_len, "server_max_window_bits")) idx = 2;
        else if (token_eq(key, key_len, "client_max_window_bits")) idx = 3;
        else return 0;
        if (seen[idx]++) return 0;
        if (val) {
            if (idx < 2 || val_len < 1 || val_len > 2) return 0;
            for (size_t i = 0; i < val_len; i++) {
                if (val[i] < '0' || val[i] > '9') return 0;
                bits = bits * 10 + (val[i] - '0');
            }
            if (bits < 8 || bits > 15 || (val_len == 2 && val[0] == '0')) return 0;
        } else if (idx == 2) {
            return 0; /* server_max_window_bits needs a value */
        }
        if (idx == 2) {
            if (bits == 8) return 0;
            *server_bits = bits;
        }
        if (idx == 0) *no_takeover = 1;
    }
    return 1;
}

/* Returns 0 when the head is incomplete, 1 when handled (upgraded or failed). */
static int handle_handshake(struct conn *c) {
    if (c->in.len > MAX_HEAD) {
        http_error(c, "431 Request Header Fields Too Large");
        return 1;
    }
    char *end = memmem(c->in.p, c->in.len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head_len = (size_t)(end - c->in.p) + 4;
    const char *key = NULL;
    size_t key_len = 0;
    int upgrade = 0, version = 0, get = 0;
    struct buf ext = {0};
    char *line = c->in.p;
    char *head_end = end + 2;
    int first = 1;
    while (line < head_end) {
        char *eol = memmem(line, (size_t)(head_end - line), "\r\n", 2);
        if (!eol) break;
        size_t len = (size_t)(eol - line);
        if (first) {
            get = len > 4 && memcmp(line, "GET ", 4) == 0;
            first = 0;
            c->count = opt.count;
            char *q = memmem(line, len, "count=", 6);
            if (q) {
                long long v = 0;
                int digits = 0;
                for (q += 6; q < eol && *q >= '0' && *q <= '9' && digits < 10; q++, digits++)
                    v = v * 10 + (*q - '0');
                if (digits == 0 || v < 1 || v > MAX_COUNT) {
                    free(ext.p);
                    http_error(c, "400 Bad Request");
                    return 1;
                }
                c->count = v;
            }
        } else {
            char *colon = memchr(line, ':', len);
            if (colon) {
                const char *name = line, *val = colon + 1;
                size_t name_len = (size_t)(colon - line), val_len = len - name_len - 1;
                trim(&val, &val_len);
                if (token_eq(name, name_len, "Sec-WebSocket-Key")) {
                    key = val;
                    key_len = val_len;
                } else if (token_eq(name, name_len, "Upgrade")) {
                    upgrade = has_token(val, val_len, "websocket");
                } else if (token_eq(name, name_len, "Sec-WebSocket-Version")) {
                    version = token_eq(val, val_len, "13");
                } else if (token_eq(name, name_len, "Sec-WebSocket-Extensions")) {
                    if (ext.len) buf_put(&ext, ",", 1);
                    buf_put(&ext, val, val_len);
                }
            }
        }
        line = eol + 2;
    }
    if (!get || !upgrade || !version || !key || key_len == 0 || key_len > 64) {
        free(ext.p);
        http_error(c, "400 Bad Request");
        return 1;
    }
    /* permessage-deflate: the first acceptable offer wins (feed mode with --deflate). */
    int accept_bits = -1, no_takeover = 0;
    if (opt.mode == MODE_FEED && opt.deflate && ext.len) {
        const char *v = ext.p;
        size_t n = ext.len;
        while (n && accept_bits < 0) {
            /* split offers on commas outside quotes */
            size_t len = 0;
            int quoted = 0;
            while (len < n && (quoted || v[len] != ',')) {
                if (v[len] == '"') quoted = !quoted;
                len++;
            }
            int bits, asked_no_takeover;
            if (parse_offer(v, len, &bits, &asked_no_takeover)) {
                accept_bits = bits;
                no_takeover = asked_no_takeover;
            }
            if (len == n) break;
            v += len + 1;
            n -= len + 1;
        }
    }
    free(ext.p);
    char accept[29];
    ws_accept(key, key_len, accept);
    buf_consume(&c->in, head_len);
    c->out.len = 0;
    buf_printf(&c->out,
               "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
               accept);
    if (accept_bits >= 0) {
        c->takeover = opt.takeover && !no_takeover;
        buf_printf(&c->out, "Sec-WebSocket-Extensions: permessage-deflate");
        if (!c->takeover)
            buf_printf(&c->out, "; server_no_context_takeover; client_no_context_takeover");
        if (accept_bits) buf_printf(&c->out, "; server_max_window_bits=%d", accept_bits);
        buf_printf(&c->out, "\r\n");
        c->deflate = 1;
        c->wbits = accept_bits ? accept_bits : 15;
    }
    buf_printf(&c->out, "\r\n");
    c->st = CS_OPEN;
    c->t_open = now_s();
    cpu_s(&c->cpu_user0, &c->cpu_sys0);
    if (opt.mode == MODE_FEED) {
        c->ring = c->deflate ? deflate_ring(c->wbits, c->takeover) : &plain_ring;
        c->feed_total = feed_wire_bytes(c->ring, c->count);
        c->feed_sent = 0;
    }
    return 1;
}

static void queue_close(struct conn *c, int code) {
    uint8_t f[4] = {0x88, 0x02, (uint8_t)(code >> 8), (uint8_t)code};
    buf_put(&c->out, f, 4);
    c->st = CS_CLOSE_SENT;
    c->t_close_sent = now_s();
}

/* Parse client frames (masked). Returns -1 on a protocol error. */
static int handle_frames(struct conn *c) {
    size_t pos = 0;
    int ret = 0;
    while (c->in.len - pos >= 2) {
        uint8_t *p = (uint8_t *)c->in.p + pos;
        size_t avail = c->in.len - pos;
        uint8_t b0 = p[0], b1 = p[1];
        if (!(b1 & 0x80)) {
            ret = -1; /* client frames must be masked */
            break;
        }
        uint64_t n = b1 & 0x7f;
        size_t hl = 2;
        if (n == 126) {
            if (avail < 4) break;
            n = (uint64_t)p[2] << 8 | p[3];
            hl = 4;
        } else if (n == 127) {
            if (avail < 10) break;
            n = 0;
            for (int i = 0; i < 8; i++) n = n << 8 | p[2 + i];
            hl = 10;
        }
        if (n > MAX_IN_FRAME) {
            ret = -1;
            break;
        }
        if (avail < hl + 4 + n) break;
        uint8_t *mask = p + hl, *payload = p + hl + 4;
        for (uint64_t i = 0; i < n; i++) payload[i] ^= mask[i & 3];
        uint8_t opcode = b0 & 0x0f;
        pos += hl + 4 + (size_t)n;
        if (opcode == 0x8) {
            c->peer_closed = 1;
            if (c->st == CS_OPEN) {
                /* echo the close code back (1000 if none) and stop feeding */
                int code = n >= 2 ? (payload[0] << 8 | payload[1]) : 1000;
                if (opt.mode == MODE_FEED) {
                    /* finish the frame being sent, then close */
                    long long done = frames_sent(c);
                    if (feed_wire_bytes(c->ring, done) < c->feed_sent) done++;
                    c->feed_total = feed_wire_bytes(c->ring, done);
                    c->close_code = code;
                } else {
                    queue_close(c, code);
                }
            }
            break;
        }
        if (c->st != CS_OPEN) continue;
        if (opt.mode == MODE_ECHO) {
            uint8_t h[10];
            size_t hlen;
            if (opcode == 0x9) {
                hlen = frame_header(h, 0x8a, (size_t)n); /* pong */
            } else if (opcode == 0xa) {
                continue;
            } else {
                hlen = frame_header(h, b0, (size_t)n);
                if (b0 & 0x80) c->echoed++;
                c->echo_bytes += n;
            }
            buf_put(&c->out, h, hlen);
            buf_put(&c->out, payload, (size_t)n);
        }
        c->received++;
    }
    buf_consume(&c->in, pos);
    return ret;
}

/* Send what can be sent. Returns -1 when the connection is to be dropped. */
static int flush_conn(struct conn *c) {
    if (c->tls_pending) return 0; /* on_readable drives the TLS handshake */
    for (;;) {
        /* TLS: a write OpenSSL could not finish must be retried with the same bytes */
        if (c->out.len && !c->ring_retry) {
            ssize_t w = io_send(c, c->out.p, c->out.len);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                if (errno == EINTR) continue;
                return -1;
            }
            buf_consume(&c->out, (size_t)w);
            continue;
        }
        if (c->st == CS_OPEN && opt.mode == MODE_FEED) {
            if (c->feed_sent >= c->feed_total) {
                queue_close(c, c->close_code ? c->close_code : 1000);
                continue;
            }
            const struct ring *r = c->ring;
            size_t at = (size_t)(c->feed_sent % r->len);
            size_t n = r->len - at;
            if (n > SEND_CHUNK) n = SEND_CHUNK;
            if ((uint64_t)n > c->feed_total - c->feed_sent)
                n = (size_t)(c->feed_total - c->feed_sent);
            ssize_t w = io_send(c, r->data + at, n);
            c->ring_retry = w < 0 && c->ssl && errno == EAGAIN;
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                if (errno == EINTR) continue;
                return -1;
            }
            c->feed_sent += (uint64_t)w;
            continue;
        }
        break;
    }
    int pending = c->out.len > 0 || (c->st == CS_OPEN && opt.mode == MODE_FEED);
    set_out_interest(c, pending);
    if (c->st == CS_CLOSE_SENT && !c->out.len && c->peer_closed) return -1; /* done */
    if (c->st == CS_DONE) return -1;
    return 0;
}

static void on_readable(struct conn *c) {
    if (c->tls_pending) {
        int h = SSL_do_handshake(c->ssl);
        if (h != 1) {
            int e = SSL_get_error(c->ssl, h);
            if (e == SSL_ERROR_WANT_READ) return;
            if (e == SSL_ERROR_WANT_WRITE) {
                set_out_interest(c, 1);
                return;
            }
            conn_free(c);
            return;
        }
        c->tls_pending = 0;
    }
    for (;;) {
        buf_reserve(&c->in, READ_CHUNK);
        ssize_t r = io_recv(c, c->in.p + c->in.len, c->in.cap - c->in.len);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            conn_free(c);
            return;
        }
        if (r == 0) {
            conn_free(c);
            return;
        }
        c->in.len += (size_t)r;
        if (c->st == CS_HANDSHAKE) {
            if (!handle_handshake(c)) continue;
            if (c->st == CS_DONE) {
                conn_free(c);
                return;
            }
        }
        if (c->st == CS_OPEN || c->st == CS_CLOSE_SENT) {
            if (handle_frames(c) < 0) {
                c->out.len = 0;
                if (c->st == CS_OPEN) {
                    uint8_t f[4] = {0x88, 0x02, 0x03, 0xea}; /* 1002 */
                    io_send(c, f, 4);
                }
                conn_free(c);
                return;
            }
        }
        /* TLS: SSL_read returns one record at a time; only EAGAIN means drained */
        if ((size_t)r < READ_CHUNK && !c->ssl) break;
    }
    if (flush_conn(c) < 0) conn_free(c);
}

static void on_accept(int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        if (nconns >= opt.max_conns) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (!c) exit(2);
        c->fd = fd;
        c->id = next_id++;
        c->st = CS_HANDSHAKE;
        if (tls_ctx) {
            c->ssl = SSL_new(tls_ctx);
            if (!c->ssl || !SSL_set_fd(c->ssl, fd)) exit(2);
            SSL_set_accept_state(c->ssl);
            c->tls_pending = 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
        conns[nconns++] = c;
    }
}

static void usage(void) {
    fprintf(stderr,
            "usage: feed_server [--mode feed|echo] [--port P] [--count N] [--size S]\n"
            "                   [--kinds K] [--seed X] [--message FILE] [--deflate]\n"
            "                   [--context-takeover] [--level L] [--max-conns C]\n"
            "                   [--max-seconds T] [--spin] [--dump-corpus]\n"
            "                   [--tls CERT KEY]\n");
    exit(2);
}

int main(int argc, char **argv) {
    int dump = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--deflate")) {
            opt.deflate = 1;
            continue;
        }
        if (!strcmp(a, "--spin")) {
            opt.spin = 1;
            continue;
        }
        if (!strcmp(a, "--context-takeover")) {
            opt.takeover = 1;
            continue;
        }
        if (!strcmp(a, "--dump-corpus")) {
            dump = 1;
            continue;
        }
        if (!v) usage();
        i++;
        if (!strcmp(a, "--mode")) {
            if (!strcmp(v, "feed")) opt.mode = MODE_FEED;
            else if (!strcmp(v, "echo")) opt.mode = MODE_ECHO;
            else usage();
        } else if (!strcmp(a, "--port")) opt.port = atoi(v);
        else if (!strcmp(a, "--count")) opt.count = atoll(v);
        else if (!strcmp(a, "--size")) opt.size = (size_t)atol(v);
        else if (!strcmp(a, "--kinds")) opt.kinds = atoi(v);
        else if (!strcmp(a, "--seed")) opt.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--level")) opt.level = atoi(v);
        else if (!strcmp(a, "--message")) opt.message_file = v;
        else if (!strcmp(a, "--tls") && i + 1 < argc) {
            opt.tls_cert = v;
            opt.tls_key = argv[++i];
        }
        else if (!strcmp(a, "--max-conns")) opt.max_conns = atoi(v);
        else if (!strcmp(a, "--max-seconds")) opt.max_seconds = atof(v);
        else usage();
    }
    if (opt.count < 1 || opt.count > MAX_COUNT || opt.size < 1 || opt.size > MAX_SIZE ||
        opt.kinds < 1 || opt.kinds > MAX_KINDS || opt.max_conns < 1 ||
        opt.max_conns > MAX_CONNS_LIMIT || opt.max_seconds <= 0 || opt.max_seconds > 3600 ||
        opt.level < 0 || opt.level > 9 || opt.port < 0 || opt.port > 65535) {
        fprintf(stderr, "feed_server: option out of range\n");
        usage();
    }
    build_corpus();
    if (dump) { /* the corpus, one message a line, for inspection */
        for (int i = 0; i < opt.kinds; i++) printf("%.*s\n", (int)messages[i].len, messages[i].p);
        return 0;
    }

    if (opt.tls_cert) {
        tls_ctx = SSL_CTX_new(TLS_server_method());
        if (!tls_ctx || !SSL_CTX_set_min_proto_version(tls_ctx, TLS1_3_VERSION) ||
            !SSL_CTX_set_ciphersuites(tls_ctx, "TLS_AES_128_GCM_SHA256") ||
            SSL_CTX_use_certificate_chain_file(tls_ctx, opt.tls_cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(tls_ctx, opt.tls_key, SSL_FILETYPE_PEM) != 1) {
            fprintf(stderr, "feed_server: TLS setup failed\n");
            return 1;
        }
        SSL_CTX_set_mode(tls_ctx,
                         SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 128) < 0) {
        perror("feed_server: bind/listen");
        return 1;
    }
    socklen_t alen = sizeof addr;
    getsockname(lfd, (struct sockaddr *)&addr, &alen);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);
    conns = xmalloc(sizeof *conns * (size_t)opt.max_conns);

    uint64_t total = 0;
    size_t min_len = SIZE_MAX, max_len = 0;
    for (int i = 0; i < opt.kinds; i++) {
        total += messages[i].len;
        if (messages[i].len < min_len) min_len = messages[i].len;
        if (messages[i].len > max_len) max_len = messages[i].len;
    }
    cpu_s(&total_user0, &total_sys0);
    printf("{\"event\":\"listening\",\"port\":%d,\"mode\":\"%s\",\"count\":%lld,\"size\":%zu,"
           "\"kinds\":%d,\"deflate\":%s,\"mean_len\":%.1f,\"min_len\":%zu,\"max_len\":%zu,"
           "\"payload_bytes\":%llu}\n",
           ntohs(addr.sin_port), opt.mode == MODE_FEED ? "feed" : "echo", opt.count, opt.size,
           opt.kinds, opt.deflate ? "true" : "false", (double)total / opt.kinds, min_len,
           max_len, (unsigned long long)feed_payload_bytes(&plain_ring, opt.count));
    fflush(stdout);

    double t_start = now_s();
    struct epoll_event evs[64];
    while (!stop_flag && now_s() - t_start < opt.max_seconds) {
        /* --spin: poll without sleeping while a connection is open (no wake-up latency) */
        int n = epoll_wait(epfd, evs, 64, opt.spin && nconns ? 0 : 200);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                on_accept(lfd);
                continue;
            }
            /* a connection freed earlier in this batch cannot be in it twice */
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                on_readable(c);
            } else if (evs[i].events & EPOLLOUT) {
                if (flush_conn(c) < 0) conn_free(c);
            }
        }
        /* drop connections that never answered our close */
        double t = now_s();
        for (int i = nconns - 1; i >= 0; i--) {
            struct conn *c = conns[i];
            if (c->st == CS_CLOSE_SENT && t - c->t_close_sent > CLOSE_WAIT_S) conn_free(c);
        }
    }
    while (nconns) conn_free(conns[nconns - 1]);
    double user, sys;
    cpu_s(&user, &sys);
    printf("{\"event\":\"exit\",\"connections\":%u,\"seconds\":%.3f,\"cpu_user\":%.6f,"
           "\"cpu_sys\":%.6f,\"reason\":\"%s\"}\n",
           next_id, now_s() - t_start, user - total_user0, sys - total_sys0,
           stop_flag ? "signal" : "max-seconds");
    fflush(stdout);
    close(lfd);
    close(epfd);
    return 0;
}
