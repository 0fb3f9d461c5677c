// WriteTablesMemo: the tables a committed write statement invalidates — tables_to_bump() widened by
// WriteDependencies::expand() — remembered per worker. Clients repeat their write statements (an
// UPDATE differing only in its constants shares one classification), and the answer depends on nothing
// else than that classification, the session's role and search_path, and the write dependencies read
// from the catalog; each is part of the key, so a reloaded catalog or another role is decided afresh.
// Bounded: past max_entries the memo starts over. Thread affinity: one worker.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/dependencies.h"
#include "cache/policy.h"
#include "router/classification.h"

namespace pgs::cache {

class WriteTablesMemo {
 public:
  explicit WriteTablesMemo(size_t max_entries = 1024) : max_entries_(max_entries) {}

  // The tables to bump when the statement classified as `c` commits in a session with `facts`
  // (sorted, unique; possibly just kAllTables; empty when it writes nothing). `deps` may be null
  // (the catalog was not read yet). The reference stays valid until the next call.
  const std::vector<std::string>& tables(const std::shared_ptr<const router::Classification>& c,
                                         const SessionFacts& facts,
                                         const std::shared_ptr<const WriteDependencies>& deps);

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
  std::unordered_map<const router::Classification*, Entry> entries_;
  std::vector<std::string> scratch_;  // the answer when nothing may be kept (max_entries 0)
  uint64_t hits_ = 0;
};

}  // namespace pgs::cache
