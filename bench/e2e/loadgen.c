// SPDX-License-Identifier: MIT
// wsfast end-to-end load generator: one thread, epoll (edge-triggered), non-blocking
// sockets, its own WebSocket client handshake and frame parser. Kept cheap: every data
// frame it sends is built (and masked) once at start-up and sent from one buffer of
// back-to-back copies, so a pipelined send of k frames is one send() call. It reports
// its own CPU share; above 0.9 of a core the run is flagged (the load generator, not the
// server, may be what limits it).
//
// Modes (one JSON line on stdout per run):
//   echo     C connections each keep W frames of S bytes in flight; counts echoes
//            over --duration seconds after --warmup seconds -> msgs/s.
//   latency  C=1, W=1; records every round trip (CLOCK_MONOTONIC) -> p50/p99/p99.9 us.
//   idle     opens N connections, completes the handshakes (optionally one message
//            each with --prime), then reads the server's VmRSS (--server-pid) and holds
//            the connections for --duration seconds (or until stdin closes).
//   fanout   C connections to a broadcast endpoint; connection 0 keeps W messages in
//            flight, the server sends each to every connection; counts deliveries/s.
// Client patterns (echo): by default a connection writes all the frames it may start
// in one send() (its W in-flight frames at once, then one send per received batch);
// --per-echo writes one frame per send(), one for each echo received (the usual
// client: receive a message, send the next).
// --ceiling accepts masked echoes: the raw-TCP ceiling server (tcp_echo.c) returns the
// client's bytes verbatim after the HTTP 101 handshake.
// --deflate offers permessage-deflate (--offer, default: no context takeover both ways)
// and sends a pre-compressed payload (--payload-z file, raw deflate without the
// 00 00 ff ff tail, of the --payload file, compressed with a window of --payload-z-bits,
// default 15; a server asking for a client_max_window_bits too small for it fails the
// run) with RSV1.
// Every echo is verified before it is counted: FIN, opcode, RSV bits, length, and every
// payload byte against what was sent (compressed echoes are inflated with zlib, with
// the context kept across messages when the server did not agree to
// server_no_context_takeover, and compared with the uncompressed payload).
// --sync: after the handshakes print "ready" and wait for a line on stdin before the
// warm-up starts (several load generators measuring the same window).
// --tls: wss (TLS 1.3, TLS_AES_128_GCM_SHA256 only, so every server runs the same
// cipher; the server's certificate is not verified: a loopback benchmark). Sends and
// receives go through OpenSSL's SSL_write/SSL_read on the same non-blocking sockets.
// Limits: 127.0.0.1 only, duration <= 60 s, connections <= 10000.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
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

#define MAX_CONNS 10000
#define MAX_DURATION 60.0
#define RECV_BUF (256 * 1024)
#define DEFLATE_SLACK 1024 /* a compressed echo may exceed the payload by this much */
#define SEND_BUF_CAP (8u << 20)
#define MAX_LAT_SAMPLES (4u << 20)
#define MAX_PENDING_CONNECTS 128
#define READS_PER_TURN 4 /* full reads of one connection before the others get a turn */
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" /* RFC 6455 section 1.3 */

enum state { ST_NEW, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_DEAD };
enum mode { M_ECHO, M_LATENCY, M_IDLE, M_FANOUT };

struct conn {
    int fd;
    int idx;
    enum state st;
    int sender;       /* sends data frames (all in echo, conn 0 in fanout) */
    int credits;      /* frames that may still be started */
    size_t partial;   /* bytes of the current data frame already sent */
    char *hs_buf;     /* handshake response being read */
    size_t hs_len, hs_sent;
    unsigned char hdr[14];
    int hdr_len;
    uint64_t remaining; /* payload bytes left in the frame being received */
    unsigned char op;   /* opcode and flags of that frame (first header byte) */
    uint64_t flen;      /* its payload length */
    unsigned char ctrl[140]; /* a pending pong (masked, key 0) */
    int ctrl_len, ctrl_sent;
    unsigned char ping[125];
    int ping_len;
    uint64_t *tsent; /* ring of send times (latency mode) */
    unsigned thead, ttail;
    uint64_t primed;
    int takeover;          /* the server keeps its compression context across messages */
    z_stream *z;           /* inflater of compressed echoes, made on first use */
    unsigned char *zbuf;   /* the compressed echo being received, plus 4 bytes of tail */
    size_t zlen;
    int queued;            /* in the ready queue: its socket may still hold data */
    SSL *ssl;              /* --tls: the connection's TLS state */
    int tls_pending;       /* --tls: the TLS handshake is not finished yet */
};

static struct {
    enum mode mode;
    int port, conns, window, deflate, ceiling, text, prime, per_echo, sync, payload_z_bits, tls;
    size_t size;
    double duration, warmup;
    const char *path, *payload_file, *payload_z_file, *offer;
    long server_pid;
} opt = {.mode = M_ECHO, .port = 9001, .conns = 1, .window = 1, .size = 64,
         .duration = 3.0, .warmup = 1.0, .path = "/", .server_pid = 0, .payload_z_bits = 15};

