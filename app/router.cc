#include "app/router.h"

namespace pgs::app {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    const auto slash = path.find('/');
    const std::string_view seg = path.substr(0, slash);
    if (!seg.empty()) out.emplace_back(seg);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

void Router::add(std::string method, std::string_view pattern, Handler handler, bool needs_user,
                 bool rate_limited) {
  routes_.push_back(Route{std::move(method), split_path(pattern), needs_user, rate_limited, std::move(handler)});
}

namespace {
bool matches(const Route& route, const std::vector<std::string>& segs, std::vector<std::string>* params) {
  if (route.segments.size() != segs.size()) return false;
  params->clear();
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const std::string& want = route.segments[i];
    if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
      params->push_back(segs[i]);
    } else if (want != segs[i]) {
      return false;
    }
  }
  return true;
}
}  // namespace

Router::Match Router::match(std::string_view method, std::string_view path) const {
  Match m;
  const auto segs = split_path(path);
  std::vector<std::string> params;
  for (const Route& r : routes_) {
    if (!matches(r, segs, &params)) continue;
    if (r.method == method) {
      m.route = &r;
      m.params = std::move(params);
      m.allow.clear();
      return m;
    }
    m.allow += m.allow.empty() ? r.method : ", " + r.method;
  }
  return m;
}

}  // namespace pgs::app
