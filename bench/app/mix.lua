-- wrk script: a realistic flopods-api mix, mostly reads. Used by bench/app/run.sh.
--
-- Environment: FLOPODS_BENCH_DATA = a Lua file (written by run.sh from the seeded data) that sets
--   users = { { token = "fp_...", workspaces = { ids }, flows = { ids }, editable = { ids } }, ... }
--   words = { "revenue", ... }   -- document search terms
-- `flows` are the flows a user may read, `editable` those they may PATCH / run (owner or editor).
--
-- Mix, in percent of requests: GET workspace 20, flows list 20, flow with pods 25, unread
-- notifications 15, documents search 10 (reads: 90); PATCH flow 5, POST execution 5 (writes: 10).
-- done() prints one line: RESULT <requests> <req/s> <p50 ms> <p95 ms> <p99 ms> <errors> <non-2xx>.

local data = os.getenv("FLOPODS_BENCH_DATA")
assert(data, "FLOPODS_BENCH_DATA is not set")
dofile(data)
assert(#users > 0, "no users in " .. data)

-- FLOPODS_BENCH_WRITES (percent, default 10, 0 = reads only) changes the share of writes, split
-- evenly between PATCH and POST; the reads keep their proportions.
local writes = tonumber(os.getenv("FLOPODS_BENCH_WRITES") or "10")
assert(writes and writes >= 0 and writes <= 100, "FLOPODS_BENCH_WRITES must be 0..100")
local r = (100 - writes) / 90
local mix = {
  { 20 * r, "workspace" }, { 20 * r, "flows" }, { 25 * r, "flow" }, { 15 * r, "notifications" },
  { 10 * r, "search" }, { writes / 2, "patch" }, { writes / 2, "execution" },
}
local total_weight = 0
for _, m in ipairs(mix) do total_weight = total_weight + m[1] end

local models = { "gpt-4o", "gpt-4o-mini" }
local thread_count = 0

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
end

local counter = 0

function init(args)
  math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919)
end

local function pick(list)
  return list[math.random(#list)]
end

local function choose()
  local r = math.random() * total_weight
  for _, m in ipairs(mix) do
    r = r - m[1]
    if r <= 0 then return m[2] end
  end
  return mix[1][2]
end

local function get(path, token)
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
end

local function send(method, path, token, body)
  return wrk.format(method, path, { ["Authorization"] = "Bearer " .. token,
                                    ["Content-Type"] = "application/json" }, body)
end

function request()
  local u = pick(users)
  local kind = choose()
  counter = counter + 1
  if (kind == "patch" or kind == "execution") and #u.editable == 0 then kind = "flow" end
  if kind == "workspace" then
    return get("/api/v1/workspaces/" .. pick(u.workspaces), u.token)
  elseif kind == "flows" then
    return get("/api/v1/workspaces/" .. pick(u.workspaces) .. "/flows?limit=20", u.token)
  elseif kind == "flow" then
    return get("/api/v1/flows/" .. pick(u.flows), u.token)
  elseif kind == "notifications" then
    return get("/api/v1/notifications?unread=true&limit=20", u.token)
  elseif kind == "search" then
    return get("/api/v1/documents/search?limit=10&q=" .. pick(words), u.token)
  elseif kind == "patch" then
    local body = string.format('{"description":"bench edit %d.%d"}', thread_id or 0, counter)
    return send("PATCH", "/api/v1/flows/" .. pick(u.editable), u.token, body)
  end
  local body = string.format('{"model":"%s","tokens_in":%d,"tokens_out":%d,"status":"succeeded","duration_ms":%d}',
                             pick(models), math.random(50, 4000), math.random(20, 2000), math.random(100, 9000))
  return send("POST", "/api/v1/flows/" .. pick(u.editable) .. "/executions", u.token, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format("RESULT %d %.1f %.2f %.2f %.2f %d %d\n", summary.requests, summary.requests / seconds,
                         latency:percentile(50) / 1000, latency:percentile(95) / 1000,
                         latency:percentile(99) / 1000, e.connect + e.read + e.write + e.timeout, e.status))
end
