#include "router/sql_scan.h"

#include <array>
#include <cctype>
#include <cstdint>

namespace pgs::router::detail {
namespace {

// ASCII classes, inline (the text is scanned per byte on every statement; SQL keywords and number
// syntax are ASCII; the process never changes the C locale, where <cctype> means the same).
constexpr bool ascii_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - ('a' - 'A')) : c; }

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
constexpr bool is_ident_start(char c) {
  return ascii_alpha(c) || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
constexpr bool is_ident_char(char c) { return is_ident_start(c) || ascii_digit(c) || c == '$'; }
bool is_op_char(char c) {
  switch (c) {
    case '+': case '-': case '*': case '/': case '<': case '>': case '=': case '~': case '!':
    case '@': case '#': case '%': case '^': case '&': case '|': case '`': case '?': case ':':
      return true;
    default:
      return false;
  }
}

// End of a /* */ comment starting at `pos` (which points at '/'); comments nest in Postgres.
size_t skip_block_comment(std::string_view s, size_t pos, size_t* max_depth = nullptr) {
  size_t depth = 0;
  while (pos < s.size()) {
    if (s[pos] == '/' && pos + 1 < s.size() && s[pos + 1] == '*') {
      ++depth;
      if (max_depth && depth > *max_depth) *max_depth = depth;
      pos += 2;
    } else if (s[pos] == '*' && pos + 1 < s.size() && s[pos + 1] == '/') {
      pos += 2;
      if (--depth == 0) return pos;
    } else {
      ++pos;
    }
  }
  return s.size();
}

size_t skip_line_comment(std::string_view s, size_t pos) {
  while (pos < s.size() && s[pos] != '\n') ++pos;
  return pos;
}

// `pos` at the opening quote; `backslash` for E'' strings. Returns the position after the closing quote.
size_t skip_quoted(std::string_view s, size_t pos, char quote, bool backslash) {
  ++pos;
  while (pos < s.size()) {
    char c = s[pos];
    if (backslash && c == '\\') {
      pos += 2;
    } else if (c == quote) {
      if (pos + 1 < s.size() && s[pos + 1] == quote) {
        pos += 2;
      } else {
        return pos + 1;
      }
    } else {
      ++pos;
    }
  }
  return s.size();
}

// `pos` at '$'. If a dollar-quote tag starts here, returns the position after the closing tag; else 0.
size_t skip_dollar_quoted(std::string_view s, size_t pos) {
  size_t end = pos + 1;
  if (end < s.size() && ascii_digit(s[end])) return 0;  // $1 parameter
  while (end < s.size() && s[end] != '$') {
    if (!is_ident_char(s[end]) || s[end] == '$') return 0;
    ++end;
  }
  if (end >= s.size()) return 0;
  std::string_view tag = s.substr(pos, end - pos + 1);
  size_t close = s.find(tag, end + 1);
  return close == std::string_view::npos ? s.size() : close + tag.size();
}

bool starts_comment(std::string_view s, size_t pos) {
  return pos + 1 < s.size() && ((s[pos] == '-' && s[pos + 1] == '-') || (s[pos] == '/' && s[pos + 1] == '*'));
}

size_t skip_comment(std::string_view s, size_t pos) {
  return s[pos] == '-' ? skip_line_comment(s, pos) : skip_block_comment(s, pos);
}

// A string-literal prefix (E, B, X, U&, N) directly before a quote: returns the quote position or npos.
size_t prefixed_quote(std::string_view s, size_t pos, bool* backslash) {
  char c = ascii_upper(s[pos]);
  *backslash = false;
  if ((c == 'E' || c == 'B' || c == 'X' || c == 'N') && pos + 1 < s.size() && s[pos + 1] == '\'') {
    *backslash = c == 'E';
    return pos + 1;
  }
  if (c == 'U' && pos + 2 < s.size() && s[pos + 1] == '&' && (s[pos + 2] == '\'' || s[pos + 2] == '"')) {
    return pos + 2;
  }
  return std::string_view::npos;
}

// When a quoted string, a quoted identifier, a dollar quote or a $n parameter starts at `pos` (whose
// contents are no code tokens), the position after it; npos otherwise. Comments are the caller's.
size_t skip_quoted_token(std::string_view s, size_t pos) {
  char c = s[pos];
  bool backslash = false;
  if (c == '\'' || c == '"') return skip_quoted(s, pos, c, false);
  if (size_t q = prefixed_quote(s, pos, &backslash); q != std::string_view::npos) {
    return skip_quoted(s, q, s[q], backslash);
  }
  if (c != '$') return std::string_view::npos;
  size_t end = skip_dollar_quoted(s, pos);
  if (end != 0) return end;
  end = pos + 1;
  while (end < s.size() && ascii_digit(s[end])) ++end;
  return end;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii_upper(a[i]) != ascii_upper(b[i])) {
      return false;
    }
  }
  return true;
}

