-- Tables for prisma/test/postgresql/schema.prisma (what `prisma migrate` would create), after cqrs-sync's own
-- tables (prisma/cqrs.postgresql.sql; integration/support/databases.ts runs both).

CREATE TABLE author (
  id SERIAL PRIMARY KEY,
  name TEXT NOT NULL,
  birth_date DATE,
  rating INTEGER NOT NULL DEFAULT 0,
  balance DECIMAL(18,2) NOT NULL DEFAULT 0,
  last_seen TIMESTAMPTZ(6),
  is_active BOOLEAN NOT NULL DEFAULT true,
  profile JSONB,
  nickname TEXT,
  external_id TEXT NOT NULL,
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated TIMESTAMPTZ(6) NOT NULL
);
CREATE TABLE book (
  id SERIAL PRIMARY KEY,
  title TEXT NOT NULL,
  author_id INTEGER NOT NULL REFERENCES author(id),
  price DECIMAL(18,2) NOT NULL DEFAULT 0,
  published_at TIMESTAMPTZ(6),
  is_public BOOLEAN NOT NULL DEFAULT true,
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated TIMESTAMPTZ(6) NOT NULL
);
CREATE TABLE tag (
  id UUID PRIMARY KEY,
  name TEXT NOT NULL,
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated TIMESTAMPTZ(6) NOT NULL
);
CREATE TABLE setting (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated TIMESTAMPTZ(6) NOT NULL
);
CREATE TABLE ledger (
  id BIGSERIAL PRIMARY KEY,
  amount BIGINT NOT NULL,
  note TEXT,
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated TIMESTAMPTZ(6) NOT NULL
);
CREATE TABLE plain (
  id SERIAL PRIMARY KEY,
  name TEXT NOT NULL
);

CREATE TABLE author_ref (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  birth_date DATE,
  rating INTEGER NOT NULL DEFAULT 0,
  balance DECIMAL(18,2) NOT NULL DEFAULT 0,
  last_seen TIMESTAMPTZ(6),
  is_active BOOLEAN NOT NULL DEFAULT true,
  profile JSONB,
  nickname TEXT,
  external_id TEXT NOT NULL,
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated TIMESTAMPTZ(6) NOT NULL
);
CREATE TABLE book_ref (
  id INTEGER PRIMARY KEY,
  title TEXT NOT NULL,
  author_id INTEGER NOT NULL,
  price DECIMAL(18,2) NOT NULL DEFAULT 0,
  published_at TIMESTAMPTZ(6),
  is_public BOOLEAN NOT NULL DEFAULT true,
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated TIMESTAMPTZ(6) NOT NULL
);
CREATE TABLE tag_ref (
  id UUID PRIMARY KEY,
  name TEXT NOT NULL,
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated TIMESTAMPTZ(6) NOT NULL
);
CREATE TABLE setting_ref (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated TIMESTAMPTZ(6) NOT NULL
);
CREATE TABLE ledger_ref (
  id BIGINT PRIMARY KEY,
  amount BIGINT NOT NULL,
  note TEXT,
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated TIMESTAMPTZ(6) NOT NULL
);

-- Edge values (issue 9): master edge, replica edge_ref.
CREATE TABLE edge (
  id SERIAL PRIMARY KEY,
  dec38 DECIMAL(38,18),
  dec18 DECIMAL(18,8),
  big BIGINT,
  dbl DOUBLE PRECISION,
  flt REAL,
  tstz TIMESTAMPTZ(6),
  ts TIMESTAMP(6),
  day DATE,
  doc JSONB NOT NULL,
  doc_opt JSONB,
  bytes BYTEA,
  txt TEXT,
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated TIMESTAMPTZ(6) NOT NULL
);
CREATE TABLE edge_ref (
  id INTEGER PRIMARY KEY,
  dec38 DECIMAL(38,18),
  dec18 DECIMAL(18,8),
  big BIGINT,
  dbl DOUBLE PRECISION,
  flt REAL,
  tstz TIMESTAMPTZ(6),
  ts TIMESTAMP(6),
  day DATE,
  doc JSONB NOT NULL,
  doc_opt JSONB,
  bytes BYTEA,
  txt TEXT,
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated TIMESTAMPTZ(6) NOT NULL
);
