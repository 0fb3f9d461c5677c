#include "proxy/session/statement_text.h"

#include <array>
#include <algorithm>
#include <bit>
#include <cstring>

#include <xxhash.h>

#include <cctype>

namespace pgs::proxy {

namespace {
// ASCII classes, inline (every statement is scanned per byte; the process keeps the C locale, where
// <cctype> means the same).
constexpr bool ascii_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool ascii_alnum(char c) { return ascii_digit(c) || (ascii_lower(c) >= 'a' && ascii_lower(c) <= 'z'); }
// By byte: does it continue a name (letters, digits, '_', '$')? A table: the normaliser asks per byte.
constexpr std::array<bool, 256> kIdentChar = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) t[static_cast<size_t>(c)] = ascii_alnum(static_cast<char>(c)) || c == '_' || c == '$';
  return t;
}();
bool ident_char(char c) { return kIdentChar[static_cast<unsigned char>(c)]; }
// By byte: does it start a name (a letter or '_')?
constexpr std::array<bool, 256> kNameStart = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const char l = ascii_lower(static_cast<char>(c));
    t[static_cast<size_t>(c)] = (l >= 'a' && l <= 'z') || c == '_';
  }
  return t;
}();
// By byte: ascii_lower, as a table for the copy of every name.
constexpr std::array<char, 256> kLower = [] {
  std::array<char, 256> t{};
  for (int c = 0; c < 256; ++c) t[static_cast<size_t>(c)] = ascii_lower(static_cast<char>(c));
  return t;
}();

// Index just past a quoted run starting at `i` (the opening quote), honouring doubled quotes and, for
// E'' strings, backslash escapes. Unterminated: the end.
size_t skip_quoted(std::string_view s, size_t i, char quote, bool backslash_escapes) {
  for (size_t j = i + 1; j < s.size(); ++j) {
    if (backslash_escapes && s[j] == '\\') {
      ++j;
      continue;
    }
    if (s[j] == quote) {
      if (j + 1 < s.size() && s[j + 1] == quote) {
        ++j;
        continue;
      }
      return j + 1;
    }
  }
  return s.size();
}

// $tag$ ... $tag$ starting at `i`; 0 if `i` does not open a dollar quote.
size_t skip_dollar(std::string_view s, size_t i) {
  size_t j = i + 1;
  while (j < s.size() && (ascii_alnum(s[j]) || s[j] == '_')) ++j;
  if (j >= s.size() || s[j] != '$') return 0;
  if (j > i + 1 && ascii_digit(s[i + 1])) return 0;  // $1 parameter
  std::string_view tag = s.substr(i, j - i + 1);
  size_t end = s.find(tag, j + 1);
  return end == std::string_view::npos ? s.size() : end + tag.size();
}
}  // namespace

namespace {
// Where the normalised text goes: at most `cap` bytes, the rest dropped (the caller's window). Plain
// stores into a buffer the caller sized: this runs per byte of every statement.
class NormalizedOut {
 public:
  NormalizedOut(char* buf, size_t cap) : buf_(buf), cap_(cap) {}
  bool full() const { return n_ >= cap_; }
  size_t size() const { return n_; }
  void put(char c) {
    if (n_ < cap_) buf_[n_++] = c;
  }
  void put_space() {
    if (n_ > 0 && buf_[n_ - 1] != ' ') put(' ');
  }
  // Copies the name starting at s[i] lower-cased (its bytes up to the first that does not continue a
  // name), in the same pass that finds its end; returns that end. The window must not be full yet.
  size_t put_name(std::string_view s, size_t i) {
    const size_t end = std::min(s.size(), i + (cap_ - n_));
    buf_[n_++] = kLower[static_cast<unsigned char>(s[i++])];  // the name's first byte, always taken
    while (i < end && ident_char(s[i])) buf_[n_++] = kLower[static_cast<unsigned char>(s[i++])];
    while (i < s.size() && ident_char(s[i])) ++i;  // the rest, beyond the window
    return i;
  }
  void append(std::string_view v) {
    const size_t k = std::min(v.size(), cap_ - n_);
    std::memcpy(buf_ + n_, v.data(), k);
    n_ += k;
  }
  void trim_trailing_spaces() {
    while (n_ > 0 && buf_[n_ - 1] == ' ') --n_;
  }

