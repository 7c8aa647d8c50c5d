/**
 * What the exactness tests of the replica paths share: reading a stored value as the database's own
 * text, and the text the database gives the wire value when it casts it to the column's type itself
 * (so the expected value never passes through the code under test).
 */
import type { TestDatabase } from '../support/databases.js'

/** A replica column under test: its SQL types for the casts, and how its wire value is compared. */
export interface ColumnSpec {
  column: string
  /** Wire key (the Prisma field name). */
  key: string
  compare: 'cast' | 'datetime' | 'json' | 'bytes' | 'text'
  pg: string
  mysql: string
  /** SQLite's type for the cast; a column without one is not compared on SQLite (it cannot hold the value exactly). */
  sqlite?: string
}

/** SQLite stores datetimes as text: both sides read as `YYYY-MM-DD HH:MM:SS.ffffff` (UTC). */
function sqliteDateTime(text: string): string {
  const m = /^(\d{4}-\d\d-\d\d)(?:[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?)?(Z|\+00:00)?$/.exec(text)
  return m ? `${m[1]} ${m[2] ?? '00:00:00'}.${(m[3] ?? '').padEnd(6, '0')}` : `unreadable: ${text}`
}

/** A SQL string literal for `dialect` (MariaDB reads backslashes as escapes). */
export function literal(db: TestDatabase, s: string): string {
  const body = db.dialect === 'mysql' ? s.replace(/\\/g, '\\\\') : s
  return `'${body.replace(/'/g, "''")}'`
}

const q = (db: TestDatabase, c: string) => (db.dialect === 'mysql' ? `\`${c}\`` : `"${c}"`)

/** The stored values of `columns` for each row of `table`, as the database writes them as text; null for SQL NULL. */
export async function storedTexts(db: TestDatabase, table: string, columns: ColumnSpec[]): Promise<Map<string, Record<string, string | null>>> {
  const expr = (c: ColumnSpec) => {
    const col = q(db, c.column)
    if (db.dialect === 'postgresql') return c.compare === 'bytes' ? `encode(${col}, 'hex')` : c.compare === 'datetime' ? `to_char(${col}${c.pg.startsWith('timestamptz') ? ` AT TIME ZONE 'UTC'` : ''}, 'YYYY-MM-DD HH24:MI:SS.US')` : `${col}::text`
    if (db.dialect === 'mysql') return c.compare === 'bytes' ? `LOWER(HEX(${col}))` : c.compare === 'datetime' ? `DATE_FORMAT(${col}, '%Y-%m-%d %H:%i:%s.%f')` : `CAST(${col} AS CHAR)`
    // HEX(NULL) is '' on SQLite.
    return c.compare === 'bytes' ? `CASE WHEN ${col} IS NULL THEN NULL ELSE LOWER(HEX(${col})) END` : `CAST(${col} AS TEXT)`
  }
  const rows = await db.query<Record<string, unknown>>(`SELECT ${db.dialect === 'postgresql' ? 'id::text' : db.dialect === 'mysql' ? 'CAST(id AS CHAR)' : 'CAST(id AS TEXT)'} AS id, ${columns.map((c, i) => `${expr(c)} AS v${i}`).join(', ')} FROM ${table}`)
  const text = (c: ColumnSpec, v: unknown) => (v == null ? null : db.dialect === 'sqlite' && c.compare === 'datetime' ? sqliteDateTime(String(v)) : String(v))
  return new Map(rows.map((r) => [String(r.id), Object.fromEntries(columns.map((c, i) => [c.column, text(c, r[`v${i}`])]))]))
}

/**
 * The text the database gives `wire` (the value's JSON text as the message carries it) in a column of
 * `c`'s type, by its own cast; JSON text and strings are compared as written, datetimes at six digits.
 */
export async function expectedText(db: TestDatabase, c: ColumnSpec, wire: string | null): Promise<string | null> {
  if (wire === null) return null
  switch (c.compare) {
    case 'text':
      return JSON.parse(wire) as string
    case 'bytes':
      return Buffer.from(JSON.parse(wire) as string, 'base64').toString('hex')
    case 'json':
      if (db.dialect === 'postgresql') return one(db, `SELECT CAST(${literal(db, wire)} AS ${c.pg})::text AS v`)
      return wire
    case 'datetime': {
      const text = (JSON.parse(wire) as string).replace('T', ' ').replace(/(Z|\+00:00)$/, '')
      if (db.dialect === 'sqlite') return sqliteDateTime(text)
      if (db.dialect === 'postgresql') return one(db, `SELECT to_char(CAST(${literal(db, text)} AS timestamp(6)), 'YYYY-MM-DD HH24:MI:SS.US') AS v`)
      return one(db, `SELECT DATE_FORMAT(CAST(${literal(db, text)} AS ${c.mysql}), '%Y-%m-%d %H:%i:%s.%f') AS v`)
    }
    case 'cast': {
      const text = wire.startsWith('"') ? (JSON.parse(wire) as string) : wire
      if (db.dialect === 'postgresql') return one(db, `SELECT CAST(${literal(db, text)} AS ${c.pg})::text AS v`)
      if (db.dialect === 'sqlite') return one(db, `SELECT CAST(CAST(${literal(db, text)} AS ${c.sqlite}) AS TEXT) AS v`)
      return one(db, `SELECT CAST(CAST(${literal(db, text)} AS ${c.mysql}) AS CHAR) AS v`)
    }
  }
}

async function one(db: TestDatabase, sql: string): Promise<string | null> {
  const [row] = await db.query<{ v: unknown }>(sql)
  return row?.v == null ? null : String(row.v)
}

/** The suite's seeded PRNG (mulberry32), so a failing run can be repeated with its printed seed. */
export { rng as prng } from '../support/chaos.js'
