// SPDX-License-Identifier: MIT
// The raw-TCP ceiling of the end-to-end benchmark: an epoll echo server in C that
// answers the WebSocket opening handshake (HTTP 101 with Sec-WebSocket-Accept, hence
// the small SHA-1 below) and then echoes every byte back verbatim, with no framing at
// all. The client's masked frames come back masked; `loadgen --ceiling` accepts them.
// Whatever a WebSocket server does per message costs on top of this.
//
// usage: tcp_echo --port P      (listens on 127.0.0.1 only; prints a ready line)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* The same read size as wsfast's loop: a smaller one would make the ceiling lower. */
#define BUF_SIZE (1024 * 1024)
#define HEAD_MAX 8192

/* ---- SHA-1 (FIPS 180-4), just enough for Sec-WebSocket-Accept ---- */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const unsigned char *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static void sha1(const unsigned char *msg, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    size_t i = 0;
    for (; i + 64 <= len; i += 64) sha1_block(h, msg + i);
    unsigned char tail[128] = {0};
    size_t rest = len - i;
    memcpy(tail, msg + i, rest);
    tail[rest] = 0x80;
    size_t tlen = rest + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int k = 0; k < 8; k++) tail[tlen - 1 - k] = (unsigned char)(bits >> (8 * k));
    sha1_block(h, tail);
    if (tlen == 128) sha1_block(h, tail + 64);
    for (int k = 0; k < 5; k++)
        for (int j = 0; j < 4; j++) out[4 * k + j] = (unsigned char)(h[k] >> (24 - 8 * j));
}

static void base64(const unsigned char *in, size_t len, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tab[v & 63] : '=';
    }
    out[o] = 0;
}

/* ---- the server ---- */

struct conn {
    int fd;
    int open;             /* handshake done */
    char *head;           /* request head being read */
    size_t head_len;
    unsigned char *pend;  /* bytes not yet echoed (socket buffer was full) */
    size_t pend_len, pend_off;
};

static int epfd;
static unsigned char buf[BUF_SIZE];

static void drop(struct conn *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->head);
    free(c->pend);
    free(c);
}

/* Send data; keep what did not fit. Returns 0 if the connection failed. */
static int emit(struct conn *c, const unsigned char *data, size_t len) {
    size_t off = 0;
    if (!c->pend_len) {
        while (off < len) {
            ssize_t n = send(c->fd, data + off, len - off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN) break;
                return 0;
            }
            off += (size_t)n;
        }
        if (off == len) return 1;
    }
    size_t rest = len - off;
    unsigned char *p = realloc(c->pend, c->pend_len + rest);
    if (!p) return 0;
    memcpy(p + c->pend_len, data + off, rest);
    c->pend = p;
    c->pend_len += rest;
    return 1;
}

static int flush_pending(struct conn *c) {
    while (c->pend_off < c->pend_len) {
        ssize_t n = send(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off, MSG_NOSIGNAL);
        if (n < 0) return errno == EAGAIN ? 1 : 0;
        c->pend_off += (size_t)n;
    }
    free(c->pend);
    c->pend = NULL;
    c->pend_len = c->pend_off = 0;
    return 1;
}

static int handshake(struct conn *c, const unsigned char *data, size_t len, size_t *used) {
    size_t room = HEAD_MAX - c->head_len;
    size_t take = len < room ? len : room;
    memcpy(c->head + c->head_len, data, take);
    c->head_len += take;
    c->head[c->head_len] = 0;
    char *end = strstr(c->head, "\r\n\r\n");
    if (!end) {
        *used = take;
        return c->head_len < HEAD_MAX;
    }
    size_t head = (size_t)(end + 4 - c->head);
    *used = take - (c->head_len - head); /* bytes after the head are frames */
    char *k = strcasestr(c->head, "\r\nSec-WebSocket-Key:");
    if (!k) return 0;
    k += 20;
    while (*k == ' ' || *k == '\t') k++;
    char key[128];
    size_t n = 0;
    while (k[n] && k[n] != '\r' && k[n] != ' ' && n < 64) n++;
    memcpy(key, k, n);
    memcpy(key + n, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    unsigned char digest[20];
    sha1((unsigned char *)key, n + 36, digest);
    char accept[32];
    base64(digest, 20, accept);
    char resp[256];
    int rl = snprintf(resp, sizeof resp,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                      accept);
    free(c->head);
    c->head = NULL;
    c->open = 1;
    return emit(c, (unsigned char *)resp, (size_t)rl);
}

static void on_event(struct conn *c, uint32_t ev) {
    if (ev & EPOLLOUT) {
        if (!flush_pending(c)) {
            drop(c);
            return;
        }
    }
    if (c->pend_len) return; /* back-pressure: read again once the echo drained */
    for (;;) {
        ssize_t n = recv(c->fd, buf, BUF_SIZE, 0);
        if (n < 0) {
            if (errno == EAGAIN) return;
            drop(c);
            return;
        }
        if (n == 0) {
            drop(c);
            return;
        }
        size_t off = 0;
        if (!c->open) {
            if (!handshake(c, buf, (size_t)n, &off)) {
                drop(c);
                return;
            }
        }
        if (c->open && off < (size_t)n && !emit(c, buf + off, (size_t)n - off)) {
            drop(c);
            return;
        }
        if (c->pend_len) return;
        if ((size_t)n < BUF_SIZE) return;
    }
}

static volatile sig_atomic_t stop_flag;
static void on_stop(int sig) {
    (void)sig;
    stop_flag = 1;
}

int main(int argc, char **argv) {
    int port = 9100;
    for (int i = 1; i + 1 < argc; i += 2)
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
    if (port < 1 || port > 65535) {
        fprintf(stderr, "usage: tcp_echo --port P\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 4096) < 0) {
        perror("tcp_echo: bind/listen");
        return 1;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event le = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, ls, &le);
    printf("tcp_echo listening on ws://127.0.0.1:%d\n", port);
    fflush(stdout);
    struct epoll_event evs[256];
    while (!stop_flag) {
        int n = epoll_wait(epfd, evs, 256, 200);
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            if (!c) {
                for (;;) {
                    int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    nc->head = malloc(HEAD_MAX + 1);
                    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = nc};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
                }
                continue;
            }
            on_event(c, evs[k].events);
        }
    }
    return 0;
}
