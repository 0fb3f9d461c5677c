// recv_ring_probe: is reading through io_uring cheaper than recv(2) for a relay? (issue 11, 2026-12-07)
// N client threads ping-pong 100-byte messages (blocking send/recv) with one event-loop thread that echoes
// them; the loop thread's CPU per round trip is printed (CLOCK_THREAD_CPUTIME_ID; io_uring ran every
// send and receive inline in that thread: no io-wq worker appeared).
//   mode 0: epoll_wait + recv(2) + send(2) per message (PgBouncer's pattern)
//   mode 4: epoll_wait + recv(2), the turn's sends in one io_uring submission (pgsidecar's SendRing)
//   mode 1: epoll_wait on the ring's fd, multishot IORING_OP_RECV with a provided-buffer ring, sends
//           through the ring (reads and sends both in io_uring)
//   mode 2: mode 1 with IORING_SETUP_COOP_TASKRUN;  mode 3: with COOP_TASKRUN | SINGLE_ISSUER
//   mode 5: epoll_wait, then the readable sockets' receives as one-shot IORING_OP_RECV (each into its
//           connection's buffer) in one submission, and their sends in a second (2026-12-08)
// Build and run:  gcc -O2 -o /tmp/recv_ring_probe bench/probes/recv_ring_probe.c -luring -lpthread
//                 for m in 0 4 1 2 5; do /tmp/recv_ring_probe $m 16 4; done   # MODE CONNECTIONS SECONDS
// Result on the 2-core dev VM (kernel 6.18, liburing 2.3), µs per round trip, medians of 5 interleaved
// 3 s runs (ranges), 16 / 64 connections:
//   mode 4 4.88 (4.39-5.28) / 6.39 (4.56-7.13);  mode 1 6.83 (4.86-7.19) / 5.86 (4.68-5.98)
//   mode 2 5.88 (5.63-6.46) / 5.55 (5.28-6.26);  mode 0 11.05 (10.99-11.44) / 12.30 (10.64-12.99)
// Reads through the ring cost 20-40% more than recv(2) at 16 connections and are within the noise at 64;
// batching the sends is what pays (mode 0 against 4). So the proxy keeps libuv's reads (README, Benchmarks).
// Mode 5 against 4 (2026-12-08, medians of 5 interleaved 3 s runs, ranges): 16 connections 3.62 (3.39-3.92)
// against 4.58 (4.28-5.35) µs per round trip; 64 connections 4.36 (3.76-4.39) against 5.63 (5.02-6.47);
// at 4 connections (2.4 sockets per turn) it loses: 9.5-10.1 against 8.2-8.9. One-shot receives batched
// per turn save a fifth of the loop's CPU where a turn finds many readable sockets; libuv owns the proxy's
// reads (uv_read_start); the proxy takes them without leaving it: its alloc_cb offers no buffer, so libuv
// only reports a socket readable, and the SendRing receives at the end of the turn (proxy/net, 555e300).
#define _GNU_SOURCE
#include <liburing.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <time.h>
static int N = 16, MODE = 0, SECS = 5;
static volatile int stop = 0;
static long counts[256];
static int cfds[256], sfds[256];  // client and loop ends of each connection (N <= 256)
static void *stop_after(void *arg) {
  (void)arg;
  sleep((unsigned)SECS);
  stop = 1;
  return NULL;
}
static void *client(void *arg) {
  long i = (long)arg; char buf[100] = {0}; char r[4096];
  while (!stop) {
    if (send(cfds[i], buf, 100, 0) != 100) break;
    int got = 0; while (got < 100) { int n = recv(cfds[i], r, sizeof r, 0); if (n <= 0) return 0; got += n; }
    counts[i]++;
  }
  return 0;
}
static long eintr = 0, waits = 0, enters = 0;
static void loop_epoll_ring(void) {
  struct io_uring ring; io_uring_queue_init(1024, &ring, 0);
  int ep = epoll_create1(0);
  for (int i = 0; i < N; i++) { struct epoll_event e = {.events = EPOLLIN, .data.u32 = i}; epoll_ctl(ep, EPOLL_CTL_ADD, sfds[i], &e); }
  struct epoll_event ev[64]; static char out[256][4096];
  while (!stop) {
    int n = epoll_wait(ep, ev, 64, 100); waits++;
    if (n < 0) { eintr++; continue; }
    for (int k = 0; k < n; k++) { int i = ev[k].data.u32; int r = recv(sfds[i], out[i], 4096, 0);
      if (r > 0) { struct io_uring_sqe *s = io_uring_get_sqe(&ring); io_uring_prep_send(s, sfds[i], out[i], r, MSG_NOSIGNAL); io_uring_sqe_set_data64(s, i); } }
    if (n > 0) { io_uring_submit(&ring); enters++; struct io_uring_cqe *c; while (io_uring_peek_cqe(&ring, &c) == 0) io_uring_cqe_seen(&ring, c); }
  }
}
// Mode 5: the readable sockets' receives as one-shot IORING_OP_RECV into each connection's buffer, all in
// one submission, and then their sends in a second: two io_uring_enter calls per turn instead of a recv(2)
// per readable socket and one submission.
static void loop_epoll_ring_recv(void) {
  struct io_uring ring; io_uring_queue_init(1024, &ring, 0);
  int ep = epoll_create1(0);
  for (int i = 0; i < N; i++) { struct epoll_event e = {.events = EPOLLIN, .data.u32 = i}; epoll_ctl(ep, EPOLL_CTL_ADD, sfds[i], &e); }
  struct epoll_event ev[64]; static char in[256][4096];
  while (!stop) {
    int n = epoll_wait(ep, ev, 64, 100); waits++;
    if (n < 0) { eintr++; continue; }
    if (n == 0) continue;
    for (int k = 0; k < n; k++) { int i = ev[k].data.u32; struct io_uring_sqe *s = io_uring_get_sqe(&ring);
      io_uring_prep_recv(s, sfds[i], in[i], 4096, MSG_DONTWAIT); io_uring_sqe_set_data64(s, i); }
    io_uring_submit_and_wait(&ring, n); enters++;
    struct io_uring_cqe *c; int queued = 0;
    while (io_uring_peek_cqe(&ring, &c) == 0) {
      unsigned long d = io_uring_cqe_get_data64(c); int res = c->res; io_uring_cqe_seen(&ring, c);
      if (d >= 1000 || res <= 0) continue;
      struct io_uring_sqe *s = io_uring_get_sqe(&ring); io_uring_prep_send(s, sfds[d], in[d], res, MSG_NOSIGNAL); io_uring_sqe_set_data64(s, 1000 + d); queued++;
    }
    if (queued) { io_uring_submit(&ring); enters++; while (io_uring_peek_cqe(&ring, &c) == 0) io_uring_cqe_seen(&ring, c); }
  }
}
static void loop_epoll(void) {
  int ep = epoll_create1(0);
  for (int i = 0; i < N; i++) { struct epoll_event e = {.events = EPOLLIN, .data.u32 = i}; epoll_ctl(ep, EPOLL_CTL_ADD, sfds[i], &e); }
  struct epoll_event ev[64]; char buf[65536];
  while (!stop) {
    int n = epoll_wait(ep, ev, 64, 100); waits++;
    if (n < 0) { eintr++; continue; }
    for (int k = 0; k < n; k++) { int fd = sfds[ev[k].data.u32]; int r = recv(fd, buf, sizeof buf, 0); if (r > 0) send(fd, buf, r, MSG_NOSIGNAL); }
  }
}
#define NBUF 256
#define BSZ 16384
static void loop_ring(unsigned flags) {
  struct io_uring ring; struct io_uring_params p = {.flags = flags};
  if (io_uring_queue_init_params(1024, &ring, &p) < 0) { perror("init"); exit(1); }
  struct io_uring_buf_ring *br; size_t sz = NBUF * sizeof(struct io_uring_buf);
  br = mmap(NULL, sz, PROT_READ|PROT_WRITE, MAP_ANONYMOUS|MAP_PRIVATE, -1, 0);
  io_uring_buf_ring_init(br);
  struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)br, .ring_entries = NBUF, .bgid = 0};
  if (io_uring_register_buf_ring(&ring, &reg, 0)) { perror("reg"); exit(1); }
  char *bufs = malloc((size_t)NBUF * BSZ);
  for (int b = 0; b < NBUF; b++) io_uring_buf_ring_add(br, bufs + (size_t)b * BSZ, BSZ, b, io_uring_buf_ring_mask(NBUF), b);
  io_uring_buf_ring_advance(br, NBUF);
  for (int i = 0; i < N; i++) { struct io_uring_sqe *s = io_uring_get_sqe(&ring); io_uring_prep_recv_multishot(s, sfds[i], NULL, 0, 0); s->flags |= IOSQE_BUFFER_SELECT; s->buf_group = 0; io_uring_sqe_set_data64(s, i); }
  io_uring_submit(&ring);
  int ep = epoll_create1(0); struct epoll_event e = {.events = EPOLLIN}; epoll_ctl(ep, EPOLL_CTL_ADD, ring.ring_fd, &e);
  static char out[256][4096];
  while (!stop) {
    struct epoll_event ev[4]; int n = epoll_wait(ep, ev, 4, 100); waits++;
    if (n < 0) { eintr++; continue; }
    struct io_uring_cqe *cqe; int queued = 0;
    while (io_uring_peek_cqe(&ring, &cqe) == 0) {
      unsigned long d = io_uring_cqe_get_data64(cqe); int res = cqe->res; unsigned fl = cqe->flags; io_uring_cqe_seen(&ring, cqe);
      if (d >= 1000) continue;  // a send's completion
      int i = (int)d;
      if (res > 0) { int bid = fl >> 16; memcpy(out[i], bufs + (size_t)bid * BSZ, res);
        io_uring_buf_ring_add(br, bufs + (size_t)bid * BSZ, BSZ, bid, io_uring_buf_ring_mask(NBUF), 0); io_uring_buf_ring_advance(br, 1);
        struct io_uring_sqe *s = io_uring_get_sqe(&ring); io_uring_prep_send(s, sfds[i], out[i], res, MSG_NOSIGNAL); io_uring_sqe_set_data64(s, 1000 + i); queued++; }
      if (!(fl & IORING_CQE_F_MORE)) { struct io_uring_sqe *s = io_uring_get_sqe(&ring); io_uring_prep_recv_multishot(s, sfds[i], NULL, 0, 0); s->flags |= IOSQE_BUFFER_SELECT; s->buf_group = 0; io_uring_sqe_set_data64(s, i); queued++; }
    }
    if (queued) { io_uring_submit(&ring); enters++; }
  }
}
int main(int argc, char **argv) {
  if (argc > 1) MODE = atoi(argv[1]);
  if (argc > 2) N = atoi(argv[2]);
  if (argc > 3) SECS = atoi(argv[3]);
  if (N < 1 || N > 256) { fprintf(stderr, "connections: 1..256\n"); return 2; }
  int l = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bind(l, (void *)&a, sizeof a); socklen_t al = sizeof a; getsockname(l, (void *)&a, &al); listen(l, 512);
  for (int i = 0; i < N; i++) { cfds[i] = socket(AF_INET, SOCK_STREAM, 0); connect(cfds[i], (void *)&a, sizeof a); sfds[i] = accept(l, 0, 0);
    int one = 1; setsockopt(cfds[i], IPPROTO_TCP, TCP_NODELAY, &one, 4); setsockopt(sfds[i], IPPROTO_TCP, TCP_NODELAY, &one, 4); }
  pthread_t t[256]; for (long i = 0; i < N; i++) pthread_create(&t[i], 0, client, (void *)i);
  struct timespec t0; clock_gettime(CLOCK_MONOTONIC, &t0);
  // the loop runs in this thread; a timer thread stops it
  pthread_t timer; pthread_create(&timer, 0, stop_after, 0);
  struct timespec c0, c1; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
  if (MODE == 0) loop_epoll(); else if (MODE == 4) loop_epoll_ring(); else if (MODE == 5) loop_epoll_ring_recv(); else loop_ring(MODE == 2 ? IORING_SETUP_COOP_TASKRUN : MODE == 3 ? (IORING_SETUP_COOP_TASKRUN|IORING_SETUP_SINGLE_ISSUER) : 0);
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
  long total = 0; for (int i = 0; i < N; i++) total += counts[i];
  double us = ((c1.tv_sec - c0.tv_sec) * 1e6 + (c1.tv_nsec - c0.tv_nsec) / 1e3);
  printf("mode %d N %d: %ld round trips/s, loop CPU %.2f us per round trip, epoll_waits/rt %.2f, EINTR/rt %.3f, enters/rt %.2f\n", MODE, N, total / SECS, us / total, (double)waits / total, (double)eintr / total, (double)enters / total);
  fflush(stdout); _exit(0);
}
