// Worker: cancel keys handed to clients, and CancelRequests routed to the server that runs the query.
#include "proxy/client/client_conn.h"
#include "proxy/core/log.h"
#include "proxy/core/process.h"
#include "proxy/core/worker.h"
#include "proxy/pool/cancel.h"
#include "proxy/pool/pool.h"
#include "proxy/server/server_conn.h"

namespace pgs::proxy {

namespace {
// A cancel sent for a server that is being closed: nobody waits for it, but its connection is bounded.
constexpr std::chrono::milliseconds kCancelDeadline{10000};
}  // namespace

bool Worker::allocate_cancel_key(ClientConn* client, int32_t& pid, int32_t& secret) {
  // pid: worker index in bits 22..29, a counter below; always positive. secret: random.
  if (!random_cancel_secret(secret)) {
    pid = 0;
    return false;
  }
  do {
    uint32_t counter = next_cancel_counter_++ & ((1u << Process::kCancelWorkerShift) - 1);
    if (counter == 0) counter = next_cancel_counter_++;
    pid = static_cast<int32_t>((static_cast<uint32_t>(index_) << Process::kCancelWorkerShift) | counter);
  } while (clients_by_pid_.count(pid) != 0);
  clients_by_pid_[pid] = client;
  return true;
}

void Worker::route_cancel(int32_t pid, int32_t secret) {
  int owner = (static_cast<uint32_t>(pid) >> Process::kCancelWorkerShift) & 0xff;
  if (owner == index_) {
    deliver_cancel(pid, secret);
  } else {
    process_.route_cancel(pid, secret);
  }
}

void Worker::deliver_cancel(int32_t pid, int32_t secret) {
  // Ownership is checked now, on the owning thread: the server the client holds at this moment.
  auto it = clients_by_pid_.find(pid);
  if (it == clients_by_pid_.end() || it->second->cancel_secret() != secret) return;
  // Only a query of this client that runs on the server it holds now; never one queued or finished.
  ClientConn* client = it->second;
  ServerConn* server = client->server();
  if (server == nullptr || server->client() != client || !server->running_query()) return;
  if (server->pool().defer_cancel_if_in_flight(server)) return;
  forward_cancel(*server);
}

void Worker::forward_cancel(ServerConn& server) {
  ++metrics_.cancels_forwarded;
  // The server's own pool: a read routed to a replica holds a replica server, with the replica's key.
  Pool& pool = server.pool();
  pool.cancel_forwarded(&server);  // first: the outcome may be reported before the call returns
  uint64_t id = server.id();
  // Pools live as long as the loop, and the loop runs until this request's handles are closed.
  send_cancel_request(&loop_, server.cancel_target(), server.backend_pid(), server.backend_secret(),
                      pool.settings().server_connect_timeout,
                      [&pool, id](CancelOutcome outcome) { pool.on_cancel_done(id, outcome); });
}

void Worker::send_cancel(const ServerConn& server) {
  ++metrics_.cancels_forwarded;
  send_cancel_request(&loop_, server.cancel_target(), server.backend_pid(), server.backend_secret(), kCancelDeadline,
                      nullptr);
}

}  // namespace pgs::proxy
