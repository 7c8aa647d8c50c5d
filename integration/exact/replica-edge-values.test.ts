/**
 * The replica stores exactly what the wire says, to the precision of its column, on every replica
 * path: consume (the batch SQL), row hooks (default writes), bulk-load (COPY on PostgreSQL). Rows are
 * generated from values at the edges of each column type (seeded; the seed is printed on failure,
 * repeat with CQRS_SEED=<seed>), sent as wire text written by hand (no JavaScript number or Date in
 * between), and each stored value is compared, as the database's own text, with the database's own
 * cast of the wire value to the column's type.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { cqrsReplica, type Replica } from '../../src/prisma/cqrs-replica.js'
import { tableApplier } from '../../src/replica/applier.js'
import { loadDump } from '../../src/replica/load.js'
import { memory } from '../../src/transport/memory/index.js'
import type { TableTarget } from '../../src/replica/apply-op.js'
import { createTestDatabase, DIALECTS, mariadbConfig, type TestDatabase } from '../support/databases.js'
import { expectedText, prng, storedTexts, type ColumnSpec } from './replica-support.js'

const SEED = Number(process.env.CQRS_SEED ?? Math.floor(Math.random() * 2 ** 31))
const ROWS = 40

const COLUMNS: ColumnSpec[] = [
  { column: 'dec38', key: 'dec38', compare: 'cast', pg: 'numeric(38,18)', mysql: 'DECIMAL(38,18)' },
  { column: 'dec18', key: 'dec18', compare: 'cast', pg: 'numeric(18,8)', mysql: 'DECIMAL(18,8)' },
  { column: 'big', key: 'big', compare: 'cast', pg: 'bigint', mysql: 'SIGNED', sqlite: 'INTEGER' },
  { column: 'dbl', key: 'dbl', compare: 'cast', pg: 'double precision', mysql: 'DOUBLE', sqlite: 'REAL' },
  { column: 'flt', key: 'flt', compare: 'cast', pg: 'real', mysql: 'FLOAT', sqlite: 'REAL' },
  { column: 'tstz', key: 'tstz', compare: 'datetime', pg: 'timestamptz(6)', mysql: 'DATETIME(6)', sqlite: 'TEXT' },
  { column: 'ts', key: 'ts', compare: 'datetime', pg: 'timestamp(6)', mysql: 'DATETIME(6)', sqlite: 'TEXT' },
  { column: 'day', key: 'day', compare: 'cast', pg: 'date', mysql: 'DATE' },
  { column: 'doc', key: 'doc', compare: 'json', pg: 'jsonb', mysql: 'JSON', sqlite: 'TEXT' },
  { column: 'doc_opt', key: 'docOpt', compare: 'json', pg: 'jsonb', mysql: 'JSON', sqlite: 'TEXT' },
  { column: 'bytes', key: 'bytes', compare: 'bytes', pg: 'bytea', mysql: 'LONGBLOB', sqlite: 'BLOB' },
  { column: 'txt', key: 'txt', compare: 'text', pg: 'text', mysql: 'LONGTEXT', sqlite: 'TEXT' },
  { column: 'cqrs_updated', key: 'cqrs_updated', compare: 'datetime', pg: 'timestamptz(6)', mysql: 'DATETIME(6)', sqlite: 'TEXT' },
]
const NULLABLE_JSON = new Set(['doc_opt'])

/** SQLite is compared where it can hold the value (README, "What is exact where"): not decimals; its `day` is a datetime. */
const columnsFor = (dialect: string): ColumnSpec[] =>
  dialect !== 'sqlite' ? COLUMNS : COLUMNS.flatMap((c) => (c.column === 'day' ? [{ ...c, compare: 'datetime' as const, sqlite: 'TEXT' }] : c.sqlite ? [c] : []))

