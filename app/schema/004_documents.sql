-- Uploaded documents (metadata only; the bytes live in object storage) and their API access log.
CREATE TABLE documents.documents (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workspace_id bigint NOT NULL REFERENCES core.workspaces (id) ON DELETE CASCADE,
  name         text NOT NULL,
  description  text NOT NULL DEFAULT '',
  mime_type    text NOT NULL,
  size_bytes   bigint NOT NULL CHECK (size_bytes >= 0),
  storage_key  text NOT NULL,
  uploaded_by  bigint NOT NULL REFERENCES core.users (id),
  created_at   timestamptz NOT NULL DEFAULT now(),
  -- Full-text search over name and description; 'english' stems ("reports" finds "report").
  search       tsvector GENERATED ALWAYS AS (
                 setweight(to_tsvector('english', name), 'A') ||
                 setweight(to_tsvector('english', description), 'B')) STORED
);
CREATE INDEX documents_workspace_recent_idx ON documents.documents (workspace_id, created_at DESC, id DESC);
CREATE INDEX documents_search_idx ON documents.documents USING gin (search);

CREATE TABLE documents.document_api_logs (
  id           bigserial,
  document_id  bigint NOT NULL,
  workspace_id bigint NOT NULL,
  user_id      bigint,
  action       text NOT NULL CHECK (action IN ('upload', 'read', 'search', 'embed', 'delete')),
  status_code  smallint NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX document_api_logs_document_idx ON documents.document_api_logs (document_id, created_at DESC);
