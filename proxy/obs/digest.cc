#include "proxy/obs/digest.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <boost/json.hpp>

#include "proxy/obs/json_text.h"

namespace pgs::obs {

namespace {

std::string fixed3(double v) {
  char buf[48];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, 3);
  return std::string(buf, r.ptr);
}

// Rounded to microseconds so the JSON stays short.
double round_ms(double ms) { return std::round(ms * 1000.0) / 1000.0; }

}  // namespace

DigestTable::DigestTable(DigestOptions options) : options_(options) {
  options_.capacity = std::max<size_t>(1, options_.capacity);
}

void DigestTable::make_room() {
  if (entries_.size() < options_.capacity) return;
  const size_t evict = std::max<size_t>(1, options_.capacity / 10);
  std::vector<std::pair<uint64_t, uint64_t>> keys;  // (calls, last_seen) -> fingerprint via index
  std::vector<uint64_t> fps;
  keys.reserve(entries_.size());
  fps.reserve(entries_.size());
  for (const auto& [fp, e] : entries_) {
    keys.emplace_back(e.calls, e.last_seen);
    fps.push_back(fp);
  }
  std::vector<size_t> order(fps.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const size_t n = std::min(evict, order.size());
  std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n - 1), order.end(),
                   [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  for (size_t i = 0; i < n; ++i) entries_.erase(fps[order[i]]);
  evictions_ += n;
}

DigestEntry& DigestTable::slot(uint64_t fingerprint, std::string_view query) {
  auto it = entries_.find(fingerprint);
  if (it == entries_.end()) {
    make_room();
    it = entries_.emplace(fingerprint, DigestEntry{}).first;
    it->second.fingerprint = fingerprint;
    it->second.query = std::string(truncate_utf8(query, options_.max_query_bytes));
  }
  it->second.last_seen = ++tick_;
  return it->second;
}

bool DigestTable::record_if_present(uint64_t fingerprint, std::chrono::microseconds duration, uint64_t rows,
                                    bool error, bool cache_hit) {
  if (!entries_.contains(fingerprint)) return false;
  record(fingerprint, {}, duration, rows, error, cache_hit);
  return true;
}

void DigestTable::record(uint64_t fingerprint, std::string_view normalized_query,
                         std::chrono::microseconds duration, uint64_t rows, bool error, bool cache_hit) {
  DigestEntry& e = slot(fingerprint, normalized_query);
  const double us = static_cast<double>(std::max<int64_t>(0, duration.count()));
  e.calls += 1;
  e.rows += rows;
  e.errors += error ? 1 : 0;
  e.cache_hits += cache_hit ? 1 : 0;
  e.total_us += us;
  e.latency.record(us);
}

void DigestTable::merge(const DigestTable& other) {
  // Most-called first, so that if this table must evict, the other's heavy hitters survive.
  std::vector<const DigestEntry*> in;
  in.reserve(other.entries_.size());
  for (const auto& [fp, e] : other.entries_) in.push_back(&e);
  std::sort(in.begin(), in.end(), [](const DigestEntry* a, const DigestEntry* b) {
    return a->calls != b->calls ? a->calls > b->calls : a->fingerprint < b->fingerprint;
  });
  for (const DigestEntry* src : in) {
    DigestEntry& e = slot(src->fingerprint, src->query);
    e.calls += src->calls;
    e.rows += src->rows;
    e.errors += src->errors;
    e.cache_hits += src->cache_hits;
    e.total_us += src->total_us;
    e.latency.merge(src->latency);
  }
}

const DigestEntry* DigestTable::find(uint64_t fingerprint) const {
  auto it = entries_.find(fingerprint);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<const DigestEntry*> DigestTable::top(size_t limit) const {
  std::vector<const DigestEntry*> out;
  out.reserve(entries_.size());
  for (const auto& [fp, e] : entries_) out.push_back(&e);
  const auto before = [](const DigestEntry* a, const DigestEntry* b) {
    if (a->total_us != b->total_us) return a->total_us > b->total_us;
    if (a->calls != b->calls) return a->calls > b->calls;
    return a->fingerprint < b->fingerprint;
  };
  const size_t n = std::min(limit, out.size());
  std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n), out.end(), before);
  out.resize(n);
  return out;
}

