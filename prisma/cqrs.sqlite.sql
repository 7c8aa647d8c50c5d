-- cqrs-sync's own tables for sqlite: what prisma/cqrs.sqlite.prisma migrates to. Apply it with your
-- migrations if you do not use `prisma migrate` (cqrs_outbox: master side; cqrs_tombstone: replica side).
CREATE TABLE cqrs_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  cqrs_id TEXT NOT NULL,
  pk TEXT NOT NULL,
  format INTEGER NOT NULL DEFAULT 0,
  routing_key TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  trace_context TEXT
);
CREATE TABLE cqrs_tombstone (
  cqrs_id TEXT NOT NULL,
  pk TEXT NOT NULL,
  revision INTEGER NOT NULL,
  updated DATETIME NOT NULL,
  deleted_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (cqrs_id, pk)
);
CREATE INDEX cqrs_tombstone_deleted_at_idx ON cqrs_tombstone (deleted_at);