 private:
  char* buf_;
  size_t cap_;
  size_t n_ = 0;
};

// What a byte means to normalize_into where a token may start. A table: the normaliser runs per byte of
// every statement (session-code memo and digests).
enum class NormByte : uint8_t {
  other,    // copied lower-cased
  name,     // starts a name or keyword (a letter or '_', but 'e' and 'E')
  e,        // 'e' or 'E': an E'' string before a quote, else a name
  space,    // collapsed to one space
  digit,    // starts a number, unless a name's byte comes right before
  special,  // '-', '/', quotes, '$': looked at closer
};
constexpr std::array<NormByte, 256> kNormByte = [] {
  std::array<NormByte, 256> t{};
  for (int i = 0; i < 256; ++i) {
    const char c = static_cast<char>(i);
    NormByte k = NormByte::other;
    if (kNameStart[static_cast<size_t>(i)]) k = c == 'e' || c == 'E' ? NormByte::e : NormByte::name;
    if (ascii_space(c)) k = NormByte::space;
    if (ascii_digit(c)) k = NormByte::digit;
    if (c == '-' || c == '/' || c == '\'' || c == '"' || c == '$') k = NormByte::special;
    t[static_cast<size_t>(i)] = k;
  }
  return t;
}();

// The normalisation itself (see statement_text.h). The output is never longer than the input, so a
// buffer of min(s.size(), max_bytes) bytes holds it. Returns its length.
size_t normalize_into(std::string_view s, size_t max_bytes, char* buf) {
  NormalizedOut out(buf, std::min(s.size(), max_bytes));
  auto after_name_byte = [&](size_t i) { return i > 0 && ident_char(s[i - 1]); };
  size_t i = 0;
  while (i < s.size() && !out.full()) {
    const char c = s[i];
    const char next = i + 1 < s.size() ? s[i + 1] : '\0';
    switch (kNormByte[static_cast<unsigned char>(c)]) {
      case NormByte::other:
        out.put(kLower[static_cast<unsigned char>(c)]);
        ++i;
        break;
      case NormByte::e:
        if (next == '\'' && !after_name_byte(i)) {  // E'' string, backslash escapes
          i = skip_quoted(s, i + 1, '\'', true);
          out.put('?');
          break;
        }
        [[fallthrough]];
      case NormByte::name:
        i = out.put_name(s, i);  // copied lower-cased as one run (digits and $ in it are the name's)
        break;
      case NormByte::space:
        out.put_space();
        ++i;
        break;
      case NormByte::digit:
        if (after_name_byte(i)) {
          out.put(c);
          ++i;
        } else {
          while (i < s.size() && (ascii_alnum(s[i]) || s[i] == '.')) ++i;
          out.put('?');
        }
        break;
      case NormByte::special:
        if (c == '-' && next == '-') {  // line comment
          size_t e = s.find('\n', i);
          i = e == std::string_view::npos ? s.size() : e;
          out.put_space();
        } else if (c == '/' && next == '*') {  // block comment (nesting is rare enough to ignore here)
          size_t e = s.find("*/", i + 2);
          i = e == std::string_view::npos ? s.size() : e + 2;
          out.put_space();
        } else if (c == '\'') {
          i = skip_quoted(s, i, '\'', false);
          out.put('?');
        } else if (c == '"') {  // quoted identifier: kept
          size_t e = skip_quoted(s, i, '"', false);
          out.append(s.substr(i, e - i));
          i = e;
        } else if (c == '$' && !after_name_byte(i)) {
          size_t e = skip_dollar(s, i);
          if (e != 0) {
            out.put('?');
            i = e;
          } else {  // $1 parameter
            out.put('$');
            ++i;
            while (i < s.size() && ascii_digit(s[i])) out.put(s[i++]);
          }
        } else {
          out.put(c);  // '-', '/' or '$' alone
          ++i;
        }
        break;
    }
  }
  out.trim_trailing_spaces();
  return out.size();
}
}  // namespace

std::string lexical_normalize(std::string_view s, size_t max_bytes) {
  std::string out(std::min(s.size(), max_bytes), '\0');
  out.resize(normalize_into(s, max_bytes, out.data()));
  return out;
}

uint64_t lexical_shape(std::string_view s, size_t max_bytes) {
  constexpr size_t kStackBytes = 2048;
  if (std::min(s.size(), max_bytes) > kStackBytes) return lexical_fingerprint(lexical_normalize(s, max_bytes));
  char buf[kStackBytes];
  return lexical_fingerprint(std::string_view(buf, normalize_into(s, max_bytes, buf)));
}

