-- Schemas and the identity side of flopods: users, hashed API tokens, workspaces and their members,
-- notifications. Applied in one transaction by `flopods-api migrate`.
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS canvas;
CREATE SCHEMA IF NOT EXISTS billing;
CREATE SCHEMA IF NOT EXISTS documents;

CREATE TABLE core.users (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email       text NOT NULL UNIQUE CHECK (email LIKE '%_@_%'),
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Only the SHA-256 of a token is stored; the plaintext is shown once, at creation.
CREATE TABLE core.api_tokens (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id      bigint NOT NULL REFERENCES core.users (id) ON DELETE CASCADE,
  token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
  label        text NOT NULL DEFAULT 'default',
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  revoked_at   timestamptz
);
CREATE INDEX api_tokens_user_idx ON core.api_tokens (user_id);

CREATE TABLE core.workspaces (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text NOT NULL,
  owner_id    bigint NOT NULL REFERENCES core.users (id),
  plan        text NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro', 'team')),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workspaces_owner_idx ON core.workspaces (owner_id);

CREATE TABLE core.workspace_members (
  workspace_id  bigint NOT NULL REFERENCES core.workspaces (id) ON DELETE CASCADE,
  user_id       bigint NOT NULL REFERENCES core.users (id) ON DELETE CASCADE,
  role          text NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
  joined_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, user_id)
);
-- "Which workspaces may this user see?" is asked on nearly every request.
CREATE INDEX workspace_members_user_idx ON core.workspace_members (user_id, workspace_id) INCLUDE (role);

CREATE TABLE core.notifications (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id     bigint NOT NULL REFERENCES core.users (id) ON DELETE CASCADE,
  kind        text NOT NULL,
  title       text NOT NULL,
  payload     jsonb NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  read_at     timestamptz
);
CREATE INDEX notifications_user_recent_idx ON core.notifications (user_id, created_at DESC, id DESC);
-- Unread notifications per user: small, hot, and what the bell icon asks for.
CREATE INDEX notifications_unread_idx ON core.notifications (user_id, created_at DESC, id DESC)
  WHERE read_at IS NULL;
