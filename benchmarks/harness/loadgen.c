/*
 * A closed-loop HTTP/1.1 load generator that keeps every request: when it started, how long it took, and what
 * came back (a status, or which socket error). wrk reports totals only; the timelines of scripts/bench all and
 * the loss accounting of scripts/chaos need each request on a clock, failures included.
 *
 *   loadgen --port P --path /x [--header "K: V"]... [--connections 64] [--seconds 10] [--close]
 *           [--timeout 10] [--out requests.csv]
 *
 * A header value may hold "@@@@@@@@@@@@@@@@": every request then carries 16 fresh hex digits there (a flood of
 * distinct made-up bearer tokens, each one a cache miss for the server).
 *
 * One thread, epoll, non-blocking sockets on 127.0.0.1. Each connection sends a request as soon as the previous
 * answer is complete (keep-alive), or opens a new connection per request with --close. A connection that fails
 * is reopened after 10 ms, so a stopped server is probed 100 times a second per connection instead of spun on.
 * Output, one line per request: start offset in microseconds, latency in microseconds, and the status code or
 * a negative error: -1 connect refused or failed, -2 reset or closed before a full answer, -3 timed out,
 * -4 not HTTP. Requests still in flight at the end are not written: they neither failed nor completed.
 * A summary goes to stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum phase { IDLE, CONNECTING, WRITING, READING, WAITING };

struct conn {
    int fd;
    enum phase phase;
    int64_t started;    /* request start, µs since the run began */
    int64_t retry_at;   /* WAITING: when to reconnect */
    size_t written;
    char *buf;
    size_t len, cap;
    long header_end;    /* offset of the body, -1 until the headers are complete */
    long content_length;
    int status;
    int server_closes;
};

struct record { int64_t start, latency; int status; };

static struct record *records;
static size_t record_count, record_cap;
static char request[8192];
static size_t request_len;
static char *unique_at;          /* the 16-character placeholder in `request`, if any */
static uint64_t unique_counter;
static int port, keep_alive = 1, epfd;
static int64_t timeout_us = 10000000;
static struct timespec origin;

static int64_t now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)(t.tv_sec - origin.tv_sec) * 1000000 + (t.tv_nsec - origin.tv_nsec) / 1000;
}

static void record(int64_t start, int status) {
    if (record_count == record_cap) {
        record_cap = record_cap ? record_cap * 2 : 1 << 16;
        records = realloc(records, record_cap * sizeof *records);
        if (!records) { perror("loadgen: realloc"); exit(70); }
    }
    records[record_count++] = (struct record){start, now_us() - start, status};
}

static void drop(struct conn *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->len = 0;
}

static void wait_then_reconnect(struct conn *c) {
    drop(c);
    c->phase = WAITING;
    c->retry_at = now_us() + 10000;
}

static void fail(struct conn *c, int error) {
    record(c->started, error);
    wait_then_reconnect(c);
}

static void watch(struct conn *c, uint32_t events, int op) {
    struct epoll_event e = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, op, c->fd, &e) != 0) { perror("loadgen: epoll_ctl"); exit(70); }
}

