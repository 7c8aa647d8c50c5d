-- The fresh app's own tables (schema.prisma); cqrs-sync's come from its prisma/cqrs.postgresql.sql.
CREATE TABLE account (id SERIAL PRIMARY KEY, name TEXT NOT NULL, cqrs_revision INTEGER NOT NULL DEFAULT 0, cqrs_updated TIMESTAMP(3) NOT NULL);
CREATE TABLE account_ref (id INTEGER PRIMARY KEY, name TEXT NOT NULL, cqrs_revision INTEGER NOT NULL, cqrs_updated TIMESTAMP(3) NOT NULL);