static unsigned char *frame;    /* back-to-back copies of the masked frame */
static size_t frame_len, frame_copies;
static unsigned char *payload;  /* what a frame carries on the wire */
static size_t payload_len;
static const unsigned char *expect; /* what an echo's payload must be, byte for byte */
static unsigned char *plain;    /* --deflate: the uncompressed message (--payload) */
static size_t plain_len;
static unsigned char *inflated; /* --deflate: inflate output, plain_len + 1 bytes */
static struct conn *conns;
static int epfd;
/* Connections that stopped reading after READS_PER_TURN full reads. With edge-triggered
 * epoll no new event comes for data already waiting, so they are read again in the next
 * turn of the loop (round robin), and meanwhile the loop keeps checking the clock. */
static struct conn **ready_q, **ready_next;
static int ready_n;
static uint64_t echoes, verified, errors, closed_by_server;
static char first_error[256];
static uint64_t *lat;
static size_t lat_n;
static int measuring;
static volatile sig_atomic_t stop_flag;
static SSL_CTX *tls_ctx;

/* send()/recv() with the same contract on plain and TLS connections: -1 with errno
 * EAGAIN when the operation must wait for the socket, 0 from io_recv at end of stream. */
static ssize_t io_send(struct conn *c, const void *buf, size_t len) {
    if (!c->ssl) return send(c->fd, buf, len, MSG_NOSIGNAL);
    int n = SSL_write(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0) return n;
    int e = SSL_get_error(c->ssl, n);
    errno = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? EAGAIN : EIO;
    return -1;
}

static ssize_t io_recv(struct conn *c, void *buf, size_t len) {
    if (!c->ssl) return recv(c->fd, buf, len, 0);
    int n = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0) return n;
    int e = SSL_get_error(c->ssl, n);
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) return 0;
    errno = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? EAGAIN : EIO;
    return -1;
}

