#include "proxy/client/client_conn.h"

#include "protocol/frontend.h"
#include "protocol/writer.h"
#include "proxy/core/log.h"
#include "proxy/core/process.h"
#include "proxy/core/worker.h"
#include "proxy/pool/pool.h"
#include "proxy/server/server_conn.h"

namespace pgs::proxy {

namespace pf = protocol::frontend;
using protocol::Frame;

namespace {
std::string peer_name(uv_tcp_t* tcp) {
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = {0};
  int port = 0;
  if (addr.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    uv_ip4_name(a, host, sizeof host);
    port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    uv_ip6_name(a, host, sizeof host);
    port = ntohs(a->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}
}  // namespace

ClientConn::ClientConn(Worker& worker, uint64_t id)
    : Stream(worker.loop()), worker_(worker), id_(id), created_at_(Clock::now()), state_since_(created_at_),
      last_activity_(created_at_), statements_([this](std::string_view sql) { return sql_effects_of(sql); }) {}

void ClientConn::start() {
  peer_ = peer_name(tcp());
  uv_tcp_nodelay(tcp(), 1);
  worker_.add_client(this);
  set_buffer_release_bytes(worker_.snapshot().config->proxy.buffer_release_bytes);
  // Counted from accept, not from the startup packet: connections that never send one hold a socket
  // too (each until client_login_timeout), and a flood of them must not exhaust the descriptors.
  if (worker_.process().try_admit_client()) {
    admitted_ = true;
  } else if (worker_.process().try_admit_cancel_only()) {
    cancel_only_ = true;  // handle_startup_packet: a CancelRequest is served, anything else refused
  } else {
    refuse_too_many();
    return;
  }
  start_reading();
}

void ClientConn::refuse_too_many() {
  worker_.metrics().count_login_failure(LoginFailure::too_many_clients);
  protocol::write_error(outbox(), {.severity = "FATAL", .sqlstate = "53300", .message = "sorry, too many clients already"});
  set_state(State::closing);
  close_after_flush();
}

void ClientConn::set_state(State s) {
  state_ = s;
  state_since_ = Clock::now();
  Pool* owner = nullptr;
  if (s == State::login_wait || s == State::idle) owner = primary_pool_;
  if (s == State::waiting || s == State::active) owner = pool_;
  if (owner != nullptr) {
    owner->clients(s).push_back(this);
  } else {
    ConnList<ClientConn>::unlink(this);
  }
}

void ClientConn::on_data() {
  last_activity_ = Clock::now();
  switch (state_) {
    case State::startup:
      process_startup();
      break;
    case State::auth:
      process_auth();
      break;
    case State::idle:
    case State::active:
      process_session();
      break;
    case State::login_wait:
    case State::waiting:
      // Keep what the client pipelines, but bounded: stop reading past one inspect window (a larger
      // message streams once a server is bound).
      if (rbuf_.size() > worker_.snapshot().config->proxy.max_parse_bytes) stop_reading();
      break;
    case State::closing:
      drain_refused_message();
      break;
  }
}

void ClientConn::fail(const char* sqlstate, const std::string& message) {
  if (state_ == State::closing || closing()) return;
  if (state_ == State::startup || state_ == State::auth || state_ == State::login_wait) {
    worker_.metrics().count_login_failure(login_failure_of(sqlstate, message));
  }
  LOG_DEBUG("client " + peer_ + ": " + sqlstate + " " + message);
  protocol::write_error(outbox(), {.severity = "FATAL", .sqlstate = sqlstate, .message = message});
  detach_server(true);
  set_state(State::closing);
  close_after_flush();
}

void ClientConn::on_read_error(int) {
  if (state_ == State::closing) {
    close();
    return;
  }
  detach_server(true);
  set_state(State::closing);
  close();
}

void ClientConn::notice_hangup_while_paused() {
  if (reading() || closing() || state_ == State::closing || state_ == State::startup || state_ == State::auth) return;
  if (!peer_hung_up()) return;
  // Worth a line: most pauses end by themselves within milliseconds.
  LOG_INFO("client " + peer_ + " left while its input was paused (state " + std::string(state_name(state_)) +
           (sql_gate_.sync_running() ? ", SQL-prepare sync" : "") + (probe_running() ? ", probe" : "") +
           (cache_.busy() ? ", cache" : "") + (cache_.bumps_pending() ? ", invalidation" : "") +
           ", " + std::to_string(queued_bytes()) + " bytes queued to it, " + std::to_string(rbuf_.size()) +
           " unread" + (server_ != nullptr ? ", server " + server_->describe_queue() : std::string()) + ")");
  on_read_error(UV_EOF);
}

void ClientConn::on_write_error(int status) {
  on_read_error(status);  // the client is gone either way: release or close its server, then close
}

void ClientConn::on_closed() {
  unpin_metrics();
  leave_cache();
  if (admitted_) worker_.process().release_client();
  if (cancel_only_) worker_.process().release_cancel_only();
  worker_.remove_client(this);
  Worker& w = worker_;
  delete this;
  w.maybe_finish_shutdown();
}

// ---- start-up ----

void ClientConn::process_startup() {
  while (state_ == State::startup && !closing()) {
    auto r = protocol::split_startup(rbuf_.data());
    if (std::holds_alternative<protocol::NeedMore>(r)) return;
    if (auto* bad = std::get_if<protocol::Invalid>(&r)) {
      worker_.metrics().count_protocol_error(ProtocolError::invalid_startup);
      if (!rbuf_.data().empty() && rbuf_.data()[0] == protocol::kTlsHandshakeByte) {
        close();  // a direct TLS ClientHello: we offer no TLS, and it is no startup packet
        return;
      }
      fail("08P01", "invalid startup packet: " + std::string(bad->reason));
      return;
    }
    const auto& f = std::get<protocol::StartupFrame>(r);
    rbuf_.consume(f.size);  // before handling: see process_auth
    if (!handle_startup_packet(f)) return;
  }
  if (state_ == State::auth && rbuf_.size() > 0) process_auth();
}

bool ClientConn::handle_startup_packet(const protocol::StartupFrame& f) {
  if (f.code == protocol::kSslRequestCode) {
    const auto& tls = worker_.snapshot().tls;
    if (tls == nullptr || tls_active() || cancel_only_) {
      send("N");  // no TLS here: the client carries on in plain text (sslmode=prefer) or gives up
      return true;
    }
    if (rbuf_.size() > 0) {
      // Bytes sent before the handshake would be taken as part of the encrypted session (CVE-2021-23222).
      fail("08P01", "received unencrypted data after SSL request");
      return false;
    }
    send("S");
    start_tls(tls);  // the handshake runs as the client's next bytes arrive (stream.cc)
    return true;
  }
  if (f.code == protocol::kGssEncRequestCode) {
    send("N");  // no GSS encryption: the client carries on in plain text or gives up
    return true;
  }
  if (f.code == protocol::kCancelRequestCode) {
    auto c = pf::CancelRequest::decode(f);
    if (c.ok()) worker_.route_cancel(c->pid, c->secret);
    set_state(State::closing);
    close();  // no reply to a CancelRequest, ever
    return false;
  }
  if (cancel_only_) {  // beyond max_client_conn: in only to cancel
    refuse_too_many();
    return false;
  }
  if (!tls_active() && worker_.snapshot().config->tls.client_tls == conf::ClientTls::require) {
    fail("28000", "pgsidecar: TLS is required (client_tls = \"require\"): connect with sslmode=require or stronger");
    return false;
  }
  uint32_t major = f.code >> 16, minor = f.code & 0xffff;
  if (major != 3) {
    fail("0A000", "unsupported frontend protocol " + std::to_string(major) + "." + std::to_string(minor) +
                      ": server supports 3.0 to 3.0");
    return false;
  }
  auto startup = pf::Startup::decode(f);
  if (!startup.ok()) {
    fail("08P01", "invalid startup packet layout: " + std::string(startup.error().detail));
    return false;
  }
  auto parsed = parse_startup_request(startup.value());
  if (auto* err = std::get_if<StartupError>(&parsed)) {
    fail(err->sqlstate.c_str(), err->message);
    return false;
  }
  request_ = std::move(std::get<StartupRequest>(parsed));
  if (minor > 0 || !request_.protocol_options.empty()) {
    std::vector<std::string_view> names(request_.protocol_options.begin(), request_.protocol_options.end());
    protocol::write_negotiate_protocol_version(outbox(), 0, names);
  }
  if (request_.replication) {
    fail("0A000", "pgsidecar does not pool replication connections");
    return false;
  }
  if (worker_.shutting_down()) {
    fail("57P03", "the proxy is shutting down");
    return false;
  }
  snapshot_hold_ = worker_.snapshot_ptr();
  const conf::Config& config = *worker_.snapshot().config;
  admin_ = request_.database == config.proxy.admin_database;
  if (admin_) {
    const conf::UserConfig* u = config.find_user(request_.user);
    if (u != nullptr && !u->admin) {
      fail("28000", "pgsidecar: user \"" + request_.user + "\" may not use the admin console");
      return false;
    }
  } else if (config.find_database(request_.database) == nullptr) {
    fail("3D000", "database \"" + request_.database + "\" does not exist");
    return false;
  }
  begin_auth();
  return true;
}

}  // namespace pgs::proxy
