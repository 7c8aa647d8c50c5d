-- cqrs-sync's own tables for postgresql: what prisma/cqrs.postgresql.prisma migrates to. Apply it with your
-- migrations if you do not use `prisma migrate` (cqrs_outbox: master side; cqrs_tombstone: replica side).
CREATE TABLE cqrs_outbox (
  id BIGSERIAL PRIMARY KEY,
  cqrs_id TEXT NOT NULL,
  pk TEXT NOT NULL,
  format SMALLINT NOT NULL DEFAULT 0,
  routing_key TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  trace_context TEXT
);
CREATE TABLE cqrs_tombstone (
  cqrs_id TEXT NOT NULL,
  pk TEXT NOT NULL,
  revision INTEGER NOT NULL,
  updated TIMESTAMPTZ(6) NOT NULL,
  deleted_at TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (cqrs_id, pk)
);
CREATE INDEX cqrs_tombstone_deleted_at_idx ON cqrs_tombstone (deleted_at);