void DigestTable::clear() { entries_.clear(); }

std::string digests_json(const DigestTable& table, size_t limit) {
  boost::json::array list;
  for (const DigestEntry* e : table.top(limit)) {
    boost::json::object o;
    o["fingerprint"] = fingerprint_hex(e->fingerprint);
    o["query"] = sanitize_utf8(e->query);
    o["calls"] = e->calls;
    o["total_ms"] = round_ms(e->total_ms());
    o["mean_ms"] = round_ms(e->mean_ms());
    o["min_ms"] = round_ms(e->latency.min_us() / 1000.0);
    o["max_ms"] = round_ms(e->latency.max_us() / 1000.0);
    o["p50_ms"] = round_ms(e->percentile_ms(0.50));
    o["p95_ms"] = round_ms(e->percentile_ms(0.95));
    o["p99_ms"] = round_ms(e->percentile_ms(0.99));
    o["rows"] = e->rows;
    o["errors"] = e->errors;
    o["cache_hits"] = e->cache_hits;
    list.push_back(std::move(o));
  }
  boost::json::object root;
  root["capacity"] = table.capacity();
  root["size"] = table.size();
  root["evictions"] = table.evictions();
  root["digests"] = std::move(list);
  return boost::json::serialize(root);
}

const std::vector<std::string>& digest_columns() {
  static const std::vector<std::string> columns = {
      "fingerprint", "query",  "calls",  "total_ms", "mean_ms", "p50_ms",
      "p95_ms",      "p99_ms", "rows",   "errors",   "cache_hits"};
  return columns;
}

std::vector<std::vector<std::string>> digest_rows(const DigestTable& table, size_t limit) {
  std::vector<std::vector<std::string>> rows;
  for (const DigestEntry* e : table.top(limit)) {
    rows.push_back({fingerprint_hex(e->fingerprint), e->query, std::to_string(e->calls),
                    fixed3(e->total_ms()), fixed3(e->mean_ms()), fixed3(e->percentile_ms(0.50)),
                    fixed3(e->percentile_ms(0.95)), fixed3(e->percentile_ms(0.99)),
                    std::to_string(e->rows), std::to_string(e->errors), std::to_string(e->cache_hits)});
  }
  return rows;
}

size_t digest_limit_from_query(std::string_view query, size_t fallback, size_t max) {
  size_t result = fallback;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    if (part.starts_with("limit=")) {
      const std::string_view num = part.substr(6);
      size_t v = 0;
      auto r = std::from_chars(num.data(), num.data() + num.size(), v);
      if (r.ec == std::errc{} && r.ptr == num.data() + num.size()) result = v;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::clamp<size_t>(result, 1, std::max<size_t>(1, max));
}

DigestHub::DigestHub(DigestOptions options) : table_(options) {}

void DigestHub::publish(DigestTable& worker_table) {
  {
    std::lock_guard lock(mu_);
    table_.merge(worker_table);
  }
  worker_table = DigestTable(worker_table.options());
}

DigestTable DigestHub::snapshot() const {
  std::lock_guard lock(mu_);
  return table_;
}

std::string DigestHub::json(size_t limit) const {
  std::lock_guard lock(mu_);
  return digests_json(table_, limit);
}

std::vector<std::vector<std::string>> DigestHub::rows(size_t limit) const {
  std::lock_guard lock(mu_);
  return digest_rows(table_, limit);
}

void DigestHub::reset() {
  std::lock_guard lock(mu_);
  table_ = DigestTable(table_.options());
}

}  // namespace pgs::obs
