// WriteTablesMemo: the tables a committed write statement invalidates — tables_to_bump() widened by
// WriteDependencies::expand() — remembered per worker. Clients repeat their write statements (an
// UPDATE differing only in its constants shares one classification), and the answer depends on nothing
// else than that classification, the session's role and search_path, the write dependencies read from
// the catalog and the cache classes it is filtered with; each is part of the key, so a reloaded catalog
// or config, or another role, is decided afresh.
// Bounded: past max_entries the memo starts over. Thread affinity: one worker.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/dependencies.h"
#include "cache/policy.h"
#include "conf/config.h"
#include "router/classification.h"

namespace pgs::cache {

class WriteTablesMemo {
 public:
  explicit WriteTablesMemo(size_t max_entries = 1024) : max_entries_(max_entries) {}

  // The tables to bump when the statement classified as `c` commits in a session with `facts`
  // (sorted, unique; possibly just kAllTables; empty when it writes nothing). `deps` may be null
  // (the catalog was not read yet). `only_classes_of`: when set, only the tables one of its classes
  // names are kept (kAllTables always is): a table no class names is never cached, so its bump could
  // only matter to a sidecar configured otherwise (see ClientConn's CacheSources::write_tables for
  // when the proxy may leave it to the invalidation stream). The reference stays valid until the next
  // call.
  const std::vector<std::string>& tables(const std::shared_ptr<const router::Classification>& c,
                                         const SessionFacts& facts,
                                         const std::shared_ptr<const WriteDependencies>& deps,
                                         const std::shared_ptr<const conf::CacheConfig>& only_classes_of = nullptr);

  size_t size() const { return entries_.size(); }
  uint64_t hits() const { return hits_; }

 private:
  struct Entry {
    std::shared_ptr<const router::Classification> classification;  // held: its address is the key
    std::string role, search_path;
    std::vector<std::string> tables;
  };
  size_t max_entries_;
  std::shared_ptr<const WriteDependencies> deps_;  // what every entry was expanded with
  std::shared_ptr<const conf::CacheConfig> only_classes_of_;  // ... and filtered with (held: no reuse)
  std::unordered_map<const router::Classification*, Entry> entries_;
  std::vector<std::string> scratch_;  // the answer when nothing may be kept (max_entries 0)
  uint64_t hits_ = 0;
};

}  // namespace pgs::cache
