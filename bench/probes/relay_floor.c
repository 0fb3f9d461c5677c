// relay_floor: what does moving pgbench's bytes cost, with no protocol work at all? (issue 11, 2026-12-08)
// A TCP relay that gives every client its own connection to the server and copies bytes both ways,
// reading nothing of them: near the least a pooler in front of Postgres can spend per message on this
// machine. Its CPU per pgbench transaction, beside PgBouncer's and pgsidecar's on the same workload, says
// how much of theirs is the kernel's work for each message (receive, send, waking the reader).
//   mode 0: epoll_wait, then recv(2) and send(2) per message (PgBouncer's pattern)
//   mode 4: epoll_wait and recv(2), the loop turn's sends in one io_uring submission (pgsidecar's SendRing)
//   mode 5: epoll_wait, the turn's receives in one io_uring submission and its sends in a second
//           (recv_ring_probe.c's mode 5: what pgsidecar would spend if it took its reads from libuv)
// Build and run:
//   gcc -O2 -o /tmp/relay_floor bench/probes/relay_floor.c -luring
//   /tmp/relay_floor MODE LISTEN_PORT SERVER_PORT      # 127.0.0.1 both; runs until killed
// Measured: pgbench -T 12 -P 1 through each of pgsidecar-plain (workers = 1, pool of 20), the mode-4
// relay and PgBouncer in turn, rounds rotating the order; each one's utime+stime from /proc/<pid>/stat
// over the last 6 s (its backends warm: the relay's are new for every run) divided by the transactions
// the progress lines count in that window. Medians of per-round ratios against PgBouncer, 2-core dev VM,
// 2026-12-08:
//   select-only simple, 16 clients, two batches of 8 rounds (03:00 and 03:15 UTC; the machine's state
//     moved between them): relay 0.85 (rounds 0.56-1.00) and 1.24 (0.98-1.60), pgsidecar-plain 0.84
//     (0.79-1.30) and 1.11 (0.89-1.31); µs per transaction in the first: relay 18.6, pgsidecar-plain
//     19.7, PgBouncer 21.9.
//   tpcb-like, 64 clients (3 rounds): relay 0.73 (0.69-0.87), pgsidecar-plain 0.78 (0.67-0.95); the
//     relay holds 64 backends (the poolers 20), so its Postgres waits on more locks at lower TPS.
//   A third batch (6 rounds, 03:24 UTC) with mode 5 as well: relay mode 4 1.00 (0.66-1.46), mode 5 1.08
//     (0.75-1.68), pgsidecar-plain 1.16 (1.00-1.30); the spread of one target's rounds is wider than any
//     difference between targets (DAMON's kdamond pages out what runs idle between runs, here).
// So on select-only the proxy costs about what a relay that parses nothing costs: what is left is the
// kernel's. Mode 5's saving in recv_ring_probe.c (a fifth of the loop's CPU) is not visible through this
// noise with Postgres and pgbench on the same two cores.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { kBuf = 65536, kMaxFd = 4096 };

// One direction of a pair: bytes read from `fd`, to be sent to `peer`.
struct Side {
  int fd, peer;
  char buf[kBuf];
  size_t len, off;  // bytes held, and sent of them (mode 4: a send in flight while len > off)
};
static struct Side* sides[kMaxFd];  // by the fd it reads
static int mode;
static struct io_uring ring;
static int epfd;

static void die(const char* what) {
  perror(what);
  exit(1);
}

static void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void close_pair(struct Side* s) {
  struct Side* other = sides[s->peer];
  int a = s->fd, b = s->peer;
  close(a);
  close(b);
  if (mode != 5) {  // mode 5: the peer's receive may still complete in this turn; a probe may leak them
    free(s);
    free(other);
  }
  sides[a] = sides[b] = NULL;
}

// Mode 0: the whole message goes out at once (a blocking send on a loopback socket with room).
static int send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EAGAIN) continue;  // the peer's window is full: not reached in these runs
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int receiving;  // mode 5: receives queued this turn

