-- Flows of pods on a canvas, their executions and activity. The two logs are range-partitioned by
-- month; the partitions themselves are created by the app (migrate, seed and serve start-up).
CREATE TABLE canvas.flows (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workspace_id bigint NOT NULL REFERENCES core.workspaces (id) ON DELETE CASCADE,
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  description  text NOT NULL DEFAULT '',
  visibility   text NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'public')),
  created_by   bigint NOT NULL REFERENCES core.users (id),
  version      integer NOT NULL DEFAULT 1,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (workspace_id, name)
);
-- Keyset pagination of recent flows per workspace: ORDER BY updated_at DESC, id DESC.
CREATE INDEX flows_workspace_recent_idx ON canvas.flows (workspace_id, updated_at DESC, id DESC);
-- The same, for the private flows only (the default view of the canvas list).
CREATE INDEX flows_workspace_private_recent_idx ON canvas.flows (workspace_id, updated_at DESC, id DESC)
  WHERE visibility = 'private';

CREATE TABLE canvas.pods (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  flow_id     bigint NOT NULL REFERENCES canvas.flows (id) ON DELETE CASCADE,
  name        text NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('input', 'llm', 'tool', 'retriever', 'router', 'output')),
  model       text,
  config      jsonb NOT NULL DEFAULT '{}',
  position_x  integer NOT NULL DEFAULT 0,
  position_y  integer NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pods_flow_idx ON canvas.pods (flow_id, id);

-- No foreign keys into or out of the partitioned logs except the cheap ones: they are append-only
-- and large, and a parent's deletion is rare (flows cascade through the app, not here).
CREATE TABLE canvas.pod_executions (
  id           bigserial,
  flow_id      bigint NOT NULL,
  pod_id       bigint,
  workspace_id bigint NOT NULL,
  user_id      bigint NOT NULL,
  status       text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  duration_ms  integer CHECK (duration_ms >= 0),
  input        jsonb NOT NULL DEFAULT '{}',
  output       jsonb,
  error        text,
  PRIMARY KEY (id, started_at)
) PARTITION BY RANGE (started_at);
CREATE INDEX pod_executions_flow_recent_idx ON canvas.pod_executions (flow_id, started_at DESC, id DESC);

CREATE TABLE canvas.flow_activity_logs (
  id          bigserial,
  flow_id     bigint NOT NULL,
  workspace_id bigint NOT NULL,
  user_id     bigint NOT NULL,
  action      text NOT NULL,
  detail      jsonb NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX flow_activity_logs_flow_idx ON canvas.flow_activity_logs (flow_id, created_at DESC);
