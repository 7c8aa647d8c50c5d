/**
 * Issue 9, master side: every path that sends a master row (extension capture, trigger capture,
 * bulk-dump's three renderings, sync) sends what the database holds. Rows get generated values at the
 * edges of each column type; each wire value is compared with the database's own text of its column
 * (`::text` on PostgreSQL, `CAST(... AS CHAR)` on MariaDB). The seed is printed in the test names;
 * rerun one with CQRS_SEED=<seed>.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolveMasterOptions } from '../../src/config/master-options.js'
import { ExactDateTime } from '../../src/core/datetime.js'
import { formatDumpLine } from '../../src/core/dump-format.js'
import { parseJson, RawJson, stringifyJson } from '../../src/core/json.js'
import { silentLogger } from '../../src/core/logger.js'
import { dumpRows } from '../../src/master/dump.js'
import { syncRows } from '../../src/master/sync.js'
import { cqrsMaster, installCaptureTriggers } from '../../src/prisma/cqrs-master.js'
import { modelsOf } from '../../src/prisma/internals.js'
import { buildPlans, findModel } from '../../src/prisma/model-plans.js'
import { RowScanner } from '../../src/prisma/row-scanner.js'
import { rng } from '../support/chaos.js'
import { CollectorTransport } from '../support/collector.js'
import { createTestDatabase, DIALECTS, type Dialect, type TestDatabase } from '../support/databases.js'

const SEED = Number(process.env.CQRS_SEED ?? Math.floor(Math.random() * 2 ** 31))

/** The suite's seeded generator (support/chaos.ts), with int and pick, so a failure can be replayed with its seed. */
function random(seed: number) {
  const next = rng(seed)
  const int = (n: number) => Math.floor(next() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]
  return { next, int, pick }
}
type Rng = ReturnType<typeof random>

const pad = (n: number, w = 2) => String(n).padStart(w, '0')

/** A Decimal(18,2) at an edge or anywhere in range, as text. */
function decimal(r: Rng): string {
  const edge = ['0.00', '-0.01', '0.01', '0.10', '123.40', '9999999999999999.99', '-9999999999999999.99', '1.00']
  if (r.next() < 0.5) return r.pick(edge)
  const digits = Array.from({ length: 1 + r.int(16) }, (_, i) => (i === 0 ? 1 + r.int(9) : r.int(10))).join('')
  return `${r.next() < 0.3 ? '-' : ''}${digits}.${pad(r.int(100))}`
}

/** A datetime with microseconds between 1000 and 9999 (MariaDB's DATETIME range), UTC text. */
function datetime(r: Rng, msOnly = false): string {
  const edges = ['1000-01-01 00:00:00', '9999-12-31 23:59:59', '1970-01-01 00:00:00', '2024-02-29 12:00:00']
  let base: string
  if (r.next() < 0.3) base = r.pick(edges)
  else {
    const d = new Date(Date.UTC(1000 + r.int(9000), r.int(12), 1 + r.int(28), r.int(24), r.int(60), r.int(60)))
    base = d.toISOString().slice(0, 19).replace('T', ' ')
  }
  const us = r.pick([0, 1, 999999, 500000, 1000, 120, r.int(1_000_000)])
  const frac = msOnly ? us - (us % 1000) : us
  return `${base}.${pad(frac, 6)}`
}

const JSON_TEXTS = ['{"score": 33.0}', '{"tiny": 1e-7, "neg": -0.50}', '{"big": 12345678901234567890}', '[1.50, "é✓😀 \\"q\\"", {"deep": [[[{"x": null}]]]}]', '"just a string"', 'null', '{"a": 1, "b": {"c": [true, false]}}', '{"long": 1234567890.12345678}']
const STRINGS = ['', 'plain', 'é✓😀 unicode', 'quote \' and " and \\ back', 'new\nline\ttab', 'x'.repeat(191)]

interface EdgeRow {
  name: string
  birthDate: string | null
  rating: number
  balance: string
  lastSeen: string | null
  isActive: boolean
  profile: string | null
  nickname: string | null
  externalId: string
}

function edgeRow(r: Rng, msOnly: boolean): EdgeRow {
  return {
    name: r.pick(STRINGS),
    birthDate: r.next() < 0.2 ? null : datetime(r).slice(0, 10),
    rating: r.pick([0, -2147483648, 2147483647, r.int(1000) - 500]),
    balance: decimal(r),
    lastSeen: r.next() < 0.2 ? null : datetime(r, msOnly),
    isActive: r.next() < 0.5,
    profile: r.next() < 0.15 ? null : r.pick(JSON_TEXTS),
    nickname: r.next() < 0.3 ? null : r.pick(STRINGS),
    externalId: `e-${r.int(1e9)}`,
  }
}

const COLUMNS = ['id', 'name', 'birth_date', 'rating', 'balance', 'last_seen', 'is_active', 'profile', 'nickname', 'external_id', 'cqrs_revision', 'cqrs_updated']