static void queue_send(struct Side* s) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (sqe == NULL) die("io_uring_get_sqe");
  io_uring_prep_send(sqe, s->peer, s->buf + s->off, s->len - s->off, MSG_NOSIGNAL);
  io_uring_sqe_set_data(sqe, s);
}

static void on_readable(struct Side* s) {
  if (mode != 0 && s->len > s->off) return;  // its last message is still being sent: read it later
  if (mode == 5) {
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe == NULL) die("io_uring_get_sqe");
    io_uring_prep_recv(sqe, s->fd, s->buf, kBuf, MSG_DONTWAIT);
    io_uring_sqe_set_data(sqe, (char*)s + 1);  // odd: a receive's completion
    ++receiving;
    return;
  }
  ssize_t n = recv(s->fd, s->buf, kBuf, 0);
  if (n == 0 || (n < 0 && errno != EAGAIN)) {
    close_pair(s);
    return;
  }
  if (n < 0) return;
  if (mode == 0) {
    if (send_all(s->peer, s->buf, (size_t)n) != 0) close_pair(s);
    return;
  }
  s->len = (size_t)n;
  s->off = 0;
  queue_send(s);
}

// Modes 4 and 5: one submission for the turn's sends (mode 5: after one for its receives); loopback
// sends and receives of readable sockets complete inline.
static void end_turn(void) {
  struct io_uring_cqe* cqe;
  if (mode == 5 && receiving > 0) {
    if (io_uring_submit_and_wait(&ring, (unsigned)receiving) < 0) die("io_uring_submit_and_wait");
    receiving = 0;
    while (io_uring_peek_cqe(&ring, &cqe) == 0) {
      uintptr_t tag = (uintptr_t)io_uring_cqe_get_data(cqe);
      int res = cqe->res;
      io_uring_cqe_seen(&ring, cqe);
      if (!(tag & 1)) continue;  // a send of an earlier turn
      struct Side* s = (struct Side*)(tag - 1);
      if (res == -EAGAIN) continue;
      if (res <= 0) {
        close_pair(s);
        continue;
      }
      s->len = (size_t)res;
      s->off = 0;
      queue_send(s);
    }
  }
  if (io_uring_submit(&ring) < 0) die("io_uring_submit");
  while (io_uring_peek_cqe(&ring, &cqe) == 0) {
    struct Side* s = io_uring_cqe_get_data(cqe);
    int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    if (((uintptr_t)s & 1) || res <= 0) continue;  // the pair is closed when its reader sees it
    s->off += (size_t)res;
    if (s->off < s->len) {
      queue_send(s);  // a short send: the rest in the next submission
    } else {
      s->len = s->off = 0;
    }
  }
}

static void add(int fd, int peer) {
  struct Side* s = calloc(1, sizeof *s);
  s->fd = fd;
  s->peer = peer;
  sides[fd] = s;
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: relay_floor MODE(0|4) LISTEN_PORT SERVER_PORT\n");
    return 2;
  }
  mode = atoi(argv[1]);
  struct sockaddr_in listen_at = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
  struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
  inet_pton(AF_INET, "127.0.0.1", &listen_at.sin_addr);
  inet_pton(AF_INET, "127.0.0.1", &server.sin_addr);
  if (mode != 0 && io_uring_queue_init(1024, &ring, 0) != 0) die("io_uring_queue_init");
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr*)&listen_at, sizeof listen_at) != 0 || listen(lfd, 512) != 0) die("listen");
  epfd = epoll_create1(0);
  struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);
  struct epoll_event events[64];
  for (;;) {
    int n = epoll_wait(epfd, events, 64, -1);
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (c < 0) continue;
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr*)&server, sizeof server) != 0 || c >= kMaxFd || s >= kMaxFd) {
          close(c);
          close(s);
          continue;
        }
        set_nodelay(c);
        set_nodelay(s);
        add(c, s);
        add(s, c);
        continue;
      }
      if (sides[fd] != NULL) on_readable(sides[fd]);
    }
    if (mode != 0) end_turn();
  }
}