static void tls_init(void) {
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (!tls_ctx || !SSL_CTX_set_min_proto_version(tls_ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_ciphersuites(tls_ctx, "TLS_AES_128_GCM_SHA256")) {
        fprintf(stderr, "TLS setup failed\n");
        exit(2);
    }
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
    /* send() semantics: partial writes, and a retry may pass a longer buffer */
    SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* utime+stime of the whole server process (all threads), in seconds; -1 if unknown. */
static double server_cpu_s(void) {
    if (opt.server_pid <= 0) return -1.0;
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%ld/stat", opt.server_pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1.0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return -1.0;
    /* fields after the command: state(3) ... utime(14) stime(15) */
    unsigned long long ut = 0, st = 0;
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
        field++;
        if (field == 14) ut = strtoull(tok, NULL, 10);
        if (field == 15) {
            st = strtoull(tok, NULL, 10);
            break;
        }
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long server_rss_kb(void) {
    if (opt.server_pid <= 0) return -1;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", opt.server_pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static void fail(struct conn *c, const char *why);

/* A failed system call: the reason with errno's text ("send failed: Connection reset by peer"). */
static void fail_sys(struct conn *c, const char *why) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s: %s", why, strerror(errno));
    fail(c, msg);
}

static void fail(struct conn *c, const char *why) {
    errors++;
    if (!first_error[0])
        snprintf(first_error, sizeof first_error, "conn %d: %s", c ? c->idx : -1, why);
    if (c && c->st != ST_DEAD) {
        c->st = ST_DEAD;
        if (c->fd >= 0) {
            epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
        }
    }
}

static unsigned char *read_file(const char *name, size_t *len) {
    FILE *f = fopen(name, "rb");
    if (!f) {
        perror(name);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (64l << 20)) {
        fprintf(stderr, "%s: bad size\n", name);
        exit(2);
    }
    unsigned char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "%s: read failed\n", name);
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Build one masked client frame of the payload, then copy it back to back. */
static void build_frames(void) {
    if (opt.payload_z_file) {
        payload = read_file(opt.payload_z_file, &payload_len);
    } else if (opt.payload_file) {
        payload = read_file(opt.payload_file, &payload_len);
    } else {
        payload_len = opt.size;
        payload = malloc(payload_len ? payload_len : 1);
        uint32_t x = 2463534242u;
        for (size_t i = 0; i < payload_len; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            payload[i] = (unsigned char)x;
        }
    }
    unsigned char hdr[14];
    size_t h = 0;
    hdr[h++] = (unsigned char)(0x80 | (opt.deflate ? 0x40 : 0) | (opt.text ? 0x1 : 0x2));
    if (payload_len < 126) {
        hdr[h++] = (unsigned char)(0x80 | payload_len);
    } else if (payload_len < 65536) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (unsigned char)(payload_len >> 8);
        hdr[h++] = (unsigned char)payload_len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) hdr[h++] = (unsigned char)((uint64_t)payload_len >> (8 * i));
    }
    const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
    memcpy(hdr + h, key, 4);
    h += 4;
    frame_len = h + payload_len;
    frame_copies = (size_t)opt.window;
    if (frame_copies * frame_len > SEND_BUF_CAP) frame_copies = SEND_BUF_CAP / frame_len;
    if (frame_copies < 1) frame_copies = 1;
    frame = malloc(frame_copies * frame_len);
    if (!frame) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memcpy(frame, hdr, h);
    for (size_t i = 0; i < payload_len; i++) frame[h + i] = payload[i] ^ key[i & 3];
    for (size_t i = 1; i < frame_copies; i++) memcpy(frame + i * frame_len, frame, frame_len);
    /* The ceiling returns the masked bytes verbatim; a WebSocket server unmasks them. */
    expect = opt.ceiling ? frame + h : payload;
    if (opt.deflate) {
        plain = read_file(opt.payload_file, &plain_len);
        inflated = malloc(plain_len + 1);
        if (!inflated) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
    }
}

/* Send the pending pong and as many data frames as the credits allow. */
static void pump(struct conn *c) {
    if (c->st != ST_OPEN) return;
    while (c->ctrl_len && c->partial == 0) {
        ssize_t n = io_send(c, c->ctrl + c->ctrl_sent, (size_t)(c->ctrl_len - c->ctrl_sent));
        if (n < 0) {
            if (errno == EAGAIN) return;
            fail_sys(c, "send (pong) failed");
            return;
        }
        c->ctrl_sent += (int)n;
        if (c->ctrl_sent < c->ctrl_len) return;
        c->ctrl_len = c->ctrl_sent = 0;
    }
    if (!c->sender) return;
    for (;;) {
        size_t want = (c->partial ? frame_len - c->partial : 0) + (size_t)c->credits * frame_len;
        size_t room = frame_copies * frame_len - c->partial;
        if (want > room) want = room;
        /* --per-echo: one frame per send() (the rest of a partly sent one, or a new one) */
        if (opt.per_echo && want > frame_len - c->partial) want = frame_len - c->partial;
        if (want == 0) return;
        uint64_t t = opt.mode == M_LATENCY ? now_ns() : 0;
        ssize_t n = io_send(c, frame + c->partial, want);
        if (n < 0) {
            if (errno == EAGAIN) return;
            fail_sys(c, "send failed");
            return;
        }
        size_t p = c->partial + (size_t)n;
        size_t done = p / frame_len, part = p % frame_len;
        int started = (int)done + (part ? 1 : 0) - (c->partial ? 1 : 0);
        if (c->tsent)
            for (int i = 0; i < started; i++) c->tsent[(c->thead++) % (unsigned)opt.window] = t;
        c->credits -= started;
        c->partial = part;
        if ((size_t)n < want) return; /* socket buffer full: wait for EPOLLOUT */
    }
}

/* A data frame's header, checked before its payload arrives: FIN set, the opcode sent,
 * RSV1 exactly when compressed, and the length of what was sent (a compressed echo: at
 * most the payload plus DEFLATE_SLACK bytes). Returns 0 after fail(). */
static int check_data_header(struct conn *c) {
    unsigned char want_op = opt.text ? 0x1 : 0x2;
    if (!(c->op & 0x80) || (c->op & 0x0f) != want_op) {
        fail(c, "unexpected frame type (fragmented or wrong opcode)");
        return 0;
    }
    if (opt.deflate && !opt.ceiling) {
        if ((c->op & 0x70) != 0x40) {
            fail(c, "echo not compressed (RSV1 clear) or other RSV bits set");
            return 0;
        }
        if (c->flen > plain_len + DEFLATE_SLACK) {
            fail(c, "compressed echo too long");
            return 0;
        }
        if (!c->zbuf) c->zbuf = malloc(plain_len + DEFLATE_SLACK + 4);
        if (!c->zbuf) {
            fail(c, "out of memory");
            return 0;
        }
        c->zlen = 0;
        return 1;
    }
    /* the ceiling echoes our own frames, RSV1 included when they are compressed */
    if ((c->op & 0x70) != (opt.deflate ? 0x40 : 0)) {
        fail(c, "unexpected RSV bits");
        return 0;
    }
    if (c->flen != payload_len) {
        fail(c, "echo has the wrong length");
        return 0;
    }
    return 1;
}

/* Inflate the compressed echo collected in c->zbuf and compare it with the message
 * (RFC 7692 7.2.2: append 00 00 ff ff; reset the context unless the server keeps it). */
static int verify_deflated(struct conn *c) {
    if (!c->z) {
        c->z = calloc(1, sizeof *c->z);
        if (!c->z || inflateInit2(c->z, -15) != Z_OK) {
            fail(c, "inflateInit2 failed");
            return 0;
        }
    } else if (!c->takeover && inflateReset(c->z) != Z_OK) {
        fail(c, "inflateReset failed");
        return 0;
    }
    memcpy(c->zbuf + c->zlen, "\x00\x00\xff\xff", 4);
    z_stream *z = c->z;
    z->next_in = c->zbuf;
    z->avail_in = (uInt)(c->zlen + 4);
    z->next_out = inflated;
    z->avail_out = (uInt)(plain_len + 1);
    int rc = inflate(z, Z_SYNC_FLUSH);
    size_t produced = plain_len + 1 - z->avail_out;
    if ((rc != Z_OK && rc != Z_BUF_ERROR) || z->avail_in != 0) {
        fail(c, "compressed echo does not inflate to one message");
        return 0;
    }
    if (produced != plain_len || memcmp(inflated, plain, plain_len) != 0) {
        fail(c, "inflated echo differs from what was sent");
        return 0;
    }
    return 1;
}

static void on_frame(struct conn *c) {
    unsigned char opcode = c->op & 0x0f;
    if (opcode == 0x9) { /* ping: answer with a pong carrying its payload */
        unsigned char *q = c->ctrl;
        q[0] = 0x8a;
        q[1] = (unsigned char)(0x80 | c->ping_len);
        memset(q + 2, 0, 4);
        memcpy(q + 6, c->ping, (size_t)c->ping_len);
        c->ctrl_len = 6 + c->ping_len;
        c->ctrl_sent = 0;
        return;
    }
    if (opcode == 0xa) return;
    if (opcode == 0x8) {
        closed_by_server++;
        fail(c, "server sent close");
        return;
    }
    /* header checked in parse(), payload bytes compared as they arrived */
    if (opt.deflate && !opt.ceiling && !verify_deflated(c)) return;
    verified++;
    if (c->st == ST_OPEN && measuring) echoes++;
    if (opt.mode == M_IDLE) {
        c->primed++;
        return;
    }
    if (opt.mode == M_FANOUT && !c->sender) return;
    c->credits++;
    if (c->tsent && c->ttail != c->thead) {
        uint64_t t0 = c->tsent[(c->ttail++) % (unsigned)opt.window];
        if (measuring && lat_n < MAX_LAT_SAMPLES) lat[lat_n++] = now_ns() - t0;
    }
}

/* Parse every frame in buf: headers are validated, payload bytes compared (or, when
 * compressed, collected for inflating) as they arrive. */
static void parse(struct conn *c, const unsigned char *buf, size_t n) {
    size_t i = 0;
    while (i < n && c->st == ST_OPEN) {
        if (c->remaining) {
            size_t take = n - i;
            if (take > c->remaining) take = (size_t)c->remaining;
            unsigned char opcode = c->op & 0x0f;
            size_t off = (size_t)(c->flen - c->remaining);
            if (opcode == 0x9) {
                memcpy(c->ping + off, buf + i, take);
            } else if (opcode < 0x8) {
                if (opt.deflate && !opt.ceiling) {
                    memcpy(c->zbuf + off, buf + i, take);
                    c->zlen = off + take;
                } else if (memcmp(buf + i, expect + off, take) != 0) {
                    fail(c, "echo payload differs from what was sent");
                    return;
                }
            }
            c->remaining -= take;
            i += take;
            if (!c->remaining) on_frame(c);
            continue;
        }
        /* header: gather up to 14 bytes until complete */
        for (;;) {
            if (c->hdr_len >= 2) {
                unsigned char l = c->hdr[1] & 0x7f;
                int need = 2 + (l == 126 ? 2 : l == 127 ? 8 : 0) + ((c->hdr[1] & 0x80) ? 4 : 0);
                if (c->hdr_len >= need) break;
            }
            if (i >= n) return;
            c->hdr[c->hdr_len++] = buf[i++];
        }
        unsigned char b0 = c->hdr[0], b1 = c->hdr[1];
        if ((b1 & 0x80) && !opt.ceiling) {
            fail(c, "server frame is masked");
            return;
        }
        uint64_t len = b1 & 0x7f;
        if (len == 126) {
            len = ((uint64_t)c->hdr[2] << 8) | c->hdr[3];
        } else if (len == 127) {
            len = 0;
            for (int k = 0; k < 8; k++) len = (len << 8) | c->hdr[2 + k];
        }
        c->hdr_len = 0;
        c->op = b0;
        c->flen = len;
        c->remaining = len;
        if ((b0 & 0x08) && len > 125) {
            fail(c, "control frame too long");
            return;
        }
        if ((b0 & 0x0f) == 0x9) c->ping_len = (int)len;
        if ((b0 & 0x0f) < 0x8 && !check_data_header(c)) return;
        if (!len) on_frame(c);
    }
}

static void start_connect(struct conn *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(c, "socket() failed (fd limit?)");
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* 127.0.0.1 only */
    c->fd = fd;
    c->st = ST_CONNECTING;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        fail(c, "connect failed");
        return;
    }
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
}