/** Every author row as its database writes each column (text), by id. */
async function databaseText(db: TestDatabase): Promise<Map<string, Record<string, string | null>>> {
  const cast = (c: string) => (db.dialect === 'postgresql' ? `${c}::text` : `CAST(${c} AS CHAR)`)
  const rows = await db.query<Record<string, string | null>>(`SELECT ${COLUMNS.map((c) => `${cast(c)} AS ${c}`).join(', ')} FROM author`)
  return new Map(rows.map((r) => [String(r.id), r]))
}

/** A wire number's text as it was written (parseJson keeps it: a plain number prints back the same). */
const numberText = (v: unknown) => (v instanceof RawJson ? v.text : String(v))
const sameInstant = (a: string | null, b: string | null) => (a === null || b === null ? a === b : ExactDateTime.parse(a)?.toISOString() === ExactDateTime.parse(b)?.toISOString())
const jsonText = (v: unknown) => stringifyJson(v)

/** JSON with every number as a double, for the extension capture (Prisma reads JSON with JSON.parse; README). */
const asDoubles = (x: unknown): unknown =>
  x instanceof RawJson || typeof x === 'bigint' ? Number(x instanceof RawJson ? x.text : x) : Array.isArray(x) ? x.map(asDoubles) : x && typeof x === 'object' ? Object.fromEntries(Object.entries(x).map(([k, y]) => [k, asDoubles(y)])) : x
const jsonValue = (v: unknown) => JSON.stringify(asDoubles(v))

/**
 * Compare one `instance_data` (keys as columns) with the database's text of its row. `jsonAsValue`:
 * JSON numbers compared by value, not form (the extension capture's documented limit).
 */
function expectSameAsDatabase(where: string, data: Record<string, unknown>, db: Record<string, string | null>, jsonAsValue = false) {
  const say = (col: string) => `${where}: column ${col} (seed ${SEED}); wire ${stringifyJson(data[col])}, database ${JSON.stringify(db[col])}`
  for (const col of ['id', 'rating', 'cqrs_revision']) expect(String(data[col]), say(col)).toBe(db[col])
  expect(data.balance === null ? null : numberText(data.balance), say('balance')).toBe(db.balance)
  for (const col of ['last_seen', 'cqrs_updated']) {
    expect(data[col] === null || /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?\+00:00$/.test(String(data[col])), say(col)).toBe(true)
    expect(sameInstant(data[col] as string | null, db[col]), say(col)).toBe(true)
  }
  expect(data.birth_date, say('birth_date')).toBe(db.birth_date)
  expect(data.is_active, say('is_active')).toBe(db.is_active === 'true' || db.is_active === 't' || db.is_active === '1')
  for (const col of ['name', 'nickname', 'external_id']) expect(data[col], say(col)).toBe(db[col])
  // The wire has one null for SQL NULL and JSON null (django-cqrs's too).
  const stored = db.profile === null || db.profile === 'null' ? null : parseJson(db.profile)
  const text = jsonAsValue ? jsonValue : jsonText
  expect(data.profile === null ? null : text(data.profile), say('profile')).toBe(stored === null ? null : text(stored))
}

/** The last event per pk, bodies read with parseJson (numbers as written). */
function lastByPk(transport: CollectorTransport): Map<string, any> {
  const out = new Map<string, any>()
  for (const m of transport.published) {
    const body = parseJson(m.body) as any
    out.set(String(body.instance_pk), body)
  }
  return out
}

