-- Tables for prisma/test/mysql/schema.prisma (what `prisma migrate` would create), after cqrs-sync's own
-- tables (prisma/cqrs.mysql.sql; integration/support/databases.ts runs both).

CREATE TABLE author (
  id INT AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(191) NOT NULL,
  birth_date DATE,
  rating INTEGER NOT NULL DEFAULT 0,
  balance DECIMAL(18,2) NOT NULL DEFAULT 0,
  last_seen DATETIME(6),
  is_active TINYINT(1) NOT NULL DEFAULT 1,
  profile JSON,
  nickname VARCHAR(191),
  external_id VARCHAR(191) NOT NULL,
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE book (
  id INT AUTO_INCREMENT PRIMARY KEY,
  title VARCHAR(191) NOT NULL,
  author_id INTEGER NOT NULL REFERENCES author(id),
  price DECIMAL(18,2) NOT NULL DEFAULT 0,
  published_at DATETIME(6),
  is_public TINYINT(1) NOT NULL DEFAULT 1,
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE tag (
  id CHAR(36) PRIMARY KEY,
  name VARCHAR(191) NOT NULL,
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE setting (
  `key` VARCHAR(191) PRIMARY KEY,
  value VARCHAR(191) NOT NULL,
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE ledger (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  amount BIGINT NOT NULL,
  note VARCHAR(191),
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE plain (
  id INT AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(191) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE author_ref (
  id INTEGER PRIMARY KEY,
  name VARCHAR(191) NOT NULL,
  birth_date DATE,
  rating INTEGER NOT NULL DEFAULT 0,
  balance DECIMAL(18,2) NOT NULL DEFAULT 0,
  last_seen DATETIME(6),
  is_active TINYINT(1) NOT NULL DEFAULT 1,
  profile JSON,
  nickname VARCHAR(191),
  external_id VARCHAR(191) NOT NULL,
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE book_ref (
  id INTEGER PRIMARY KEY,
  title VARCHAR(191) NOT NULL,
  author_id INTEGER NOT NULL,
  price DECIMAL(18,2) NOT NULL DEFAULT 0,
  published_at DATETIME(6),
  is_public TINYINT(1) NOT NULL DEFAULT 1,
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE tag_ref (
  id CHAR(36) PRIMARY KEY,
  name VARCHAR(191) NOT NULL,
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE setting_ref (
  `key` VARCHAR(191) PRIMARY KEY,
  value VARCHAR(191) NOT NULL,
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE ledger_ref (
  id BIGINT PRIMARY KEY,
  amount BIGINT NOT NULL,
  note VARCHAR(191),
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Edge values (issue 9): master edge, replica edge_ref.
CREATE TABLE edge (
  id INT AUTO_INCREMENT PRIMARY KEY,
  dec38 DECIMAL(38,18),
  dec18 DECIMAL(18,8),
  big BIGINT,
  dbl DOUBLE,
  flt FLOAT,
  tstz DATETIME(6),
  ts DATETIME(6),
  day DATE,
  doc JSON NOT NULL,
  doc_opt JSON,
  bytes LONGBLOB,
  txt LONGTEXT,
  cqrs_revision INTEGER NOT NULL DEFAULT 0,
  cqrs_updated DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE edge_ref (
  id INTEGER PRIMARY KEY,
  dec38 DECIMAL(38,18),
  dec18 DECIMAL(18,8),
  big BIGINT,
  dbl DOUBLE,
  flt FLOAT,
  tstz DATETIME(6),
  ts DATETIME(6),
  day DATE,
  doc JSON NOT NULL,
  doc_opt JSON,
  bytes LONGBLOB,
  txt LONGTEXT,
  cqrs_revision INTEGER NOT NULL,
  cqrs_updated DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