uint64_t lexical_fingerprint(std::string_view normalized) {
  return XXH3_64bits(normalized.data(), normalized.size());
}

KeywordSet::KeywordSet(std::span<const std::string_view> words) : words_(words) {
  for (size_t k = 0; k < words.size() && k < 32; ++k) {
    std::string_view w = words[k];
    if (w.empty() || w[0] < 'a' || w[0] > 'z') continue;  // never matched, as documented
    const uint32_t bit = 1u << k;
    first_[static_cast<unsigned char>(w[0])] |= bit;
    first_[static_cast<unsigned char>(w[0] - ('a' - 'A'))] |= bit;
    if (w.size() == 1) {
      for (uint32_t& m : second_) m |= bit;  // any next byte will do, the end of the text too
      continue;
    }
    const char c = w[1];
    second_[static_cast<unsigned char>(c)] |= bit;
    if (c >= 'a' && c <= 'z') second_[static_cast<unsigned char>(c - ('a' - 'A'))] |= bit;
  }
  if (words.size() > 32) rest_ = std::make_unique<KeywordSet>(words.subspan(32));
}

bool KeywordSet::found_in(std::string_view sql) const {
  return find_each(sql, [](size_t, size_t) { return true; });
}

bool KeywordSet::find_each_from(std::string_view sql, size_t base, const void* ctx,
                                bool (*visit)(const void*, size_t, size_t)) const {
  const auto* bytes = reinterpret_cast<const unsigned char*>(sql.data());
  const size_t n = sql.size();
  for (size_t i = 0; i < n; ++i) {
    uint32_t m = first_[bytes[i]];
    if (m == 0) continue;
    m &= second_[i + 1 < n ? bytes[i + 1] : 0];
    for (; m != 0; m &= m - 1) {
      const auto k = static_cast<size_t>(std::countr_zero(m));
      std::string_view w = words_[k];
      if (n - i < w.size()) continue;
      size_t j = 2;
      while (j < w.size() && ascii_lower(sql[i + j]) == w[j]) ++j;
      if (j >= w.size() && visit(ctx, base + k, i)) return true;
    }
  }
  return rest_ != nullptr && rest_->find_each_from(sql, base + 32, ctx, visit);
}

bool mentions_any(std::string_view sql, std::span<const std::string_view> words) {
  return KeywordSet(words).found_in(sql);
}

namespace {
size_t skip_space(std::string_view s, size_t i) {
  while (i < s.size() && ascii_space(s[i])) ++i;
  return i;
}
bool keyword_at(std::string_view s, size_t i, std::string_view word) {
  if (s.size() - i < word.size()) return false;
  for (size_t k = 0; k < word.size(); ++k) {
    if (ascii_lower(s[i + k]) != word[k]) return false;
  }
  size_t end = i + word.size();
  return end == s.size() || ascii_space(s[end]) || s[end] == '(' || s[end] == '"';
}
}  // namespace

std::optional<std::string_view> prepared_statement_body(std::string_view sql) {
  size_t i = skip_space(sql, 0);
  if (!keyword_at(sql, i, "prepare")) return std::nullopt;
  i = skip_space(sql, i + 7);
  // The name: a quoted identifier ("" escapes a quote) or a plain one.
  if (i < sql.size() && sql[i] == '"') {
    for (++i; i < sql.size(); ++i) {
      if (sql[i] != '"') continue;
      if (i + 1 < sql.size() && sql[i + 1] == '"') {
        ++i;
        continue;
      }
      break;
    }
    if (i >= sql.size()) return std::nullopt;
    ++i;
  } else {
    size_t start = i;
    while (i < sql.size() && !ascii_space(sql[i]) && sql[i] != '(') ++i;
    if (i == start) return std::nullopt;
  }
  i = skip_space(sql, i);
  if (i < sql.size() && sql[i] == '(') {  // parameter types: balanced parentheses, no quotes inside
    int depth = 0;
    for (; i < sql.size(); ++i) {
      if (sql[i] == '\'' || sql[i] == '"') return std::nullopt;
      if (sql[i] == '(') ++depth;
      if (sql[i] == ')' && --depth == 0) break;
    }
    if (i >= sql.size()) return std::nullopt;
    i = skip_space(sql, i + 1);
  }
  if (!keyword_at(sql, i, "as")) return std::nullopt;
  i = skip_space(sql, i + 2);
  if (i >= sql.size()) return std::nullopt;
  return sql.substr(i);
}

}  // namespace pgs::proxy
