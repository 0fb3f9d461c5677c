// The spelling of every enum value in the config file, written once: the loader parses with these
// tables and to_string() prints with them. Internal to conf/.
#pragma once

#include <array>
#include <optional>
#include <string_view>

#include "conf/config.h"

namespace pgs::conf::detail {

template <typename E>
struct EnumName {
  std::string_view name;
  E value;
};

inline constexpr std::array<EnumName<PoolMode>, 2> kPoolModes{{
    {"transaction", PoolMode::transaction}, {"session", PoolMode::session}}};
inline constexpr std::array<EnumName<ClientTls>, 3> kClientTls{{
    {"disable", ClientTls::disable}, {"allow", ClientTls::allow}, {"require", ClientTls::require}}};
inline constexpr std::array<EnumName<ServerTls>, 5> kServerTls{{
    {"disable", ServerTls::disable}, {"prefer", ServerTls::prefer}, {"require", ServerTls::require},
    {"verify-ca", ServerTls::verify_ca}, {"verify-full", ServerTls::verify_full}}};
inline constexpr std::array<EnumName<RedisTls>, 4> kRedisTls{{
    {"disable", RedisTls::disable}, {"require", RedisTls::require}, {"verify-ca", RedisTls::verify_ca},
    {"verify-full", RedisTls::verify_full}}};
inline constexpr std::array<EnumName<AuthType>, 3> kAuthTypes{{
    {"scram-sha-256", AuthType::scram_sha_256}, {"md5", AuthType::md5}, {"trust", AuthType::trust}}};
inline constexpr std::array<EnumName<Consistency>, 3> kConsistencies{{
    {"session", Consistency::session}, {"eventual", Consistency::eventual}, {"primary", Consistency::primary}}};
inline constexpr std::array<EnumName<ReadYourWrites>, 2> kReadYourWrites{{
    {"client", ReadYourWrites::client}, {"user", ReadYourWrites::user}}};
inline constexpr std::array<EnumName<LoadBalance>, 3> kLoadBalances{{
    {"least_outstanding", LoadBalance::least_outstanding},
    {"round_robin", LoadBalance::round_robin},
    {"weighted", LoadBalance::weighted}}};
inline constexpr std::array<EnumName<LogLevel>, 4> kLogLevels{{
    {"debug", LogLevel::debug}, {"info", LogLevel::info}, {"warning", LogLevel::warning},
    {"error", LogLevel::error}}};
inline constexpr std::array<EnumName<Pinning>, 2> kPinnings{{
    {"pin", Pinning::pin}, {"refuse", Pinning::refuse}}};

template <typename E, size_t N>
constexpr std::string_view name_of(const std::array<EnumName<E>, N>& names, E value) {
  for (const auto& n : names) {
    if (n.value == value) return n.name;
  }
  return "?";
}

// The inverse of name_of: the value spelled `name` exactly, nullopt when none is.
template <typename E, size_t N>
constexpr std::optional<E> value_of(const std::array<EnumName<E>, N>& names, std::string_view name) {
  for (const auto& n : names) {
    if (n.name == name) return n.value;
  }
  return std::nullopt;
}

}  // namespace pgs::conf::detail