size_t skip_space_and_comments(std::string_view sql, size_t pos) {
  while (pos < sql.size()) {
    if (is_space(sql[pos])) {
      ++pos;
    } else if (starts_comment(sql, pos)) {
      pos = skip_comment(sql, pos);
    } else {
      break;
    }
  }
  return pos;
}

std::vector<std::string_view> leading_comments(std::string_view sql) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < sql.size()) {
    if (is_space(sql[pos])) {
      ++pos;
      continue;
    }
    if (!starts_comment(sql, pos)) break;
    size_t end = skip_comment(sql, pos);
    bool block = sql[pos] == '/';
    size_t body_end = end;
    if (block && end >= pos + 4 && sql.substr(end - 2, 2) == "*/") body_end = end - 2;
    out.push_back(sql.substr(pos + 2, body_end - (pos + 2)));
    pos = end;
  }
  return out;
}

std::string_view first_word(std::string_view sql) {
  size_t pos = skip_space_and_comments(sql, 0);
  while (pos < sql.size() && sql[pos] == '(') pos = skip_space_and_comments(sql, pos + 1);
  size_t end = pos;
  while (end < sql.size() && is_ident_char(sql[end])) ++end;
  return sql.substr(pos, end - pos);
}

ScanStats scan_stats(std::string_view s) {
  ScanStats st;
  size_t pos = 0;
  while (pos < s.size()) {
    char c = s[pos];
    if (c == '\0') {
      st.has_nul = true;
      ++pos;
    } else if (is_space(c) || c == ',' || c == ';' || c == '.' || c == ')' || c == ']') {
      ++pos;
    } else if (starts_comment(s, pos)) {
      pos = c == '/' ? skip_block_comment(s, pos, &st.max_comment_depth) : skip_line_comment(s, pos);
    } else if (size_t end = skip_quoted_token(s, pos); end != std::string_view::npos) {
      pos = end;
    } else if (ascii_digit(c)) {
      while (pos < s.size() && (is_ident_char(s[pos]) || s[pos] == '.')) ++pos;
    } else if (is_ident_start(c)) {
      ++st.nesting_tokens;
      while (pos < s.size() && is_ident_char(s[pos])) ++pos;
    } else if (is_op_char(c)) {
      ++st.nesting_tokens;
      while (pos < s.size() && is_op_char(s[pos]) && !starts_comment(s, pos)) ++pos;
    } else {
      ++st.nesting_tokens;  // ( [ and anything unexpected
      ++pos;
    }
  }
  return st;
}

