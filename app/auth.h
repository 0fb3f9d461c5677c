// API tokens: "fp_" followed by 40 lowercase hex digits. Only SHA-256(token) is stored
// (core.api_tokens.token_hash), so a database leak does not leak usable tokens.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "app/db_pool.h"
#include "app/http_types.h"

namespace pgs::app {

std::string sha256_hex(std::string_view data);
// A fresh random token (OpenSSL RAND_bytes).
std::string random_token();
// The token of a seeded user, reproducible from the seed secret and the e-mail address, so that
// `seed` can print the same tokens again although only hashes are stored.
std::string derived_token(std::string_view secret, std::string_view email);
// The bytea literal of SHA-256(token) as a text-format parameter: "\x<64 hex>".
std::string token_hash_param(std::string_view token);

// "Bearer <token>" -> token; nullopt if the header is not a well-formed bearer token.
std::optional<std::string> bearer_token(std::string_view authorization);

// Looks the token up. ok(nullopt): unknown, revoked or expired token; error: database trouble.
Outcome<std::optional<User>, DbError> authenticate(DbPool& db, std::string_view token);

}  // namespace pgs::app
