-- Usage of models by pod executions, the basis of usage billing; partitioned by month.
CREATE TABLE billing.pod_usage_logs (
  id              bigserial,
  execution_id    bigint NOT NULL,
  workspace_id    bigint NOT NULL,
  user_id         bigint NOT NULL,
  flow_id         bigint NOT NULL,
  pod_id          bigint,
  model           text NOT NULL,
  tokens_in       integer NOT NULL CHECK (tokens_in >= 0),
  tokens_out      integer NOT NULL CHECK (tokens_out >= 0),
  cost_micro_usd  bigint NOT NULL CHECK (cost_micro_usd >= 0),
  executed_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, executed_at)
) PARTITION BY RANGE (executed_at);
-- Monthly invoices: usage per workspace over a time range.
CREATE INDEX pod_usage_logs_workspace_idx ON billing.pod_usage_logs (workspace_id, executed_at);
CREATE INDEX pod_usage_logs_execution_idx ON billing.pod_usage_logs (execution_id);
