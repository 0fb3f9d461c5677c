// Pod executions: POST /api/v1/flows/{id}/executions records an execution and its usage log in one
// transaction (both land in the monthly partition of their start time); GET lists the latest.
#include <array>
#include <cmath>

#include "app/handlers_common.h"

namespace pgs::app {
namespace json = boost::json;

namespace {

struct ModelPrice {
  std::string_view model;
  double in_per_token;   // micro-USD per input token (= USD per million tokens)
  double out_per_token;  // micro-USD per output token
};

constexpr std::array<ModelPrice, 5> kPrices{{
    {"gpt-4o-mini", 0.15, 0.60},
    {"gpt-4o", 2.50, 10.00},
    {"claude-3-5-sonnet", 3.00, 15.00},
    {"llama-3.1-70b", 0.90, 0.90},
    {"text-embedding-3-small", 0.02, 0.00},
}};

const ModelPrice* price_of(std::string_view model) {
  for (const auto& p : kPrices) {
    if (p.model == model) return &p;
  }
  return nullptr;
}

struct ExecutionInput {
  std::optional<std::int64_t> pod_id, tokens_in, tokens_out, duration_ms;
  std::optional<std::string> model, status, input, output, error, started_at;
};

Outcome<ExecutionInput, Invalid> parse_execution(std::string_view text) {
  auto body = parse_object(text.empty() ? std::string_view("{}") : text);
  if (!body) return body.error();
  if (auto bad = check_keys(*body, {"pod_id", "model", "tokens_in", "tokens_out", "status", "duration_ms", "input",
                                    "output", "error", "started_at"})) {
    return *bad;
  }
  ExecutionInput in;
  auto pod = opt_int(*body, "pod_id", 1, INT64_MAX);
  auto tin = opt_int(*body, "tokens_in", 0, 10'000'000);
  auto tout = opt_int(*body, "tokens_out", 0, 10'000'000);
  auto dur = opt_int(*body, "duration_ms", 0, 86'400'000);
  for (auto* o : {&pod, &tin, &tout, &dur}) {
    if (!*o) return o->error();
  }
  in.pod_id = *pod;
  in.tokens_in = *tin;
  in.tokens_out = *tout;
  in.duration_ms = *dur;
  auto model = opt_string(*body, "model", 1, 64);
  auto status = opt_string(*body, "status", 1, 16);
  auto error = opt_string(*body, "error", 0, 4000);
  auto started = opt_string(*body, "started_at", 1, 64);
  for (auto* o : {&model, &status, &error, &started}) {
    if (!*o) return o->error();
  }
  in.model = *model;
  in.status = *status;
  in.error = *error;
  in.started_at = *started;
  auto input = opt_json(*body, "input");
  auto output = opt_json(*body, "output");
  if (!input || !output) return !input ? input.error() : output.error();
  in.input = *input;
  in.output = *output;
  return in;
}

Response create_execution(Services& s, Request& req) {
  auto flow_id = path_id(req, 0);
  if (!flow_id) return flow_id.error();
  auto in = parse_execution(req.body);
  if (!in) return bad_request(in.error());
  const std::string model = in->model.value_or("gpt-4o-mini");
  const ModelPrice* price = price_of(model);
  if (price == nullptr) return bad_request("unknown model: " + model);
  const std::string status = in->status.value_or("succeeded");
  if (status != "queued" && status != "running" && status != "succeeded" && status != "failed") {
    return bad_request("status must be queued, running, succeeded or failed");
  }
  const std::int64_t tokens_in = in->tokens_in.value_or(0), tokens_out = in->tokens_out.value_or(0);
  const auto cost = static_cast<std::int64_t>(
      std::llround(static_cast<double>(tokens_in) * price->in_per_token +
                   static_cast<double>(tokens_out) * price->out_per_token));

  auto lease = s.db.acquire();
  if (!lease) return db_error_response(lease.error());
  PgConn& c = **lease;
  if (auto b = run(c, "BEGIN"); !b) return b.error();
  auto access = flow_access(c, *flow_id, req.user->id, false);
  if (!access) return access.error();
  if (in->pod_id) {
    auto pod = run(c, "SELECT 1 FROM canvas.pods WHERE id = $1 AND flow_id = $2", {param(*in->pod_id), param(*flow_id)});
    if (!pod) return pod.error();
    if (pod->empty()) return bad_request("pod_id does not belong to this flow");
  }
  auto exec = run(c,
                  "INSERT INTO canvas.pod_executions (flow_id, pod_id, workspace_id, user_id, status, started_at, "
                  "finished_at, duration_ms, input, output, error) "
                  "VALUES ($1, $2, $3, $4, $5, coalesce($6::timestamptz, now()), "
                  "CASE WHEN $5 IN ('succeeded', 'failed') THEN coalesce($6::timestamptz, now()) + "
                  "coalesce($7::int, 0) * interval '1 millisecond' END, $7, coalesce($8::jsonb, '{}'), $9::jsonb, $10) "
                  "RETURNING id, flow_id, pod_id, workspace_id, user_id, status, started_at, finished_at, duration_ms",
                  {param(*flow_id), in->pod_id ? param(*in->pod_id) : Param(), param(access->workspace_id),
                   param(req.user->id), status, in->started_at,
                   in->duration_ms ? param(*in->duration_ms) : Param(), in->input, in->output, in->error});
  if (!exec) return exec.error();
  auto usage = run(c,
                   "INSERT INTO billing.pod_usage_logs (execution_id, workspace_id, user_id, flow_id, pod_id, model, "
                   "tokens_in, tokens_out, cost_micro_usd, executed_at) "
                   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::timestamptz) "
                   "RETURNING id, model, tokens_in, tokens_out, cost_micro_usd, executed_at",
                   {param(exec->int64(0, 0)), param(access->workspace_id), param(req.user->id), param(*flow_id),
                    in->pod_id ? param(*in->pod_id) : Param(), model, param(tokens_in), param(tokens_out),
                    param(cost), std::string(exec->text(0, 6))});
  if (!usage) return usage.error();
  if (auto e = run(c, "COMMIT"); !e) return e.error();
  json::object out = exec->row_json(0);
  out["usage"] = usage->row_json(0);
  return json_response(201, out);
}

Response list_executions(Services& s, Request& req) {
  auto flow_id = path_id(req, 0);
  if (!flow_id) return flow_id.error();
  auto limit = parse_limit(req.query, 20, 100);
  if (!limit) return bad_request(limit.error());
  {
    auto lease = s.db.acquire();
    if (!lease) return db_error_response(lease.error());
    auto access = flow_access(**lease, *flow_id, req.user->id, false);
    if (!access) return access.error();
  }
  // The usage join repeats executed_at = started_at so that each probe prunes to one partition.
  auto rows = read(s.db,
                   "SELECT e.id, e.pod_id, e.user_id, e.status, e.started_at, e.finished_at, e.duration_ms, e.error, "
                   "u.model, u.tokens_in, u.tokens_out, u.cost_micro_usd FROM (SELECT * FROM canvas.pod_executions "
                   "WHERE flow_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2) e "
                   "LEFT JOIN billing.pod_usage_logs u ON u.execution_id = e.id AND u.executed_at = e.started_at "
                   "ORDER BY e.started_at DESC, e.id DESC",
                   {param(*flow_id), param(*limit)});
  if (!rows) return rows.error();
  return json_response(200, json::object{{"executions", rows->all_json()}});
}

}  // namespace

void add_execution_routes(Router& router, Services& s) {
  router.add("POST", "/api/v1/flows/{id}/executions", [&s](Request& r) { return create_execution(s, r); });
  router.add("GET", "/api/v1/flows/{id}/executions", [&s](Request& r) { return list_executions(s, r); });
}

}  // namespace pgs::app