static char request[1024];
static size_t request_len;

static int handshake_step(struct conn *c, unsigned char *rbuf) {
    if (c->st == ST_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            fail(c, "connect refused");
            return 0;
        }
        c->st = ST_HANDSHAKE;
        c->hs_buf = malloc(4096);
        c->hs_len = 0;
        c->hs_sent = 0;
        if (tls_ctx) {
            c->ssl = SSL_new(tls_ctx);
            if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) {
                fail(c, "TLS: SSL_new failed");
                return 0;
            }
            SSL_set_connect_state(c->ssl);
            c->tls_pending = 1;
        }
    }
    if (c->tls_pending) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                fail(c, "TLS handshake failed");
            return 0;
        }
        c->tls_pending = 0;
    }
    while (c->hs_sent < request_len) {
        ssize_t n = io_send(c, request + c->hs_sent, request_len - c->hs_sent);
        if (n < 0) {
            if (errno == EAGAIN) return 0;
            fail_sys(c, "handshake send failed");
            return 0;
        }
        c->hs_sent += (size_t)n;
    }
    for (;;) {
        ssize_t n = io_recv(c, c->hs_buf + c->hs_len, 4095 - c->hs_len);
        if (n < 0) {
            if (errno == EAGAIN) return 0;
            fail_sys(c, "handshake recv failed");
            return 0;
        }
        if (n == 0) {
            fail(c, "server closed during handshake");
            return 0;
        }
        c->hs_len += (size_t)n;
        c->hs_buf[c->hs_len] = 0;
        char *end = strstr(c->hs_buf, "\r\n\r\n");
        if (!end) {
            if (c->hs_len >= 4095) {
                fail(c, "handshake response too long");
                return 0;
            }
            continue;
        }
        if (strncmp(c->hs_buf, "HTTP/1.1 101", 12) != 0) {
            fail(c, "handshake: no 101");
            return 0;
        }
        if (!strcasestr(c->hs_buf, WS_ACCEPT)) {
            fail(c, "handshake: bad Sec-WebSocket-Accept");
            return 0;
        }
        int has_pmd = strcasestr(c->hs_buf, "permessage-deflate") != NULL;
        if (has_pmd != (opt.deflate != 0)) {
            fail(c, opt.deflate ? "server declined permessage-deflate"
                                : "server sent permessage-deflate unasked");
            return 0;
        }
        if (opt.deflate && !opt.ceiling) {
            char saved = end[2];
            end[2] = 0; /* search the response head only */
            c->takeover = strcasestr(c->hs_buf, "server_no_context_takeover") == NULL;
            const char *cb = strcasestr(c->hs_buf, "client_max_window_bits=");
            int bits = cb ? atoi(cb + 23 + (cb[23] == '"')) : 15;
            end[2] = saved;
            /* our frames were compressed with a window of 2^payload_z_bits, and no
             * match reaches further back than the message is long */
            int need = 8;
            while (need < opt.payload_z_bits && ((size_t)1 << need) < plain_len) need++;
            if (bits < need || bits > 15) {
                fail(c, "handshake: client_max_window_bits too small for the payload");
                return 0;
            }
        }
        size_t head = (size_t)(end + 4 - c->hs_buf);
        size_t extra = c->hs_len - head;
        memcpy(rbuf, c->hs_buf + head, extra);
        free(c->hs_buf);
        c->hs_buf = NULL;
        c->st = ST_OPEN;
        if (extra) parse(c, rbuf, extra);
        return 1;
    }
}

