// SQLSTATE codes the proxy itself sends (PostgreSQL Appendix A "Error Codes"), for ErrorSpec.
#pragma once

#include <string_view>

namespace pgs::protocol::sqlstate {

inline constexpr std::string_view protocol_violation = "08P01";
inline constexpr std::string_view connection_failure = "08006";
inline constexpr std::string_view invalid_password = "28P01";
inline constexpr std::string_view invalid_authorization_specification = "28000";
inline constexpr std::string_view invalid_catalog_name = "3D000";
inline constexpr std::string_view too_many_connections = "53300";
inline constexpr std::string_view configuration_limit_exceeded = "53400";
inline constexpr std::string_view admin_shutdown = "57P01";
inline constexpr std::string_view query_canceled = "57014";
inline constexpr std::string_view feature_not_supported = "0A000";
inline constexpr std::string_view invalid_sql_statement_name = "26000";  // no such prepared statement
inline constexpr std::string_view duplicate_prepared_statement = "42P05";
inline constexpr std::string_view serialization_failure = "40001";  // also "conflict with recovery"
inline constexpr std::string_view syntax_error = "42601";
inline constexpr std::string_view internal_error = "XX000";

}  // namespace pgs::protocol::sqlstate
