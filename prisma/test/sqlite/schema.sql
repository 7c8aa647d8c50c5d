-- Tables for prisma/test/sqlite/schema.prisma (what `prisma migrate` would create), after cqrs-sync's own
-- tables (prisma/cqrs.sqlite.sql; integration/support/databases.ts runs both).

CREATE TABLE author (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  birth_date DATE,
  rating INTEGER NOT NULL DEFAULT 0,
  balance DECIMAL NOT NULL DEFAULT 0,
  last_seen DATETIME,
  is_active BOOLEAN NOT NULL DEFAULT true,
  profile TEXT,
  nickname TEXT,
  external_id TEXT NOT NULL,
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated DATETIME NOT NULL
);
CREATE TABLE book (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  title TEXT NOT NULL,
  author_id INTEGER NOT NULL REFERENCES author(id),
  price DECIMAL NOT NULL DEFAULT 0,
  published_at DATETIME,
  is_public BOOLEAN NOT NULL DEFAULT true,
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated DATETIME NOT NULL
);
CREATE TABLE tag (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated DATETIME NOT NULL
);
CREATE TABLE setting (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated DATETIME NOT NULL
);
CREATE TABLE ledger (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  amount BIGINT NOT NULL,
  note TEXT,
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated DATETIME NOT NULL
);
CREATE TABLE plain (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL
);

CREATE TABLE author_ref (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  birth_date DATE,
  rating INTEGER NOT NULL DEFAULT 0,
  balance DECIMAL NOT NULL DEFAULT 0,
  last_seen DATETIME,
  is_active BOOLEAN NOT NULL DEFAULT true,
  profile TEXT,
  nickname TEXT,
  external_id TEXT NOT NULL,
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated DATETIME NOT NULL
);
CREATE TABLE book_ref (
  id INTEGER PRIMARY KEY,
  title TEXT NOT NULL,
  author_id INTEGER NOT NULL,
  price DECIMAL NOT NULL DEFAULT 0,
  published_at DATETIME,
  is_public BOOLEAN NOT NULL DEFAULT true,
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated DATETIME NOT NULL
);
CREATE TABLE tag_ref (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated DATETIME NOT NULL
);
CREATE TABLE setting_ref (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated DATETIME NOT NULL
);
CREATE TABLE ledger_ref (
  id BIGINT PRIMARY KEY,
  amount BIGINT NOT NULL,
  note TEXT,
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated DATETIME NOT NULL
);

-- Edge values (issue 9): master edge, replica edge_ref.
CREATE TABLE edge (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  dec38 DECIMAL,
  dec18 DECIMAL,
  big BIGINT,
  dbl REAL,
  flt REAL,
  tstz DATETIME,
  ts DATETIME,
  day DATETIME,
  doc TEXT NOT NULL,
  doc_opt TEXT,
  bytes BLOB,
  txt TEXT,
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated DATETIME NOT NULL
);
CREATE TABLE edge_ref (
  id INTEGER PRIMARY KEY,
  dec38 DECIMAL,
  dec18 DECIMAL,
  big BIGINT,
  dbl REAL,
  flt REAL,
  tstz DATETIME,
  ts DATETIME,
  day DATETIME,
  doc TEXT NOT NULL,
  doc_opt TEXT,
  bytes BLOB,
  txt TEXT,
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated DATETIME NOT NULL
);