/** The generator: each column's edge values (as JSON text) and a random one. */
function generator(seed: number) {
  const rnd = prng(seed)
  const int = (n: number) => Math.floor(rnd() * n)
  const pick = <T,>(xs: T[]): T => xs[int(xs.length)]
  const digits = (n: number) => Array.from({ length: n }, (_, i) => (i === 0 && n > 1 ? 1 + int(9) : int(10))).join('')
  const decimal = (intDigits: number, scale: number) => `${rnd() < 0.3 ? '-' : ''}${digits(1 + int(intDigits))}${scale && rnd() < 0.8 ? `.${digits(1 + int(scale))}` : ''}`
  const q = (s: string) => JSON.stringify(s)
  const pad = (n: number, w = 2) => String(n).padStart(w, '0')
  const datetime = () => {
    const frac = int(7)
    const text = `${pad(1 + int(9999), 4)}-${pad(1 + int(12))}-${pad(1 + int(28))} ${pad(int(24))}:${pad(int(60))}:${pad(int(60))}${frac ? `.${digits(frac)}` : ''}`
    return q(rnd() < 0.5 ? `${text}+00:00` : `${text.replace(' ', 'T')}Z`)
  }
  const unicode = () => pick(['Ünïcödé', '日本語のテキスト', 'emoji 🎉👩‍👩‍👧', 'tab\there', 'line\nbreak\r\n', 'back\\slash', 'quote " and \'', 'combining é', 'Ω≈ç√∫', 'null'])
  const longText = () => Array.from({ length: 200 + int(2000) }, unicode).join(' ')
  const number = () => pick(['33.0', '1e-7', '-0', '0', '12345678901234567890', '1234567890.12345678', '1.7976931348623157e308', '5e-324', '-1.5E+10', String(int(1000))])
  const json = (depth: number): string => {
    const r = rnd()
    if (depth <= 0 || r < 0.3) return pick([number(), q(unicode()), 'true', 'false', 'null'])
    if (r < 0.6) return `[${Array.from({ length: int(4) }, () => json(depth - 1)).join(',')}]`
    return `{${Array.from({ length: int(4) }, (_, i) => `${q(`${pick(['k', 'ключ', '鍵', 'a b', 'x"y'])}${i}`)}:${json(depth - 1)}`).join(',')}}`
  }
  // Deep nesting stays under MariaDB's JSON depth limit (32).
  const deep = () => `${'{"d":['.repeat(15)}33.0${']}'.repeat(15)}`
  const bytes = () => q(Buffer.from(Array.from({ length: int(300) }, () => int(256))).toString('base64'))
  const double = () => {
    const b = Buffer.alloc(8)
    for (let i = 0; i < 8; i++) b[i] = int(256)
    const n = b.readDoubleBE(0)
    return Number.isFinite(n) ? String(n) : '0.5'
  }
  const gen: Record<string, () => string> = {
    dec38: () => pick(['99999999999999999999.999999999999999999', '-99999999999999999999.999999999999999999', '0.000000000000000001', '-0.0', '1e-7', '12345678901234567890.123456789012345678', decimal(20, 18), decimal(20, 18)]),
    dec18: () => pick(['9999999999.99999999', '-9999999999.99999999', '1234567890.12345678', '0.00000001', '-0.0', '33.0', '0', decimal(10, 8), decimal(10, 8)]),
    big: () => pick(['9223372036854775807', '-9223372036854775808', '-9223372036854775807', '9007199254740993', '0', '-1', `${rnd() < 0.5 ? '-' : ''}${digits(1 + int(18))}`]),
    dbl: () => pick(['5e-324', '1.7976931348623157e308', '-1.7976931348623157e308', '2.2250738585072014e-308', '-0.0', '0.1', '33.0', '1e-7', '123456789012345680000', double(), double()]),
    flt: () => pick(['3.4028234e38', '-3.4028234e38', '1.1754944e-38', '-0.0', '0.1', '16777217', '33.0', '1e-7', String(Math.fround((rnd() - 0.5) * 10 ** int(30)))]),
    tstz: () => pick([q('0001-01-01 00:00:00+00:00'), q('9999-12-31 23:59:59.999999+00:00'), q('2026-12-03T07:52:03.955757Z'), q('1970-01-01 00:00:00.000001+00:00'), datetime(), datetime()]),
    ts: () => pick([q('0001-01-01T00:00:00.1Z'), q('9999-12-31 23:59:59.99999+00:00'), q('2000-02-29 12:00:00.12+00:00'), datetime(), datetime()]),
    day: () => pick([q('0001-01-01'), q('9999-12-31'), q('2024-02-29'), q(`${pad(1000 + int(9000), 4)}-${pad(1 + int(12))}-${pad(1 + int(28))}`)]),
    doc: () => pick([json(4), json(4), deep(), 'null', '{"score":33.0,"tiny":1e-7,"neg":-0}', q(unicode()), '[]']),
    docOpt: () => pick([json(3), 'null', '{"n":12345678901234567890}']),
    bytes: () => pick([bytes(), q('')]),
    txt: () => pick([q(''), q(longText()), q(unicode())]),
    cqrs_updated: () => pick([q('2026-12-03 07:52:03.955757+00:00'), datetime()]),
  }
  return (id: number): Record<string, string> => {
    const row: Record<string, string> = {}
    for (const c of COLUMNS) row[c.key] = c.key !== 'doc' && c.key !== 'cqrs_updated' && rnd() < 0.1 ? 'null' : gen[c.key]()
    row.id = String(id)
    row.cqrs_revision = '0'
    return row
  }
}

