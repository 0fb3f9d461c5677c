#include "cache/redis/bump_script.h"

#include <openssl/sha.h>

namespace pgs::cache::redis {

namespace {
constexpr std::string_view kBumpScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local lsn = ARGV[1]
local function larger(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
local out = {}
for i = 2, #ARGV do
  local tbl = ARGV[i]
  local olds = redis.call('HGET', KEYS[1], tbl)
  local old = tonumber(olds or '0') or 0
  local g = now
  if old >= g then g = old + 1 end
  local s = string.format('%.0f', g)
  redis.call('HSET', KEYS[1], tbl, s)
  if lsn == '' then
    redis.call('HDEL', KEYS[3], tbl)
  else
    local l = lsn
    local prev = redis.call('HGET', KEYS[3], tbl)
    if prev and olds then
      local pg, pl = string.match(prev, '^(%d+) (%d+)$')
      if pg == olds and pl and larger(pl, l) then l = pl end
    end
    redis.call('HSET', KEYS[3], tbl, s .. ' ' .. l)
  end
  redis.call('PUBLISH', KEYS[2], tbl .. ' ' .. s)
  out[#out + 1] = s
end
return out
)lua";

}  // namespace

std::string_view bump_script() { return kBumpScript; }

const std::string& bump_script_sha1() {
  static const std::string hex = [] {
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(kBumpScript.data()), kBumpScript.size(), digest);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : digest) {
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
    return out;
  }();
  return hex;
}

}  // namespace pgs::cache::redis
