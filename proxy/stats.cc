#include "proxy/stats.h"

namespace pgs::proxy {

std::string_view target_name(Target t) {
  static constexpr std::string_view kNames[] = {
#define PGS_X(e, n) n,
      PGS_TARGETS(PGS_X)
#undef PGS_X
  };
  return kNames[static_cast<size_t>(t)];
}

void Histogram::observe(double seconds) {
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  ++buckets[i];
  sum += seconds;
  ++count;
}

void Histogram::merge(const Histogram& other) {
  for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += other.buckets[i];
  sum += other.sum;
  count += other.count;
}

}  // namespace pgs::proxy
