-- cqrs-sync's own tables for mysql: what prisma/cqrs.mysql.prisma migrates to. Apply it with your
-- migrations if you do not use `prisma migrate` (cqrs_outbox: master side; cqrs_tombstone: replica side).
CREATE TABLE cqrs_outbox (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  cqrs_id VARCHAR(191) NOT NULL,
  pk VARCHAR(191) NOT NULL,
  format SMALLINT NOT NULL DEFAULT 0,
  routing_key VARCHAR(191) NOT NULL,
  body LONGTEXT NOT NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  trace_context VARCHAR(64) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE cqrs_tombstone (
  cqrs_id VARCHAR(191) NOT NULL,
  pk VARCHAR(191) NOT NULL,
  revision INTEGER NOT NULL,
  updated DATETIME(6) NOT NULL,
  deleted_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (cqrs_id, pk)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE INDEX cqrs_tombstone_deleted_at_idx ON cqrs_tombstone (deleted_at);
