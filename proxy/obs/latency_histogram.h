// A small fixed-bucket latency histogram for per-fingerprint percentiles.
//
// Buckets are logarithmic, 2^(1/4) apart (±9% around a bucket's geometric centre), from 10 µs up to
// ~237 s; bucket 0 holds [0, 10 µs) and the last bucket everything above. quantile() interpolates
// inside the bucket and clamps to the observed min/max, so its relative error is below 19% (one
// bucket's width) and exact for a single observation. 100 x uint32 = 400 bytes per histogram.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace pgs::obs {

class LatencyHistogram {
 public:
  static constexpr size_t kBuckets = 100;
  static constexpr double kFirstBoundUs = 10.0;  // upper bound of bucket 0, microseconds

  void record(double micros);
  void merge(const LatencyHistogram& other);

  // Estimated q-quantile (0 <= q <= 1) in microseconds; 0 when empty.
  double quantile(double q) const;

  uint64_t count() const { return count_; }
  double min_us() const { return count_ ? min_us_ : 0; }
  double max_us() const { return count_ ? max_us_ : 0; }

  // Lower and upper bound of bucket i in microseconds (bucket 0 starts at 0; the last ends at +inf).
  static double lower_bound_us(size_t i);
  static double upper_bound_us(size_t i);
  static size_t bucket_for(double micros);

 private:
  std::array<uint32_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  double min_us_ = 0;
  double max_us_ = 0;
};

}  // namespace pgs::obs
