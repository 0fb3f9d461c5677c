// Statement text for per-fingerprint digests, without the parser: literals (numbers, '...' strings,
// E'...' strings, $tag$...$tag$ bodies) become '?', comments go, whitespace folds. Cheap enough to run
// on every statement (a single pass), and no data value ever reaches /digests. The slow-query log, which
// sees few statements, uses the real parser instead (router/fingerprint.h).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace pgs::proxy {

// At most `max_bytes` of output; longer text is cut (the fingerprint covers what is kept).
std::string lexical_normalize(std::string_view sql, size_t max_bytes = 2048);
uint64_t lexical_fingerprint(std::string_view normalized);

// ASCII lower case (SQL keywords are ASCII): no locale, inlined — the keyword scans that run on every
// statement call it per byte, where std::tolower (a libc call) showed up in profiles.
constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

// True when `sql` contains one of `words` (lower-case ASCII letters) anywhere, case-insensitively: the
// cheap pre-checks that decide whether a statement is worth parsing. One pass, no allocation.
bool mentions_any(std::string_view sql, std::span<const std::string_view> words);

// The statement a `PREPARE name [(type, ...)] AS statement` text prepares; nullopt when the text is not
// of that shape (a leading comment, say): the caller then assumes the worst.
std::optional<std::string_view> prepared_statement_body(std::string_view prepare_sql);

}  // namespace pgs::proxy
