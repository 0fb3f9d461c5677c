#include "router/functions.h"

#include <string_view>
#include <unordered_map>

namespace pgs::router {
namespace {

// The generated lists (builtin_functions.inc, from PostgreSQL 15's pg_proc): IMMUTABLE built-ins are
// replica-safe and cacheable; STABLE ones are replica-safe but, since they may read the catalogs, the
// clock or the session, not cacheable. The hand-written lists below override them.
#include "router/builtin_functions.inc"

// STABLE built-ins whose result depends only on arguments, table data and the settings that are part
// of the cache key (TimeZone, DateStyle, lc_*): cacheable after all.
constexpr std::string_view kCacheable[] = {
    // aggregates and window functions
    "count", "sum", "avg", "min", "max", "array_agg", "string_agg", "bool_and", "bool_or", "every",
    "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg", "stddev", "stddev_pop",
    "stddev_samp", "variance", "var_pop", "var_samp", "percentile_cont", "percentile_disc", "mode",
    "bit_and", "bit_or", "bit_xor", "xmlagg", "corr", "covar_pop", "covar_samp", "regr_slope",
    "regr_intercept", "regr_count", "regr_r2", "row_number", "rank", "dense_rank", "percent_rank",
    "cume_dist", "ntile", "lag", "lead", "first_value", "last_value", "nth_value", "range_agg",
    // strings
    "lower", "upper", "length", "char_length", "character_length", "octet_length", "bit_length",
    "substr", "substring", "trim", "btrim", "ltrim", "rtrim", "lpad", "rpad", "replace", "concat",
    "concat_ws", "format", "left", "right", "reverse", "repeat", "split_part", "strpos", "position",
    "initcap", "md5", "sha224", "sha256", "sha384", "sha512", "encode", "decode", "regexp_replace",
    "regexp_match", "regexp_matches", "regexp_split_to_array", "regexp_split_to_table",
    "regexp_count", "regexp_instr", "regexp_like", "regexp_substr", "starts_with", "string_to_array",
    "string_to_table", "array_to_string", "to_char", "to_number", "to_date", "to_timestamp",
    "quote_ident", "quote_literal", "quote_nullable", "ascii", "chr", "translate", "overlay",
    "normalize", "to_hex", "convert_from", "convert_to", "like_escape", "unaccent", "similarity",
    "word_similarity", "levenshtein", "soundex", "difference", "crc32", "crc32c",
    // numbers
    "abs", "ceil", "ceiling", "floor", "round", "trunc", "sqrt", "cbrt", "power", "pow", "exp", "ln",
    "log", "log10", "mod", "sign", "div", "pi", "degrees", "radians", "sin", "cos", "tan", "asin",
    "acos", "atan", "atan2", "sinh", "cosh", "tanh", "gcd", "lcm", "width_bucket", "factorial",
    "scale", "min_scale", "trim_scale", "numeric", "int4", "int8", "float8", "text",
    // functions the grammar itself calls (SIMILAR TO, OVERLAPS, COLLATION FOR, IS NORMALIZED, ...)
    "similar_to_escape", "similar_escape", "overlaps", "pg_collation_for", "is_normalized",
    "xmlexists", "xpath", "xpath_exists", "xmlcomment", "xmltext",
    // dates and times that do not read the clock
    "date_trunc", "date_part", "extract", "make_date", "make_time", "make_timestamp",
    "make_timestamptz", "make_interval", "justify_days", "justify_hours", "justify_interval",
    "isfinite", "date_bin", "timezone", "to_timestamp",
    // json
    "json_build_object", "jsonb_build_object", "json_build_array", "jsonb_build_array", "to_json",
    "to_jsonb", "row_to_json", "array_to_json", "json_array_length", "jsonb_array_length",
    "json_each", "jsonb_each", "json_each_text", "jsonb_each_text", "json_extract_path",
    "jsonb_extract_path", "json_extract_path_text", "jsonb_extract_path_text", "json_object_keys",
    "jsonb_object_keys", "json_array_elements", "jsonb_array_elements", "json_array_elements_text",
    "jsonb_array_elements_text", "json_typeof", "jsonb_typeof", "jsonb_set", "jsonb_set_lax",
    "jsonb_insert", "jsonb_strip_nulls", "json_strip_nulls", "jsonb_pretty", "jsonb_path_query",
    "jsonb_path_exists", "jsonb_path_match", "jsonb_path_query_array", "jsonb_path_query_first",
    "json_populate_record", "jsonb_populate_record", "json_populate_recordset",
    "jsonb_populate_recordset", "json_to_record", "jsonb_to_record", "json_to_recordset",
    "jsonb_to_recordset", "json_object", "jsonb_object",
    // arrays, sets, ranges
    "array_length", "array_lower", "array_upper", "array_dims", "array_ndims", "cardinality",
    "array_append", "array_prepend", "array_cat", "array_position", "array_positions",
    "array_remove", "array_replace", "unnest", "array_fill", "generate_series",
    "generate_subscripts", "lower_inc", "upper_inc", "isempty", "range_merge", "int4range",
    "int8range", "numrange", "tsrange", "tstzrange", "daterange",
    // full text search
    "to_tsvector", "to_tsquery", "plainto_tsquery", "phraseto_tsquery", "websearch_to_tsquery",
    "ts_rank", "ts_rank_cd", "ts_headline", "setweight", "strip", "numnode", "querytree",
};

// Replica-safe, but two calls may differ: never cacheable. Catalog lookups change with DDL that bumps no
// table generation; current_setting reads settings that may not be part of the cache key.
constexpr std::string_view kVolatileSafe[] = {
    // catalog and settings lookups (read-only; settings are replayed on every server)
    "version", "current_setting", "current_database", "current_schema", "current_schemas",
    "format_type", "has_table_privilege", "has_schema_privilege", "has_column_privilege",
    "has_database_privilege", "has_function_privilege", "pg_has_role", "pg_get_viewdef",
    "pg_get_indexdef", "pg_get_constraintdef", "pg_get_expr", "pg_get_userbyid", "pg_get_functiondef",
    "pg_get_function_arguments", "pg_get_function_result", "pg_get_triggerdef",
    "pg_get_serial_sequence", "pg_table_is_visible", "pg_type_is_visible", "pg_function_is_visible",
    "obj_description", "col_description", "shobj_description", "to_regclass", "to_regtype",
    "to_regproc", "to_regprocedure", "to_regnamespace", "to_regrole", "inet_client_addr",
    // clock, randomness, sizes, this connection
    "now", "random", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "timeofday",
    "gen_random_uuid", "uuid_generate_v4", "uuid_generate_v1", "age", "pg_sleep", "pg_sleep_for",
    "pg_sleep_until", "pg_backend_pid", "pg_postmaster_start_time", "pg_conf_load_time",
    "pg_relation_size", "pg_total_relation_size", "pg_table_size", "pg_indexes_size",
    "pg_database_size", "pg_tablespace_size", "pg_stat_get_numscans", "random_normal",
    "pg_current_logfile", "inet_server_addr", "inet_server_port",
    // recovery status: VOLATILE in pg_proc, read-only, and the point of asking a replica
    "pg_is_in_recovery", "pg_last_wal_replay_lsn", "pg_last_wal_receive_lsn",
    "pg_last_xact_replay_timestamp", "pg_is_wal_replay_paused", "pg_get_wal_replay_pause_state",
};

struct Unsafe {
  std::string_view name;
  FunctionEffect effect;
};

// Known and not replica-safe: they write, assign transaction ids, lock, signal or change the session.
constexpr Unsafe kUnsafe[] = {
    {"nextval", FunctionEffect::none}, {"setval", FunctionEffect::none},
    {"currval", FunctionEffect::none}, {"lastval", FunctionEffect::none},
    {"setseed", FunctionEffect::none}, {"set_config", FunctionEffect::set_config},
    {"pg_notify", FunctionEffect::none}, {"txid_current", FunctionEffect::none},
    {"txid_current_if_assigned", FunctionEffect::none}, {"pg_current_xact_id", FunctionEffect::none},
    {"pg_current_xact_id_if_assigned", FunctionEffect::none},
    {"pg_current_wal_lsn", FunctionEffect::none}, {"pg_current_wal_insert_lsn", FunctionEffect::none},
    {"pg_switch_wal", FunctionEffect::none}, {"pg_export_snapshot", FunctionEffect::none},
    {"pg_walfile_name", FunctionEffect::none}, {"pg_walfile_name_offset", FunctionEffect::none},
    {"pg_advisory_lock", FunctionEffect::advisory_lock},
    {"pg_advisory_lock_shared", FunctionEffect::advisory_lock},
    {"pg_try_advisory_lock", FunctionEffect::advisory_lock},
    {"pg_try_advisory_lock_shared", FunctionEffect::advisory_lock},
    {"pg_advisory_xact_lock", FunctionEffect::advisory_xact_lock},
    {"pg_advisory_xact_lock_shared", FunctionEffect::advisory_xact_lock},
    {"pg_try_advisory_xact_lock", FunctionEffect::advisory_xact_lock},
    {"pg_try_advisory_xact_lock_shared", FunctionEffect::advisory_xact_lock},
    {"pg_advisory_unlock", FunctionEffect::advisory_unlock},
    {"pg_advisory_unlock_shared", FunctionEffect::advisory_unlock},
    {"pg_advisory_unlock_all", FunctionEffect::advisory_unlock_all},
};

using Table = std::unordered_map<std::string_view, FunctionInfo>;

Table build_table() {
  Table t;
  for (auto n : kImmutableBuiltins) t[n] = FunctionInfo{true, false, FunctionEffect::none, true};
  for (auto n : kStableBuiltins) t[n] = FunctionInfo{true, true, FunctionEffect::none, true};
  for (auto n : kCacheable) t[n] = FunctionInfo{true, false, FunctionEffect::none, true};
  for (auto n : kVolatileSafe) t[n] = FunctionInfo{true, true, FunctionEffect::none, true};
  for (auto& u : kUnsafe) t[u.name] = FunctionInfo{false, true, u.effect, true};
  return t;
}

const Table& table() {
  static const Table t = build_table();  // initialised once, thread-safe (C++11 magic statics)
  return t;
}

bool in_extra(std::string_view schema, std::string_view name, const std::vector<std::string>& extra) {
  for (const auto& e : extra) {
    if (schema.empty() ? e == name
                       : (e.size() == schema.size() + 1 + name.size() && e.starts_with(schema) &&
                          e[schema.size()] == '.' && std::string_view(e).substr(schema.size() + 1) == name)) {
      return true;
    }
  }
  return false;
}

}  // namespace

FunctionInfo lookup_function(std::string_view schema, std::string_view name,
                             const std::vector<std::string>& extra_safe) {
  if (schema.empty() || schema == "pg_catalog") {
    const auto& t = table();
    if (auto it = t.find(name); it != t.end()) return it->second;
  }
  FunctionInfo unknown;
  unknown.replica_safe = in_extra(schema, name, extra_safe);
  return unknown;
}

}  // namespace pgs::router
