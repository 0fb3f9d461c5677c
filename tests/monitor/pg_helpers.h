// Small libpq helpers for the monitor's integration tests (dev services on loopback).
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <string>

namespace pgs::monitor::test {

using Conn = std::unique_ptr<PGconn, decltype(&PQfinish)>;

inline constexpr uint16_t kPrimaryPort = 15432;
inline constexpr uint16_t kReplicaPort = 15433;

// Superuser (tests only) or the app user on the given dev port.
std::string superuser_conninfo(uint16_t port);
std::string app_conninfo(uint16_t port);

// Connects, retrying until `wait` passes (the dev services may still be starting). Check PQstatus.
Conn connect(const std::string& conninfo, std::chrono::seconds wait = std::chrono::seconds(30));

// Runs `sql`; the first value of the first row, or nullopt-like "" with *ok = false on error.
std::string scalar(PGconn* c, const std::string& sql, bool* ok = nullptr);

}  // namespace pgs::monitor::test
