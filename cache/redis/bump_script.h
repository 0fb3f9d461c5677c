// The Lua script that bumps table generations in Redis (GenerationSync's bumps at COMMIT, the
// invalidation stream's bumps of what a committed transaction wrote), and its SHA1 for EVALSHA.
//
// KEYS[1] = generations hash, KEYS[2] = channel, KEYS[3] = commit LSN hash; ARGV[1] = the commit
// LSN (decimal) or "" when unknown, ARGV[2..] = tables. Returns the new generations.
// The LSN entry "generation lsn" is the max of this LSN and the previous entry's when that entry
// belonged to the previous generation (so the LSN of every write whose bump made the generation is
// covered, whatever order the writers' probes ran in); an unknown LSN deletes it. LSNs are compared
// as decimal strings (Lua numbers are doubles: exact only below 2^53).
// Run as EVALSHA <bump_script_sha1()> 3 <generations> <channel> <lsn hash> <lsn> <table>...; a NOSCRIPT
// answer (Redis restarted, SCRIPT FLUSH) is answered by the same call as EVAL <bump_script()>.
#pragma once

#include <string>
#include <string_view>

namespace pgs::cache::redis {

std::string_view bump_script();
// Hex SHA1 of bump_script(): the name EVALSHA knows it by. EVALSHA sends 40 bytes instead of the script's
// ~900 on every bump, which hiredis would format and Redis hash again each time.
const std::string& bump_script_sha1();

}  // namespace pgs::cache::redis
