// Statement text for per-fingerprint digests, without the parser: literals (numbers, '...' strings,
// E'...' strings, $tag$...$tag$ bodies) become '?', comments go, whitespace folds. Cheap enough to run
// on every statement (a single pass), and no data value ever reaches /digests. The slow-query log, which
// sees few statements, uses the real parser instead (router/fingerprint.h).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace pgs::proxy {

// At most `max_bytes` of output; longer text is cut (the fingerprint covers what is kept), then its
// trailing spaces dropped.
std::string lexical_normalize(std::string_view sql, size_t max_bytes = 2048);
uint64_t lexical_fingerprint(std::string_view normalized);
// lexical_fingerprint(lexical_normalize(sql, max_bytes)) without allocating (up to 2 kB of output).
uint64_t lexical_shape(std::string_view sql, size_t max_bytes = 2048);

// ASCII lower case (SQL keywords are ASCII): no locale, inlined — the keyword scans that run on every
// statement call it per byte, where std::tolower (a libc call) showed up in profiles.
constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }
// SQL white space (what std::isspace means in the C locale the process keeps), inline for the same reason.
constexpr bool ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Words (lower-case ASCII, starting with a letter) found anywhere in a text, case-insensitively: the
// cheap pre-checks that decide whether a statement is worth parsing. The tables are built once per
// word list (keep the set in a static); a search is one pass, no allocation, and compares a byte with
// a word only when it and the next byte are that word's first two letters.
class KeywordSet {
 public:
  explicit KeywordSet(std::span<const std::string_view> words);  // `words` must outlive the set
  bool found_in(std::string_view sql) const;
  // Calls visit(k, at) for each place `at` where word k (its index in `words`) occurs, in text order
  // (the words beyond the first 32 after the others), until visit returns true; returns whether it did.
  template <class Visit>
  bool find_each(std::string_view sql, Visit&& visit) const;

 private:
  std::span<const std::string_view> words_;
  std::array<uint32_t, 256> first_{};   // by byte: the words (a bit each) that start with it
  std::array<uint32_t, 256> second_{};  // by byte: the words whose second letter it is
  std::unique_ptr<KeywordSet> rest_;    // words beyond the 32 a mask holds

  // find_each, its words numbered from `base`; `visit` is called only at a match (rare: no inlining needed).
  bool find_each_from(std::string_view sql, size_t base, const void* ctx,
                      bool (*visit)(const void*, size_t, size_t)) const;
};

template <class Visit>
bool KeywordSet::find_each(std::string_view sql, Visit&& visit) const {
  using V = std::remove_reference_t<Visit>;
  return find_each_from(sql, 0, &visit,
                        [](const void* v, size_t k, size_t at) { return (*static_cast<const V*>(v))(k, at); });
}

// KeywordSet(words).found_in(sql), for a list used once.
bool mentions_any(std::string_view sql, std::span<const std::string_view> words);

// The statement a `PREPARE name [(type, ...)] AS statement` text prepares; nullopt when the text is not
// of that shape (a leading comment, say): the caller then assumes the worst.
std::optional<std::string_view> prepared_statement_body(std::string_view prepare_sql);

}  // namespace pgs::proxy
