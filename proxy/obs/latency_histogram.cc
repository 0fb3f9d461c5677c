#include "proxy/obs/latency_histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace pgs::obs {

namespace {
constexpr double kStepsPerDoubling = 4.0;

// The upper bounds of buckets 0 .. kBuckets - 2 (the last bucket's is +inf), computed once: record()
// runs for every statement and finds its bucket by binary search over these, with no log2 or exp2.
using UpperBounds = std::array<double, LatencyHistogram::kBuckets - 1>;
const UpperBounds kUpperBounds = [] {
  UpperBounds b{};
  for (size_t i = 0; i < b.size(); ++i) {
    b[i] = LatencyHistogram::kFirstBoundUs * std::exp2(static_cast<double>(i) / kStepsPerDoubling);
  }
  return b;
}();
}  // namespace

double LatencyHistogram::upper_bound_us(size_t i) {
  if (i + 1 >= kBuckets) return std::numeric_limits<double>::infinity();
  return kUpperBounds[i];
}

double LatencyHistogram::lower_bound_us(size_t i) { return i == 0 ? 0.0 : upper_bound_us(i - 1); }

size_t LatencyHistogram::bucket_for(double micros) {
  if (!(micros >= kFirstBoundUs)) return 0;  // also NaN and negatives
  // Bucket i holds [upper(i - 1), upper(i)): the first bucket whose upper bound exceeds `micros`; none
  // does for the last one.
  return static_cast<size_t>(std::upper_bound(kUpperBounds.begin(), kUpperBounds.end(), micros) - kUpperBounds.begin());
}

void LatencyHistogram::record(double micros) {
  if (!(micros >= 0)) micros = 0;
  const size_t b = bucket_for(micros);
  if (counts_[b] != std::numeric_limits<uint32_t>::max()) ++counts_[b];
  min_us_ = count_ == 0 ? micros : std::min(min_us_, micros);
  max_us_ = count_ == 0 ? micros : std::max(max_us_, micros);
  ++count_;
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < kBuckets; ++i) {
    const uint64_t sum = uint64_t{counts_[i]} + other.counts_[i];
    counts_[i] = static_cast<uint32_t>(std::min<uint64_t>(sum, std::numeric_limits<uint32_t>::max()));
  }
  min_us_ = count_ == 0 ? other.min_us_ : std::min(min_us_, other.min_us_);
  max_us_ = count_ == 0 ? other.max_us_ : std::max(max_us_, other.max_us_);
  count_ += other.count_;
}

double LatencyHistogram::quantile(double q) const {
  uint64_t total = 0;
  for (uint32_t c : counts_) total += c;
  if (total == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // The rank-th smallest observation (1-based, nearest-rank definition).
  const double rank = std::max(1.0, std::ceil(q * static_cast<double>(total)));
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    if (counts_[i] == 0) continue;
    if (static_cast<double>(seen + counts_[i]) >= rank) {
      const double lo = std::max(lower_bound_us(i), min_us_);
      const double hi = std::min(upper_bound_us(i), max_us_);
      if (hi <= lo) return std::clamp(lo, min_us_, max_us_);
      // Spread the bucket's observations evenly from its (clamped) lower to its upper edge, so the
      // first observation overall is the minimum and the last the maximum. A lone observation is
      // the min or max when its bucket holds one of them, else the bucket's middle.
      double frac = 0.5;
      if (counts_[i] > 1) {
        frac = (rank - static_cast<double>(seen) - 1) / (counts_[i] - 1);
      } else if (lo == min_us_) {
        frac = 0;
      } else if (hi == max_us_) {
        frac = 1;
      }
      return std::clamp(lo + (hi - lo) * frac, min_us_, max_us_);
    }
    seen += counts_[i];
  }
  return max_us_;
}

}  // namespace pgs::obs