/* Opens a connection and starts a request on it: the request's clock starts at connect, as a client's does. */
static void start(struct conn *c) {
    c->started = now_us();
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) { perror("loadgen: socket"); exit(71); }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int rc = connect(c->fd, (struct sockaddr *)&a, sizeof a);
    if (rc != 0 && errno != EINPROGRESS) { fail(c, -1); return; }
    c->phase = CONNECTING;
    watch(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void send_request(struct conn *c, int new_request) {
    if (new_request) c->started = now_us();
    if (new_request && unique_at) {
        char digits[17];
        snprintf(digits, sizeof digits, "%016llx", (unsigned long long)(++unique_counter * 0x9E3779B97F4A7C15ULL));
        memcpy(unique_at, digits, 16);
    }
    c->written = 0;
    c->len = 0;
    c->header_end = -1;
    c->content_length = -1;
    c->phase = WRITING;
    for (;;) {
        ssize_t n = send(c->fd, request + c->written, request_len - c->written, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { watch(c, EPOLLOUT, EPOLL_CTL_MOD); return; }
        if (n <= 0) { fail(c, -2); return; }
        c->written += (size_t)n;
        if (c->written == request_len) break;
    }
    c->phase = READING;
    watch(c, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
}

static long header_value(const char *headers, size_t len, const char *name) {
    size_t name_len = strlen(name);
    for (size_t i = 0; i + name_len < len; i++) {
        if ((i == 0 || headers[i - 1] == '\n') && strncasecmp(headers + i, name, name_len) == 0) return (long)(i + name_len);
    }
    return -1;
}

/* 1 when the answer is complete, 0 when more is needed, -1 when it is not HTTP. */
static int parse(struct conn *c) {
    if (c->header_end < 0) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end) return c->len > 65536 ? -1 : 0;
        c->header_end = end - c->buf + 4;
        if (c->len < 12 || memcmp(c->buf, "HTTP/1.", 7) != 0) return -1;
        c->status = atoi(c->buf + 9);
        long at = header_value(c->buf, (size_t)c->header_end, "content-length:");
        c->content_length = at >= 0 ? strtol(c->buf + at, NULL, 10) : 0;
        long connection = header_value(c->buf, (size_t)c->header_end, "connection:");
        c->server_closes = connection >= 0 && strncasecmp(c->buf + connection + strspn(c->buf + connection, " "), "close", 5) == 0;
    }
    return (long)c->len - c->header_end >= c->content_length ? 1 : 0;
}

static void readable(struct conn *c) {
    for (;;) {
        if (c->cap - c->len < 4096) {
            c->cap = c->cap ? c->cap * 2 : 16384;
            c->buf = realloc(c->buf, c->cap);
            if (!c->buf) { perror("loadgen: realloc"); exit(70); }
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) { fail(c, -2); return; }
        c->len += (size_t)n;
        int done = parse(c);
        if (done < 0) { fail(c, -4); return; }
        if (done == 0) continue;
        record(c->started, c->status);
        if (keep_alive && !c->server_closes) {
            send_request(c, 1);
        } else {
            drop(c);
            start(c);
        }
        return;
    }
}

static void usage(void) {
    fprintf(stderr, "usage: loadgen --port P --path /x [--header 'K: V']... [--connections N] [--seconds S] [--close] "
                    "[--timeout S] [--out FILE]\n");
    exit(64);
}

int main(int argc, char **argv) {
    const char *path = NULL, *out = NULL;
    char headers[4096] = "";
    int connections = 64;
    double seconds = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--close")) { keep_alive = 0; continue; }
        if (!v) usage();
        i++;
        if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--path")) path = v;
        else if (!strcmp(a, "--connections")) connections = atoi(v);
        else if (!strcmp(a, "--seconds")) seconds = atof(v);
        else if (!strcmp(a, "--timeout")) timeout_us = (int64_t)(atof(v) * 1e6);
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--header")) {
            if (strlen(headers) + strlen(v) + 3 >= sizeof headers) usage();
            strcat(headers, v);
            strcat(headers, "\r\n");
        } else usage();
    }
    if (!path || port <= 0 || port > 65535 || connections <= 0 || seconds <= 0) usage();
    request_len = (size_t)snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s%s\r\n", path,
                                   port, headers, keep_alive ? "" : "Connection: close\r\n");
    if (request_len >= sizeof request) usage();
    unique_at = strstr(request, "@@@@@@@@@@@@@@@@");
    struct timespec seed;
    clock_gettime(CLOCK_REALTIME, &seed);
    unique_counter = (uint64_t)seed.tv_nsec << 20;

    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct conn *conns = calloc((size_t)connections, sizeof *conns);
    clock_gettime(CLOCK_MONOTONIC, &origin);
    for (int i = 0; i < connections; i++) {
        conns[i].fd = -1;
        start(&conns[i]);
    }
    int64_t end = (int64_t)(seconds * 1e6), last_sweep = 0;
    struct epoll_event events[256];
    while (now_us() < end) {
        int n = epoll_wait(epfd, events, 256, 5);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c->phase == CONNECTING) {
                int error = 0;
                socklen_t size = sizeof error;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &size);
                if (error) { fail(c, -1); continue; }
                send_request(c, 0);
            } else if (c->phase == WRITING) {
                send_request(c, 0);
            } else if (c->phase == READING) {
                readable(c);
            }
        }
        int64_t now = now_us();
        if (now - last_sweep >= 5000) {
            last_sweep = now;
            for (int i = 0; i < connections; i++) {
                struct conn *c = &conns[i];
                if (c->phase == WAITING && now >= c->retry_at) start(c);
                else if (c->phase != WAITING && c->phase != IDLE && now - c->started > timeout_us) fail(c, -3);
            }
        }
    }

    FILE *f = out ? fopen(out, "w") : NULL;
    if (out && !f) { perror(out); return 73; }
    size_t ok = 0, failed = 0;
    for (size_t i = 0; i < record_count; i++) {
        if (records[i].status >= 200 && records[i].status < 300) ok++;
        else failed++;
        if (f) fprintf(f, "%lld,%lld,%d\n", (long long)records[i].start, (long long)records[i].latency, records[i].status);
    }
    if (f) fclose(f);
    fprintf(stderr, "loadgen: %zu requests in %.1f s, %zu 2xx, %zu other\n", record_count, seconds, ok, failed);
    return 0;
}