const sqlLiteral = (v: string | null) => (v === null ? 'NULL' : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`)

for (const dialect of DIALECTS.filter((d): d is Exclude<Dialect, 'sqlite'> => d !== 'sqlite')) {
  describe(`${dialect}: the master sends what its database holds (seed ${SEED})`, () => {
    let db: TestDatabase
    let base: any
    const models = { author: { cqrsId: 'author', keys: 'column' as const } }
    // PostgreSQL takes backslashes literally in standard strings; MariaDB needs them escaped.
    const lit = (v: string | null) => (dialect === 'postgresql' ? (v === null ? 'NULL' : `'${v.replace(/'/g, "''")}'`) : sqlLiteral(v))
    const at = (v: string | null) => (v === null ? 'NULL' : dialect === 'postgresql' ? `'${v}+00'` : `'${v}'`)

    beforeAll(async () => {
      db = await createTestDatabase(dialect, 'mexact')
      base = await db.client()
    })
    afterAll(async () => db?.drop())

    it('extension capture: each value of each event is the column as stored', async () => {
      const r = random(SEED)
      const transport = new CollectorTransport()
      const prisma = base.$extends(cqrsMaster({ transport, logger: silentLogger, capture: 'extension', relay: { enabled: false }, models }))
      try {
        for (let i = 0; i < 25; i++) {
          const e = edgeRow(r, true)
          const data = {
            ...e,
            birthDate: e.birthDate && new Date(`${e.birthDate}T00:00:00Z`),
            lastSeen: e.lastSeen && new Date(`${e.lastSeen.replace(' ', 'T')}Z`),
            // Prisma writes JSON from JavaScript values: 33.0 cannot be written through it.
            profile: e.profile === null ? undefined : JSON.parse(e.profile.replace('12345678901234567890', '1').replace('1234567890.12345678', '1.5')),
          }
          const a = await prisma.author.create({ data })
          if (i % 3 === 0) await prisma.author.update({ where: { id: a.id }, data: { balance: decimal(r), lastSeen: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, r.int(1000))) } })
        }
        await prisma.$cqrs.flush()
        const texts = await databaseText(db)
        const events = lastByPk(transport)
        expect(events.size).toBe(texts.size)
        for (const [pk, body] of events) expectSameAsDatabase(`extension capture, author ${pk}`, body.instance_data, texts.get(pk)!, true)
      } finally {
        await prisma.$cqrs.close()
      }
    })

    it('trigger capture: raw SQL with microseconds and JSON number forms arrives as stored', async () => {
      const r = random(SEED + 1)
      await db.exec('DELETE FROM author')
      await installCaptureTriggers(base, { models })
      const transport = new CollectorTransport()
      const prisma = base.$extends(cqrsMaster({ transport, logger: silentLogger, capture: 'trigger', relay: { enabled: false }, models }))
      try {
        for (let i = 0; i < 25; i++) {
          const e = edgeRow(r, false)
          await db.exec(
            `INSERT INTO author (name, birth_date, rating, balance, last_seen, is_active, profile, nickname, external_id, cqrs_revision, cqrs_updated) VALUES (${lit(e.name)}, ${e.birthDate ? `'${e.birthDate}'` : 'NULL'}, ${e.rating}, ${e.balance}, ${at(e.lastSeen)}, ${e.isActive}, ${lit(e.profile)}, ${lit(e.nickname)}, ${lit(e.externalId)}, 0, ${at(datetime(r))})`,
          )
        }
        await db.exec(`UPDATE author SET balance = ${decimal(r)}, last_seen = ${at(datetime(r))}, cqrs_updated = ${at(datetime(r))} WHERE id % 4 = 0`)
        await prisma.$cqrs.flush()
        const texts = await databaseText(db)
        const events = lastByPk(transport)
        expect(events.size).toBe(texts.size)
        for (const [pk, body] of events) expectSameAsDatabase(`trigger capture, author ${pk}`, body.instance_data, texts.get(pk)!)
      } finally {
        await prisma.$cqrs.close()
      }
    })

    it('bulk-dump (each rendering, the same bytes) and sync send what is stored', async () => {
      const metas = modelsOf(base)
      const plan = [...buildPlans(metas, resolveMasterOptions({ transport: new CollectorTransport(), models })).values()][0]
      const scanner = new RowScanner(base, findModel(metas, 'Author')!, { pkField: plan.pkField, revisionField: plan.revisionField })
      const ctx = { tx: base, model: 'Author', operation: 'test' }
      try {
        const texts = await databaseText(db)
        expect(texts.size).toBeGreaterThan(0)
        const lines = async (where?: Record<string, unknown>) => {
          const out: string[] = []
          for await (const page of dumpRows({ source: scanner, plan, ctx, batchSize: 7, where })) for (const d of page.rows) out.push(formatDumpLine(d))
          return out
        }
        // Whole pages (PostgreSQL reads them with one raw statement) and pages through Prisma (a where).
        const whole = await lines()
        const viaPrisma = await lines({ id: { gte: 0 } })
        expect(viaPrisma).toEqual(whole)
        for (const line of whole) {
          const data = parseJson(line) as Record<string, unknown>
          expectSameAsDatabase(`bulk-dump, author ${data.id}`, data, texts.get(String(data.id))!)
        }
        const rendered = scanner.dumpLineChunks(plan, 7)
        if (dialect === 'postgresql') {
          let copied = ''
          for await (const chunk of rendered!) copied += chunk.text.toString()
          // The COPY path and the JS path write the same bytes (compact JSON, as django-cqrs's dump).
          expect(copied).toBe(`${whole.join('\n')}\n`)
        }
        const transport = new CollectorTransport()
        for await (const _ of syncRows({ source: scanner, plan, transport, ctx: { ...ctx, correlationId: null, expires: null }, queue: null, batchSize: 7, where: { id: { gte: 0 } } }));
        const synced = lastByPk(transport)
        expect(synced.size).toBe(texts.size)
        for (const [pk, body] of synced) expectSameAsDatabase(`sync, author ${pk}`, body.instance_data, texts.get(pk)!)
      } finally {
        await scanner.close()
      }
    })
  })
}