static void on_readable(struct conn *c, unsigned char *rbuf) {
    for (int turn = 0;; turn++) {
        if (turn == READS_PER_TURN) { /* fairness: the rest in a later turn */
            if (!c->queued) {
                c->queued = 1;
                ready_next[ready_n++] = c;
            }
            return;
        }
        /* every byte is read and compared: no MSG_TRUNC discarding in the kernel */
        ssize_t n = io_recv(c, rbuf, RECV_BUF);
        if (n < 0) {
            if (errno != EAGAIN) fail_sys(c, "recv failed");
            return;
        }
        if (n == 0) {
            closed_by_server++;
            fail(c, "server closed the connection");
            return;
        }
        parse(c, rbuf, (size_t)n);
        if (c->st != ST_OPEN) return;
        pump(c);
        /* drained: the next edge will come (TLS: SSL_read returns one record at a time,
         * so only EAGAIN says the socket and OpenSSL's buffer are both empty) */
        if ((size_t)n < RECV_BUF && !c->ssl) return;
    }
}

/* Give every queued connection its next turn of reads. */
static void run_ready(unsigned char *rbuf) {
    int n = ready_n;
    struct conn **turn = ready_next;
    ready_next = ready_q;
    ready_q = turn;
    ready_n = 0;
    for (int i = 0; i < n; i++) {
        struct conn *c = turn[i];
        c->queued = 0;
        if (c->st == ST_OPEN) on_readable(c, rbuf);
    }
}