/** A row's instance_data as JSON text, every value as generated. */
const lineOf = (row: Record<string, string>) => `{${Object.entries(row).map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`
const bodyOf = (row: Record<string, string>) => `{"signal_type":"SAVE","cqrs_id":"edge","instance_data":${lineOf(row)},"previous_data":null,"instance_pk":${row.id},"correlation_id":null,"retries":0,"expires":null,"meta":{}}`

/** Differences between the stored rows and the database's own reading of the wire values. */
async function differences(db: TestDatabase, rows: Array<Record<string, string>>, columns: ColumnSpec[]): Promise<string[]> {
  const stored = await storedTexts(db, 'edge_ref', columns)
  const out: string[] = []
  for (const row of rows) {
    const got = stored.get(row.id)
    if (!got) {
      out.push(`row ${row.id} missing`)
      continue
    }
    for (const c of columns) {
      const wire = row[c.key]
      const want = wire === 'null' && (c.compare !== 'json' || NULLABLE_JSON.has(c.column)) ? null : await expectedText(db, c, wire)
      if (got[c.column] !== want) out.push(`row ${row.id} ${c.column}: wire ${wire.slice(0, 120)} -> stored ${String(got[c.column]).slice(0, 120)}, expected ${String(want).slice(0, 120)}`)
    }
  }
  return out
}