namespace {
// What a byte means to numeric_shape where a token may start. A table: the scan runs per byte of every
// statement that has numbers in it (shape-first classification).
enum class ShapeByte : uint8_t {
  plain,    // white space, punctuation, operators other than '-' and '/': skipped
  name,     // starts a name (a letter, '_', a non-ASCII byte)
  prefix,   // E B X N U: a string prefix before a quote, else a name
  digit,    // starts a number
  special,  // NUL, 0x01, quotes, '$', '-', '/', '.': looked at closer
};
constexpr std::array<ShapeByte, 256> kShapeByte = [] {
  std::array<ShapeByte, 256> t{};
  for (int i = 0; i < 256; ++i) {
    const char c = static_cast<char>(i);
    const char up = ascii_upper(c);
    ShapeByte k = ShapeByte::plain;
    if (is_ident_start(c)) k = ShapeByte::name;
    if (up == 'E' || up == 'B' || up == 'X' || up == 'N' || up == 'U') k = ShapeByte::prefix;
    if (ascii_digit(c)) k = ShapeByte::digit;
    if (c == '\0' || c == '\x01' || c == '\'' || c == '"' || c == '$' || c == '-' || c == '/' || c == '.') {
      k = ShapeByte::special;
    }
    t[static_cast<size_t>(i)] = k;
  }
  return t;
}();
// By byte: is_ident_char, as a table.
constexpr std::array<bool, 256> kNameByte = [] {
  std::array<bool, 256> t{};
  for (int i = 0; i < 256; ++i) {
    t[static_cast<size_t>(i)] = is_ident_char(static_cast<char>(i));
  }
  return t;
}();

size_t skip_name(std::string_view s, size_t pos) {
  while (pos < s.size() && kNameByte[static_cast<unsigned char>(s[pos])]) ++pos;
  return pos;
}

// End of Postgres's {integer}, {decimal} or {real} starting at `pos` (a digit, or a '.' before one):
// digits [. digits] [(e|E) [+-] digits]; "1..2" is a range, not a decimal.
size_t number_end(std::string_view s, size_t pos) {
  auto digit = [&](size_t at) { return at < s.size() && ascii_digit(s[at]); };
  size_t end = pos;
  while (digit(end)) ++end;
  if (end < s.size() && s[end] == '.' && !(end + 1 < s.size() && s[end + 1] == '.')) {
    ++end;
    while (digit(end)) ++end;
  }
  if (end < s.size() && (s[end] == 'e' || s[end] == 'E')) {
    size_t exp = end + 1;
    if (exp < s.size() && (s[exp] == '+' || s[exp] == '-')) ++exp;
    if (digit(exp)) {
      end = exp;
      while (digit(end)) ++end;
    }
  }
  return end;
}
}  // namespace

bool numeric_shape(std::string_view s, std::string& out) {
  out.clear();
  size_t pos = 0, copied = 0;
  auto replace_number = [&] {
    const size_t end = number_end(s, pos);
    out.append(s.substr(copied, pos - copied));
    out.push_back('\x01');
    copied = pos = end;
  };
  while (pos < s.size()) {
    const char c = s[pos];
    switch (kShapeByte[static_cast<unsigned char>(c)]) {
      case ShapeByte::plain:
        ++pos;
        break;
      case ShapeByte::name:
        pos = skip_name(s, pos + 1);  // digits inside a name are the name's
        break;
      case ShapeByte::prefix:
        if (size_t end = skip_quoted_token(s, pos); end != std::string_view::npos) {
          pos = end;  // a prefixed string, kept as written
        } else {
          pos = skip_name(s, pos + 1);
        }
        break;
      case ShapeByte::digit:
        replace_number();
        break;
      case ShapeByte::special:
        if (c == '\0' || c == '\x01') return false;
        if (starts_comment(s, pos)) {
          pos = skip_comment(s, pos);
        } else if (c == '\'' || c == '"' || c == '$') {
          pos = skip_quoted_token(s, pos);  // a string, quoted name, dollar quote or $n: kept as written
        } else if (c == '.' && pos + 1 < s.size() && ascii_digit(s[pos + 1])) {
          replace_number();
        } else {
          ++pos;  // '-', '/' or '.' alone
        }
        break;
    }
  }
  if (copied == 0) return false;
  out.append(s.substr(copied));
  return true;
}

std::string_view literal_at(std::string_view sql, size_t pos) {
  if (pos >= sql.size()) return {};
  size_t end = pos;
  if (sql[end] == '\'') return sql.substr(pos, skip_quoted(sql, pos, '\'', false) - pos);
  bool backslash = false;
  if (size_t q = prefixed_quote(sql, pos, &backslash); q != std::string_view::npos) {
    return sql.substr(pos, skip_quoted(sql, q, sql[q], backslash) - pos);
  }
  if (sql[end] == '-' || sql[end] == '+') end = skip_space_and_comments(sql, end + 1);
  if (end >= sql.size() || !(ascii_digit(sql[end]) || sql[end] == '.')) return {};
  while (end < sql.size() && (is_ident_char(sql[end]) || sql[end] == '.')) ++end;
  return sql.substr(pos, end - pos);
}

}  // namespace pgs::router::detail
