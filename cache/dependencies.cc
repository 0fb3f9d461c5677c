#include "cache/dependencies.h"

#include <algorithm>

#include "cache/policy.h"

namespace pgs::cache {

WriteDependencies WriteDependencies::from_rows(const std::vector<CatalogRow>& rows) {
  WriteDependencies d;
  for (const CatalogRow& r : rows) {
    if (r.from.empty()) continue;
    if (r.kind == "trigger" || r.kind == "rule") {
      d.writes_anything_.insert(r.from);
      ++d.edges_;
    } else if (r.kind == "cascade" && !r.to.empty()) {
      d.also_writes_[r.from].push_back(r.to);  // the referenced table's write reaches the referencing one
      ++d.edges_;
    } else if (r.kind == "view" && !r.to.empty()) {
      d.also_writes_[r.from].push_back(r.to);  // relation -> view: the view shows what it holds
      d.view_reads_[r.to].push_back(r.from);   // view -> relation: a write through an updatable view
      ++d.edges_;
    } else if (r.kind == "partition" && !r.to.empty()) {
      d.also_writes_[r.from].push_back(r.to);  // partition -> parent: the parent reads the partition
      d.also_writes_[r.to].push_back(r.from);  // parent -> partition: a write through the parent
      ++d.edges_;
    }
  }
  return d;
}

void WriteDependencies::expand(std::vector<std::string>& tables) const {
  if (empty() || tables.empty()) return;
  if (std::find(tables.begin(), tables.end(), kAllTables) != tables.end()) return;  // covers everything
  std::vector<std::string> pending(tables.begin(), tables.end());
  std::unordered_set<std::string> seen(tables.begin(), tables.end());
  // A view written (an updatable one) writes the relations it reads, down through views of views. Only
  // from what was written itself: a view that merely changed (a relation under it was written) writes
  // nothing, so the other relations it reads are not reached.
  for (std::vector<std::string> down = pending; !down.empty();) {
    std::string v = std::move(down.back());
    down.pop_back();
    auto it = view_reads_.find(v);
    if (it == view_reads_.end()) continue;
    for (const std::string& under : it->second) {
      if (seen.insert(under).second) {
        tables.push_back(under);
        pending.push_back(under);
        down.push_back(under);
      }
    }
  }
  while (!pending.empty()) {
    std::string t = std::move(pending.back());
    pending.pop_back();
    if (writes_anything_.count(t) != 0) {
      tables.assign(1, std::string(kAllTables));
      return;
    }
    auto it = also_writes_.find(t);
    if (it == also_writes_.end()) continue;
    for (const std::string& next : it->second) {
      if (seen.insert(next).second) {
        tables.push_back(next);
        pending.push_back(next);
      }
    }
  }
  std::sort(tables.begin(), tables.end());
}

}  // namespace pgs::cache