describe.each(DIALECTS)('edge values on every replica path into %s', { timeout: 240_000 }, (dialect) => {
  let db: TestDatabase
  const replicas: Replica[] = []
  const rows = Array.from({ length: ROWS }, (_, i) => generator(SEED + i)(i + 1))
  const seedNote = `seed ${SEED} (repeat with CQRS_SEED=${SEED})`
  const columns = columnsFor(dialect)

  beforeAll(async () => {
    db = await createTestDatabase(dialect, 'edge')
  })
  afterAll(async () => {
    await Promise.allSettled(replicas.map((r) => r.stop()))
    await db?.drop()
  })

  async function replica(handler: Record<string, unknown> = {}): Promise<Replica> {
    await db.exec('DELETE FROM edge_ref; DELETE FROM cqrs_tombstone')
    const r = cqrsReplica({ prisma: await db.client(), transport: memory(), queue: 'edge', logger: silentLogger, honorExpires: false, handlers: { edge: { model: 'edgeRef', ...handler } } })
    replicas.push(r)
    return r
  }
  const deliveries = () => rows.map((row) => ({ body: Buffer.from(bodyOf(row)), routingKey: 'edge', headers: {}, redelivered: false }))

  it('consume: one batch statement', async () => {
    const r = await replica()
    const outcomes = await r.consumer.handle(deliveries())
    expect(outcomes.filter((o) => o.kind !== 'ack'), seedNote).toEqual([])
    expect(await differences(db, rows, columns), seedNote).toEqual([])
  })

  // The batch runs on the mariadb driver's text protocol whatever the adapter was given: with useTextProtocol too.
  it.runIf(dialect === 'mysql')('consume: one batch statement, the MariaDB adapter on its text protocol (useTextProtocol)', async () => {
    await db.exec('DELETE FROM edge_ref; DELETE FROM cqrs_tombstone')
    const { PrismaClient } = await import(`../../prisma/generated/${dialect}/client.ts`)
    const { PrismaMariaDb } = await import('@prisma/adapter-mariadb')
    const adapter = new PrismaMariaDb(mariadbConfig(db.url), { useTextProtocol: true })
    const prisma = new PrismaClient({ adapter })
    const r = cqrsReplica({ prisma, transport: memory(), queue: 'edge', logger: silentLogger, honorExpires: false, handlers: { edge: { model: 'edgeRef' } } })
    try {
      const outcomes = await r.consumer.handle(deliveries())
      expect(outcomes.filter((o) => o.kind !== 'ack'), seedNote).toEqual([])
      expect(await differences(db, rows, columns), seedNote).toEqual([])
    } finally {
      await r.stop()
      await prisma.$disconnect()
    }
  })

  it('consume through a handler with row hooks (the default writes)', async () => {
    const r = await replica({ delete: async () => {} })
    const outcomes = await r.consumer.handle(deliveries())
    expect(outcomes.filter((o) => o.kind !== 'ack'), seedNote).toEqual([])
    expect(await differences(db, rows, columns), seedNote).toEqual([])
  })

  it('a create hook you write gets the row in Prisma\'s types and writes it through Prisma', async () => {
    const seen: Array<Record<string, unknown>> = []
    const r = await replica({ create: async (data: Record<string, unknown>, ctx: { tx: any }) => (seen.push(data), ctx.tx.edgeRef.create({ data })) })
    // Prisma itself cannot write the extreme doubles (it renders 1.7976931348623157e308 as a decimal too long for the column).
    // Nor can Prisma's MariaDB adapter read back a DATETIME before year 1000 (outside MariaDB's documented
    // range; our own writes store it, the consume test above proves it): such datetimes are left out here.
    const early = (v: string) => dialect === 'mysql' && /^"0\d{3}-/.test(v)
    const mine = rows.map((row) => ({ ...row, dbl: 'null', flt: 'null', tstz: early(row.tstz) ? 'null' : row.tstz, ts: early(row.ts) ? 'null' : row.ts, cqrs_updated: early(row.cqrs_updated) ? '"2026-12-03 07:52:03.955757+00:00"' : row.cqrs_updated }))
    const outcomes = await r.consumer.handle(mine.map((row) => ({ body: Buffer.from(bodyOf(row)), routingKey: 'edge', headers: {}, redelivered: false })))
    expect(outcomes.filter((o) => o.kind !== 'ack'), seedNote).toEqual([])
    expect(seen[0].cqrsUpdated).toBeInstanceOf(Date)
    // Prisma keeps decimals, integers, bytes and strings exactly (datetimes to the millisecond, README).
    const exact = columns.filter((c) => ['dec38', 'dec18', 'big', 'bytes', 'txt'].includes(c.column))
    expect(await differences(db, mine, exact), seedNote).toEqual([])
  })

  it('bulk-load', async () => {
    const r = await replica()
    const target = (r.routes.get('edge') as { target: TableTarget }).target
    async function* lines() {
      for (const [i, row] of rows.entries()) yield { line: i + 2, text: lineOf(row) }
    }
    const failed: string[] = []
    for await (const ev of loadDump({ target, applier: tableApplier(r.store, target), lines: lines(), batchSize: 16, onBulkError: (e) => failed.push(e.message) })) if (!('applied' in ev)) failed.push(`line ${ev.line}: ${ev.reason}`)
    expect(failed, seedNote).toEqual([])
    expect(await differences(db, rows, columns), seedNote).toEqual([])
  })

  it('JSON null: SQL NULL in a nullable Json column, the JSON value null in a NOT NULL one (consume and bulk-load)', async () => {
    const row = { id: '1', doc: 'null', docOpt: 'null', cqrs_revision: '0', cqrs_updated: '"2026-12-03 07:52:03+00:00"' }
    const read = async () => {
      const text = dialect === 'postgresql' ? 'doc::text' : dialect === 'mysql' ? 'CAST(doc AS CHAR)' : 'CAST(doc AS TEXT)'
      const [got] = await db.query<{ doc: unknown; opt_null: unknown }>(`SELECT ${text} AS doc, CASE WHEN doc_opt IS NULL THEN 1 ELSE 0 END AS opt_null FROM edge_ref WHERE id = 1`)
      return { doc: String(got?.doc), docOptIsSqlNull: Number(got?.opt_null) === 1 }
    }
    const consumed = await replica()
    expect(await consumed.consumer.handle([{ body: Buffer.from(bodyOf(row)), routingKey: 'edge', headers: {}, redelivered: false }])).toEqual([{ kind: 'ack' }])
    expect(await read()).toEqual({ doc: 'null', docOptIsSqlNull: true })
    const loaded = await replica()
    const target = (loaded.routes.get('edge') as { target: TableTarget }).target
    async function* lines() {
      yield { line: 2, text: lineOf(row) }
    }
    for await (const ev of loadDump({ target, applier: tableApplier(loaded.store, target), lines: lines(), batchSize: 10 })) expect(ev).toMatchObject({ applied: 1, failed: 0 })
    expect(await read()).toEqual({ doc: 'null', docOptIsSqlNull: true })
  })

  it.skipIf(dialect === 'sqlite')('would see a decoder that goes through JavaScript numbers and dates', async () => {
    // What the replica stored before issue 9: every number through a double, datetimes to milliseconds.
    const lossy = (row: Record<string, string>) =>
      Object.fromEntries(
        Object.entries(row).map(([k, v]) => [
          k,
          v.startsWith('"') ? v.replace(/(\d\d:\d\d:\d\d\.\d{3})\d+/, '$1') : v.replace(/(?<![\w.])-?\d+(\.\d+)?([eE][+-]?\d+)?/g, (n) => JSON.stringify(Number(n))),
        ]),
      )
    const r = await replica()
    const sensitive = ['1234567890.12345678', '12345678901234567890.123456789012345678', '2026-12-03T07:52:03.955757Z', '{"score":33.0,"tiny":1e-7,"neg":-0}']
    const probe = [{ id: '1', dec18: sensitive[0], dec38: sensitive[1], tstz: JSON.stringify(sensitive[2]), doc: sensitive[3], cqrs_revision: '0', cqrs_updated: '"2026-12-03 07:52:03+00:00"' }]
    const outcomes = await r.consumer.handle(probe.map((row) => ({ body: Buffer.from(bodyOf(lossy(row))), routingKey: 'edge', headers: {}, redelivered: false })))
    expect(outcomes).toEqual([{ kind: 'ack' }])
    const found = await differences(db, probe, COLUMNS.filter((c) => ['dec18', 'dec38', 'tstz', 'doc'].includes(c.column)))
    expect(found.map((d) => d.split(':')[0]).sort()).toEqual(['row 1 dec18', 'row 1 dec38', 'row 1 doc', 'row 1 tstz'])
  })
})
