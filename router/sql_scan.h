// A small SQL lexer for what must be known before (or without) the parser: leading comments (hints),
// a bound on nesting depth (stack guard), the first keyword of a statement, the text of a literal.
// It follows the lexical rules libpg_query uses (standard_conforming_strings = on): '' strings with ''
// escapes, E'' strings with backslash escapes, $tag$ dollar quotes, "" identifiers, -- and nested /* */
// comments. Unterminated quotes or comments run to the end of the text.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pgs::router::detail {

struct ScanStats {
  size_t nesting_tokens = 0;     // operators, words, ( and [ : everything that can deepen a parse tree
  size_t max_comment_depth = 0;  // deepest /* /* */ */ nesting
  bool has_nul = false;          // a NUL byte: the text cannot be handed to a C parser as is
};
ScanStats scan_stats(std::string_view sql);

// Postgres's lexer takes time quadratic in comment nesting depth (4000 levels: ~1 s); nobody nests
// comments this deep on purpose.
inline constexpr size_t kMaxCommentDepth = 32;

// True when the text must not be handed to libpg_query (stack depth or CPU time would be unbounded).
inline bool too_complex(const ScanStats& st, size_t max_tokens) {
  return st.nesting_tokens > max_tokens || st.max_comment_depth > kMaxCommentDepth;
}

// Position of the first byte that is not whitespace or part of a comment, from `pos` on.
size_t skip_space_and_comments(std::string_view sql, size_t pos = 0);

// The bodies of the comments before the first token (without the comment markers), in order.
std::vector<std::string_view> leading_comments(std::string_view sql);

// The first word of the statement, skipping whitespace, comments and opening parentheses ("" if none).
std::string_view first_word(std::string_view sql);

// The literal token starting at `pos` (a number with optional leading sign, or a quoted string with its
// quotes), "" if there is none. Used to read values whose JSON form libpg_query 15-4.0 gets wrong
// (negative integers are printed as {}).
std::string_view literal_at(std::string_view sql, size_t pos);

// The text with every numeric constant (123, 1.5, .5, 1e-3) replaced by one 0x01 byte, a byte no SQL
// token may contain, so that texts differing only in numeric constants share one shape; strings,
// identifiers, comments (hints), $n parameters and dollar quotes are kept as written. False when the
// text has no numeric constant or holds a NUL or 0x01 byte (`out` is then unspecified).
bool numeric_shape(std::string_view sql, std::string& out);

// ASCII case-insensitive equality.
bool iequals(std::string_view a, std::string_view b);

}  // namespace pgs::router::detail