static void on_stop(int sig) {
    (void)sig;
    stop_flag = 1;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p) {
    if (!lat_n) return 0;
    size_t k = (size_t)(p * (double)(lat_n - 1) + 0.5);
    return (double)lat[k] / 1000.0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen MODE --port P [--conns C] [--window W] [--size S] [--duration D]\n"
            "  [--warmup D] [--path /] [--text] [--payload FILE] [--deflate --payload-z FILE\n"
            "  [--payload-z-bits B (its window, default 15)]]\n"
            "  [--offer EXT] [--ceiling] [--server-pid PID] [--prime K] [--per-echo] [--sync]\n"
            "  [--tls]\n"
            "MODE: echo | latency | idle | fanout\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    if (!strcmp(argv[1], "echo")) opt.mode = M_ECHO;
    else if (!strcmp(argv[1], "latency")) opt.mode = M_LATENCY;
    else if (!strcmp(argv[1], "idle")) opt.mode = M_IDLE;
    else if (!strcmp(argv[1], "fanout")) opt.mode = M_FANOUT;
    else usage();
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--text")) { opt.text = 1; continue; }
        if (!strcmp(a, "--deflate")) { opt.deflate = 1; continue; }
        if (!strcmp(a, "--ceiling")) { opt.ceiling = 1; continue; }
        if (!strcmp(a, "--per-echo")) { opt.per_echo = 1; continue; }
        if (!strcmp(a, "--sync")) { opt.sync = 1; continue; }
        if (!strcmp(a, "--tls")) { opt.tls = 1; continue; }
        if (!v) usage();
        i++;
        if (!strcmp(a, "--port")) opt.port = atoi(v);
        else if (!strcmp(a, "--conns")) opt.conns = atoi(v);
        else if (!strcmp(a, "--window")) opt.window = atoi(v);
        else if (!strcmp(a, "--size")) opt.size = (size_t)strtoull(v, NULL, 10);
        else if (!strcmp(a, "--duration")) opt.duration = atof(v);
        else if (!strcmp(a, "--warmup")) opt.warmup = atof(v);
        else if (!strcmp(a, "--path")) opt.path = v;
        else if (!strcmp(a, "--payload")) opt.payload_file = v;
        else if (!strcmp(a, "--payload-z")) opt.payload_z_file = v;
        else if (!strcmp(a, "--payload-z-bits")) opt.payload_z_bits = atoi(v);
        else if (!strcmp(a, "--offer")) opt.offer = v;
        else if (!strcmp(a, "--server-pid")) opt.server_pid = atol(v);
        else if (!strcmp(a, "--prime")) opt.prime = atoi(v);
        else usage();
    }
    if (opt.mode == M_LATENCY) opt.conns = opt.window = 1;
    if (opt.conns < 1 || opt.conns > MAX_CONNS) {
        fprintf(stderr, "--conns must be 1..%d\n", MAX_CONNS);
        return 2;
    }
    if (opt.window < 1 || opt.window > 1024 || opt.port < 1 || opt.port > 65535) usage();
    if (opt.duration <= 0 || opt.duration > MAX_DURATION || opt.warmup < 0 ||
        opt.warmup > MAX_DURATION) {
        fprintf(stderr, "--duration and --warmup must be within 0..%g s\n", MAX_DURATION);
        return 2;
    }
    if (opt.payload_z_bits < 8 || opt.payload_z_bits > 15) usage();
    if (opt.deflate && (!opt.payload_z_file || !opt.payload_file)) {
        fprintf(stderr, "--deflate needs --payload and --payload-z (its raw deflate)\n");
        return 2;
    }
    if (opt.payload_file) { /* the uncompressed size, also with --payload-z */
        size_t n;
        free(read_file(opt.payload_file, &n));
        opt.size = n;
    }
    if (opt.prime < 0 || opt.prime > 1) opt.prime = 1;

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);

    build_frames();
    const char *ext = opt.offer ? opt.offer
                      : opt.deflate ? "permessage-deflate; client_no_context_takeover; "
                                      "server_no_context_takeover"
                                    : NULL;
    request_len = (size_t)snprintf(
        request, sizeof request,
        "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
        "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
        opt.path, opt.port, ext ? "Sec-WebSocket-Extensions: " : "", ext ? ext : "",
        ext ? "\r\n" : "");

    if (opt.tls) tls_init();
    epfd = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)opt.conns, sizeof *conns);
    ready_q = calloc((size_t)opt.conns, sizeof *ready_q);
    ready_next = calloc((size_t)opt.conns, sizeof *ready_next);
    unsigned char *rbuf = malloc(RECV_BUF);
    if (opt.mode == M_LATENCY) lat = malloc(MAX_LAT_SAMPLES * sizeof *lat);
    for (int i = 0; i < opt.conns; i++) {
        conns[i].fd = -1;
        conns[i].idx = i;
        conns[i].sender = opt.mode == M_ECHO || opt.mode == M_LATENCY ||
                          (opt.mode == M_FANOUT && i == 0);
        conns[i].credits = opt.window;
        if (opt.mode == M_LATENCY) conns[i].tsent = calloc((size_t)opt.window, sizeof(uint64_t));
    }

    long rss_before = server_rss_kb();
    double srv_cpu_before_connect = server_cpu_s();
    (void)srv_cpu_before_connect;
    struct epoll_event evs[256];
    uint64_t t_setup = now_ns();
    int next = 0, open = 0, pending = 0;

    /* Phase 1: connect and handshake, at most MAX_PENDING_CONNECTS at a time. */
    while (open + (int)errors < opt.conns && !stop_flag) {
        while (next < opt.conns && pending < MAX_PENDING_CONNECTS) {
            start_connect(&conns[next++]);
            pending++;
        }
        int n = epoll_wait(epfd, evs, 256, ready_n ? 0 : 100);
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            if (c->st == ST_CONNECTING || c->st == ST_HANDSHAKE) {
                int was = errors > 0;
                if (handshake_step(c, rbuf)) {
                    open++;
                    pending--;
                } else if (c->st == ST_DEAD) {
                    pending--;
                }
                (void)was;
            } else if (c->st == ST_OPEN) {
                if (evs[k].events & EPOLLIN) on_readable(c, rbuf);
            }
        }
        run_ready(rbuf);
        if (errors) break;
        if (now_ns() - t_setup > 30000000000ull) {
            fail(NULL, "timeout opening the connections");
            break;
        }
    }
    double setup_s = (double)(now_ns() - t_setup) / 1e9;
    if (opt.sync) { /* several load generators: start the warm-up together */
        printf("ready\n");
        fflush(stdout);
        char line[16];
        if (!fgets(line, sizeof line, stdin)) stop_flag = 1;
    }

    uint64_t t0 = now_ns();
    uint64_t t_warm_end = t0 + (uint64_t)(opt.warmup * 1e9);
    uint64_t t_end = t_warm_end + (uint64_t)(opt.duration * 1e9);
    double cpu0 = 0, cpu1 = 0, srv0 = -1, srv1 = -1;
    uint64_t tm0 = 0, tm1 = 0;
    long rss_after = -1;

    if (opt.mode == M_IDLE && !errors) {
        /* optionally one message per connection (allocates compression state) */
        if (opt.prime) {
            for (int i = 0; i < opt.conns; i++) {
                conns[i].sender = 1;
                conns[i].credits = 1;
                pump(&conns[i]);
                conns[i].sender = 0;
            }
            uint64_t dl = now_ns() + 20000000000ull;
            uint64_t got = 0;
            while (!stop_flag && !errors && now_ns() < dl) {
                got = 0;
                for (int i = 0; i < opt.conns; i++) got += conns[i].primed ? 1 : 0;
                if (got == (uint64_t)opt.conns) break;
                int n = epoll_wait(epfd, evs, 256, ready_n ? 0 : 50);
                for (int k = 0; k < n; k++) {
                    struct conn *c = evs[k].data.ptr;
                    if (c->st != ST_OPEN) continue;
                    if (evs[k].events & EPOLLIN) on_readable(c, rbuf);
                    if (evs[k].events & EPOLLOUT) {
                        c->sender = c->primed == 0;
                        pump(c);
                        c->sender = 0;
                    }
                }
                run_ready(rbuf);
            }
            if (got != (uint64_t)opt.conns && !errors) fail(NULL, "priming echoes missing");
        }
        /* settle, then read the server's RSS; hold until --duration or stdin EOF */
        uint64_t settle = now_ns() + 500000000ull;
        while (now_ns() < settle && !stop_flag) {
            int n = epoll_wait(epfd, evs, 256, ready_n ? 0 : 50);
            for (int k = 0; k < n; k++) {
                struct conn *c = evs[k].data.ptr;
                if (c->st == ST_OPEN && (evs[k].events & EPOLLIN)) on_readable(c, rbuf);
                if (c->st == ST_OPEN) pump(c);
            }
            run_ready(rbuf);
        }
        rss_after = server_rss_kb();
        fprintf(stderr, "loadgen: ready %d connections\n", opt.conns);
        t_end = now_ns() + (uint64_t)(opt.duration * 1e9);
        int watch_stdin = !isatty(0) && opt.server_pid <= 0;
        struct epoll_event se = {.events = EPOLLIN, .data.ptr = NULL};
        if (watch_stdin && epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &se) != 0) watch_stdin = 0;
        if (opt.server_pid > 0) t_end = now_ns(); /* measured already: no need to hold */
        while (!stop_flag && now_ns() < t_end) {
            int n = epoll_wait(epfd, evs, 256, ready_n ? 0 : 100);
            for (int k = 0; k < n; k++) {
                struct conn *c = evs[k].data.ptr;
                if (!c) {
                    stop_flag = 1;
                    break;
                }
                if (c->st == ST_OPEN && (evs[k].events & EPOLLIN)) on_readable(c, rbuf);
                if (c->st == ST_OPEN) pump(c);
            }
            run_ready(rbuf);
        }
    } else if (!errors) {
        for (int i = 0; i < opt.conns; i++) pump(&conns[i]);
        for (;;) {
            uint64_t t = now_ns();
            if (!measuring && t >= t_warm_end && !tm0) {
                measuring = 1;
                tm0 = t;
                cpu0 = cpu_s();
                srv0 = server_cpu_s();
                echoes = 0;
            }
            if (t >= t_end || stop_flag || errors) break;
            int n = epoll_wait(epfd, evs, 256, ready_n ? 0 : 10);
            for (int k = 0; k < n; k++) {
                struct conn *c = evs[k].data.ptr;
                if (c->st != ST_OPEN) continue;
                if (evs[k].events & EPOLLIN) on_readable(c, rbuf);
                if (c->st == ST_OPEN && (evs[k].events & EPOLLOUT)) pump(c);
                if (c->st == ST_OPEN && (evs[k].events & (EPOLLERR | EPOLLHUP)))
                    fail(c, "socket error/hangup");
            }
            run_ready(rbuf);
        }
        tm1 = now_ns();
        cpu1 = cpu_s();
        srv1 = server_cpu_s();
    }

    /* Close politely where a frame boundary allows it (code 1000), then just exit. */
    static const unsigned char close_frame[8] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8};
    for (int i = 0; i < opt.conns; i++) {
        struct conn *c = &conns[i];
        if (c->st == ST_OPEN && c->partial == 0 && c->ctrl_len == 0)
            if (io_send(c, close_frame, sizeof close_frame) > 0)
                shutdown(c->fd, SHUT_WR);
    }

    double wall = tm1 > tm0 && tm0 ? (double)(tm1 - tm0) / 1e9 : 0;
    double lg_cpu = wall > 0 ? (cpu1 - cpu0) / wall : 0;
    double msgs_s = wall > 0 ? (double)echoes / wall : 0;
    double srv_cpu = srv0 >= 0 && srv1 >= 0 ? srv1 - srv0 : -1;
    printf("{\"mode\":\"%s\",\"port\":%d,\"conns\":%d,\"window\":%d,\"size\":%zu,"
           "\"wire_payload\":%zu,\"text\":%s,\"deflate\":%s,\"ceiling\":%s,"
           "\"setup_s\":%.3f,\"duration_s\":%.4f,\"msgs\":%llu,\"msgs_per_s\":%.1f,"
           "\"mb_per_s\":%.2f,\"loadgen_cpu\":%.3f,\"saturated\":%s,\"server_cpu_s\":%.3f,"
           "\"server_cpu_share\":%.3f,\"msgs_per_server_cpu_s\":%.1f,"
           "\"errors\":%llu,\"closed_by_server\":%llu,\"verified\":%llu,"
           "\"pattern\":\"%s\",\"takeover\":%s",
           argv[1], opt.port, opt.conns, opt.window, opt.size, payload_len,
           opt.text ? "true" : "false", opt.deflate ? "true" : "false",
           opt.ceiling ? "true" : "false", setup_s, wall, (unsigned long long)echoes, msgs_s,
           msgs_s * (double)opt.size / 1e6, lg_cpu, lg_cpu > 0.9 ? "true" : "false", srv_cpu,
           srv_cpu >= 0 && wall > 0 ? srv_cpu / wall : -1.0,
           srv_cpu > 0 ? (double)echoes / srv_cpu : -1.0, (unsigned long long)errors,
           (unsigned long long)closed_by_server, (unsigned long long)verified,
           opt.per_echo ? "per-echo" : "batch", conns[0].takeover ? "true" : "false");
    if (opt.mode == M_LATENCY) {
        qsort(lat, lat_n, sizeof *lat, cmp_u64);
        double sum = 0;
        for (size_t i = 0; i < lat_n; i++) sum += (double)lat[i];
        printf(",\"samples\":%zu,\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,"
               "\"mean_us\":%.2f,\"min_us\":%.2f,\"max_us\":%.2f",
               lat_n, pct(0.5), pct(0.99), pct(0.999), lat_n ? sum / (double)lat_n / 1000 : 0,
               lat_n ? (double)lat[0] / 1000 : 0, lat_n ? (double)lat[lat_n - 1] / 1000 : 0);
    }
    if (opt.mode == M_IDLE) {
        printf(",\"rss_before_kb\":%ld,\"rss_after_kb\":%ld,\"bytes_per_conn\":%.0f", rss_before,
               rss_after,
               rss_before > 0 && rss_after > 0
                   ? (double)(rss_after - rss_before) * 1024.0 / opt.conns
                   : -1.0);
    }
    char esc[300];
    size_t j = 0;
    for (size_t i = 0; first_error[i] && j < sizeof esc - 2; i++)
        if (first_error[i] != '"' && first_error[i] != '\\') esc[j++] = first_error[i];
    esc[j] = 0;
    printf(",\"error\":\"%s\"}\n", esc);
    fflush(stdout);
    return errors ? 1 : 0;
}
