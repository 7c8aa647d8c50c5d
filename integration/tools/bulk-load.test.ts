/**
 * bulk-load's PostgreSQL path (COPY into a stage table, one gated upsert, dump lines straight to COPY
 * text): it leaves the table the row-by-row path leaves, keeps the replica's version gate and
 * tombstones, applies a batch the database refuses row by row, and does not bring back a row that a
 * consumer deletes while the load runs. Its direct COPY (no stage, no upsert, where no pk of a batch is
 * stored or tombstoned) leaves the table the staged gated upsert leaves, on generated edge values.
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readLines } from '../../src/core/dump-format.js'
import { silentLogger } from '../../src/core/logger.js'
import { cqrsReplica, type Replica } from '../../src/prisma/cqrs-replica.js'
import { tableApplier, type Applier } from '../../src/replica/applier.js'
import type { TableTarget } from '../../src/replica/apply-op.js'
import { loadDump } from '../../src/replica/load.js'
import type { Transport } from '../../src/transport/types.js'
import { DIALECTS } from '../support/databases.js'
import { stage, until, type Stage } from './support.js'
import { rng } from '../support/chaos.js'
import { applyPreparedLoad, PgRowEncoder, prepareLoad, type DirectLoadState } from '../../src/prisma/pg-bulk-load.js'
import { sqlRunner } from '../../src/prisma/sql-runner.js'

const noTransport = { name: 'none', connect: async () => {}, publish: async () => {}, consume: async () => ({ stop: async () => {} }), close: async () => {} } as Transport

const row = (id: number, revision: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ id, name: `n${id}`, external_id: `e${id}`, cqrs_revision: revision, cqrs_updated: '2026-11-23 03:36:52.912+00:00', ...extra })

/** Lines of every form the fast path takes, and of forms it hands to the parsed path. */
const TRICKY = [
  row(1, 0),
  // django-cqrs's separators (", " and ": ") and a nested value with escapes
  '{"id": 2, "name": "Tab\\there \\"quoted\\" back\\\\slash\\nnew", "external_id": "x", "profile": {"a": "\\u00e9\\ud83d\\ude00", "b": [1, 2.5, {"c": null}], "d": "x\\\\y"}, "cqrs_revision": 4, "cqrs_updated": "2026-11-23 03:36:52.912+00:00"}',
  row(3, 1, { name: 'Ünïcødé 日本 😀', nickname: null, profile: null, birth_date: '1950-01-02', is_active: false }),
  // keys in another order, an unknown key, no nickname (another shape)
  JSON.stringify({ cqrs_revision: 2, extra: { deep: [1, { x: 'y' }] }, external_id: 'e4', name: 'n4', id: 4, balance: 0.1, rating: -7, cqrs_updated: '2026-11-23T03:36:52.912Z' }),
  // a datetime with another offset, and ISO with T and Z
  row(5, 3, { last_seen: '2026-11-23 05:36:52.001+02:00', cqrs_updated: '2026-11-23T03:36:52Z' }),
  // the same pk three times: the highest revision wins
  row(6, 1, { name: 'old' }),
  row(6, 3, { name: 'newest' }),
  row(6, 2, { name: 'middle' }),
  // a decimal written with a trailing zero, a number as a JSON value, no cqrs_revision at all
  JSON.stringify({ id: 7, name: 'n7', external_id: 'e7', balance: 12.5, profile: 42, cqrs_updated: '2026-11-23 03:36:52+00:00' }),
  '  {"id":8,"name":"spaces around","external_id":"e8","profile":["a",{"b":"c"}],"cqrs_revision":1,"cqrs_updated":"2026-11-23 03:36:52.912+00:00"}  ',
]

/**
 * Dump lines with values at the edges of author_ref's columns, as raw JSON text (no JavaScript number
 * or Date in between), pks unique but for some written twice in a row with other revisions.
 */
function edgeLines(seed: number, n: number): string[] {
  const rnd = rng(seed)
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]
  const names = ['""', '"plain"', '"Ünïcødé 日本 😀"', JSON.stringify('tab\there\nnew'), JSON.stringify('back\\slash "quoted"'), '"a,b}c{d]e["', JSON.stringify('\u0001ctl')]
  const datetimes = ['"2026-11-23 03:36:52.912512+00:00"', '"2026-11-23T03:36:52Z"', '"2026-11-23 05:36:52.000001+02:00"', '"0001-01-01 00:00:00+00:00"', '"9999-12-31 23:59:59.999999+00:00"', '"2026-11-23 03:36:52.1234567+00:00"', '"2026-11-23 03:36:52+00:00"']
  const jsons = ['null', '{"a":[1,"x",{"b":null}],"n":33.0}', '[1e-7,12345678901234567890,-0.0]', '"str"', '42', '{"u":"\\u00e9😀","q":"\\"x\\""}', '{}', '[]', 'true', '{"deep":{"deeper":[[[1.50]]]}}']
  const pool = new Set<number>()
  for (const edge of [-2147483648, -1, 0, 1, 2147483647]) pool.add(edge)
  while (pool.size < n) pool.add(Math.floor(rnd() * 4_000_000_000) - 2_000_000_000)
  const out: string[] = []
  for (const id of [...pool].sort((a, b) => a - b)) {
    const twice = rnd() < 0.05 ? 2 : 1
    // A pk written twice gives the same keys both times: of two lines with other keys, what a batch
    // path keeps depends on whether they share a batch (the consumer's too), not on the path.
    const seed = rnd()
    for (let k = 0; k < twice; k++) {
      const keyRnd = rng(Math.floor(seed * 1e9))
      const maybe = (p: number, v: string) => (keyRnd() < p ? v : undefined)
      const fields: Array<[string, string | undefined]> = [
        ['id', String(id)],
        ['name', pick(names)],
        ['birth_date', pick(['null', '"0001-01-01"', '"9999-12-31"', '"2000-02-29"'])],
        ['rating', maybe(0.9, pick(['-2147483648', '2147483647', '0', '-7']))],
        ['balance', maybe(0.9, pick(['9999999999999999.99', '-9999999999999999.99', '0.01', '33.0', '1e-7', '12.345', '-0', '0']))],
        ['last_seen', pick(['null', ...datetimes])],
        ['is_active', maybe(0.9, pick(['true', 'false']))],
        ['profile', pick(jsons)],
        ['nickname', pick(['null', '"nick"', '"日本"'])],
        ['external_id', pick(names)],
        ['cqrs_revision', maybe(0.9, String(Math.floor(rnd() * 6)))],
        ['cqrs_updated', pick(datetimes)],
        ['not_stored', maybe(0.2, pick(['1', '"x"', '{"y":[1]}']))],
      ]
      out.push(`{${fields.filter(([, v]) => v !== undefined).map(([k, v]) => `"${k}":${v}`).join(',')}}`)
    }
  }
  return out
}

describe.runIf(DIALECTS.includes('postgresql'))('bulk-load on PostgreSQL', { timeout: 120_000 }, () => {
  let s: Stage
  let db: any
  let replica: Replica
  let target: TableTarget
  let sql: pg.Client
  const id = () => `author${s.suffix}`
  const table = async () => (await sql.query('SELECT row_to_json(t)::text AS r FROM author_ref t ORDER BY id')).rows.map((r) => r.r)

  beforeAll(async () => {
    s = await stage('postgresql')
    Object.assign(s.env, { CQRS_AUTHOR_KEYS: 'column' })
    db = await s.replica.client()
    replica = cqrsReplica({ prisma: db, transport: noTransport, queue: s.queue, logger: silentLogger, handlers: { [id()]: { model: 'authorRef' } } })
    target = (replica.routes.get(id()) as { target: TableTarget }).target
    sql = new pg.Client({ connectionString: s.replica.url })
    await sql.connect()
    await sql.query(`SET TIME ZONE 'UTC'`)
  })
  afterAll(async () => {
    await sql?.end()
    await replica?.store.close()
    await db?.$disconnect()
    await s?.drop()
  })

  async function load(applier: Applier, lines: string[]) {
    const tally = { applied: 0, skipped: 0, failed: 0 }
    const src = (async function* () {
      yield lines.map((l) => `${l}\n`).join('')
    })()
    for await (const ev of loadDump({ target, applier, lines: readLines(src), batchSize: 4 })) if (!('reason' in ev)) for (const k of ['applied', 'skipped', 'failed'] as const) tally[k] += ev[k]
    return tally
  }

  it('leaves the table the row-by-row path leaves, for every form of value', async () => {
    const bulk = tableApplier(replica.store, target)
    expect(bulk.loadRows).toBeTypeOf('function')
    await sql.query('TRUNCATE author_ref')
    expect(await load(bulk, TRICKY)).toEqual({ applied: 8, skipped: 2, failed: 0 })
    const viaCopy = await table()
    await sql.query('TRUNCATE author_ref')
    expect(await load({ apply: bulk.apply }, TRICKY)).toEqual({ applied: 8, skipped: 2, failed: 0 })
    expect(await table()).toEqual(viaCopy)
    const byId = new Map(viaCopy.map((r) => [JSON.parse(r).id, JSON.parse(r)]))
    expect(byId.get(2).name).toBe('Tab\there "quoted" back\\slash\nnew')
    expect(byId.get(2).profile).toEqual({ a: 'é😀', b: [1, 2.5, { c: null }], d: 'x\\y' })
    expect(byId.get(5).last_seen).toBe('2026-11-23T03:36:52.001+00:00')
    expect(byId.get(6)).toMatchObject({ name: 'newest', cqrs_revision: 3 })
    expect(byId.get(7)).toMatchObject({ cqrs_revision: 0, balance: 12.5, profile: 42 })
  })

  it('keeps microseconds as the dump has them', async () => {
    await sql.query('TRUNCATE author_ref')
    await load(tableApplier(replica.store, target), [row(1, 0, { last_seen: '2026-11-23 03:36:52.912512+00:00' })])
    expect((await sql.query(`SELECT to_char(last_seen AT TIME ZONE 'UTC', 'HH24:MI:SS.US') AS t FROM author_ref`)).rows[0].t).toBe('03:36:52.912512')
  })

  it('keeps the version gate and the tombstones (cqrs bulk-load)', async () => {
    await sql.query('TRUNCATE author_ref')
    await sql.query(`INSERT INTO author_ref (id, name, external_id, cqrs_revision, cqrs_updated) VALUES (1, 'newer', 'e', 5, now()), (2, 'older', 'e', 1, now()), (3, 'same', 'e', 3, now())`)
    await sql.query(`INSERT INTO cqrs_tombstone (cqrs_id, pk, revision, updated, deleted_at) VALUES ($1, '4', 4, now(), now()), ($1, '5', 1, now(), now())`, [id()])
    const r = await s.sh('cqrs bulk-load -i -', [id(), row(1, 3), row(2, 3), row(3, 3, { name: 'same again' }), row(4, 3), row(5, 3), row(6, 0)].join('\n'))
    expect(r.stderr).toMatch(/loaded 6 rows of author\S* into author_ref: 4 applied, 2 skipped/)
    expect(r.code).toBe(0)
    const rows = (await sql.query('SELECT id, name, cqrs_revision AS rev FROM author_ref ORDER BY id')).rows
    expect(rows).toEqual([
      { id: 1, name: 'newer', rev: 5 },
      { id: 2, name: 'n2', rev: 3 },
      { id: 3, name: 'same again', rev: 3 },
      { id: 5, name: 'n5', rev: 3 },
      { id: 6, name: 'n6', rev: 0 },
    ])
  })

  it('applies a batch the database refuses row by row, and names the bad row', async () => {
    await sql.query('TRUNCATE author_ref; DELETE FROM cqrs_tombstone')
    // 99999999999 fits the fast path's integer form but not the INTEGER column.
    const r = await s.sh('cqrs bulk-load -i - --batch 3', [id(), row(1, 0), row(2, 0, { rating: 99999999999 }), row(3, 0), row(4, 0)].join('\n'))
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/refused the COPY batch of lines 2-4 \(.*out of range.*\); such batches are applied row by row/)
    expect(r.stderr).toMatch(/line 3: not applied: .*out of range/)
    expect(r.stderr).toMatch(/3 applied, 0 skipped \(replica as new or newer\), 1 failed; 1 batches applied row by row/)
    expect((await sql.query('SELECT id FROM author_ref ORDER BY id')).rows.map((x) => x.id)).toEqual([1, 3, 4])
  })

  it('does not bring back a row a consumer deletes while the load runs', async () => {
    await sql.query('TRUNCATE author_ref; DELETE FROM cqrs_tombstone')
    await sql.query(`INSERT INTO author_ref (id, name, external_id, cqrs_revision, cqrs_updated) VALUES (7, 'n7', 'e', 2, now())`)
    // A consumer's DELETE batch, not committed yet: the row is gone and its tombstone written.
    const consumer = new pg.Client({ connectionString: s.replica.url })
    await consumer.connect()
    try {
      await consumer.query('BEGIN')
      await consumer.query('DELETE FROM author_ref WHERE id = 7 AND cqrs_revision <= 3')
      await consumer.query(`INSERT INTO cqrs_tombstone (cqrs_id, pk, revision, updated, deleted_at) VALUES ($1, '7', 3, now(), now())`, [id()])
      const loading = s.sh('cqrs bulk-load -i -', [id(), row(7, 2), row(8, 0)].join('\n'))
      await until(async () => (await sql.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)).rowCount! > 0, 'the load to wait for the consumer')
      await consumer.query('COMMIT')
      const r = await loading
      expect(r.stderr).toMatch(/1 applied, 1 skipped/)
      expect((await sql.query('SELECT id FROM author_ref ORDER BY id')).rows.map((x) => x.id)).toEqual([8])
    } finally {
      await consumer.end()
    }
  })

  /** Lines 50 at a time through the bulk path's own steps, direct COPY allowed or not; the state after. */
  async function loadPrepared(lines: string[], state: DirectLoadState) {
    const runner = sqlRunner(db, 'postgresql')
    const enc = new PgRowEncoder(target)
    const tally = { applied: 0, skipped: 0 }
    for (let i = 0; i < lines.length; i += 50) {
      const p = prepareLoad(enc, lines.slice(i, i + 50).map((text, j) => ({ line: i + j + 2, text })))
      expect(p.errors).toEqual([])
      const r = (await applyPreparedLoad(runner, target, (shape) => enc.columns(shape), p, state))!
      tally.applied += r.applied
      tally.skipped += r.skipped
    }
    return tally
  }

  it('leaves the rows the gated path leaves with its direct COPY (generated edge values, seeded)', async () => {
    const seed = Number(process.env.CQRS_SEED ?? Date.now() % 1_000_000)
    const note = `seed ${seed} (repeat with CQRS_SEED=${seed})`
    const lines = edgeLines(seed, 400)
    await sql.query('TRUNCATE author_ref; DELETE FROM cqrs_tombstone')
    const direct: DirectLoadState = { tryDirect: true }
    const viaDirect = await loadPrepared(lines, direct)
    // Every batch went direct, unless a pk written twice straddles two batches (the second met a stored row).
    const straddles = lines.some((l, i) => i > 0 && i % 50 === 0 && JSON.parse(l).id === JSON.parse(lines[i - 1]).id)
    expect(direct.tryDirect, note).toBe(!straddles)
    const directRows = await table()
    await sql.query('TRUNCATE author_ref')
    expect(await loadPrepared(lines, { tryDirect: false }), note).toEqual(viaDirect)
    expect(await table(), note).toEqual(directRows)
    // And the consumer's path, row by row (as a SYNC each).
    await sql.query('TRUNCATE author_ref')
    await load({ apply: tableApplier(replica.store, target).apply }, lines)
    expect(await table(), note).toEqual(directRows)
    expect(directRows.length, note).toBe(400)
  })

  it('goes staged, with the same result, where a batch meets a tombstone or a stored row', async () => {
    const seed = Number(process.env.CQRS_SEED ?? Date.now() % 1_000_000)
    const note = `seed ${seed} (repeat with CQRS_SEED=${seed})`
    const lines = edgeLines(seed, 200)
    const pkOf = (l: string) => String(JSON.parse(l).id)
    const pks = [...new Set(lines.map(pkOf))]
    // Batch 2 holds tombstoned pks (one newer than the rows, one older); batch 3 holds stored rows (one newer, one older).
    const history = async () => {
      await sql.query('TRUNCATE author_ref; DELETE FROM cqrs_tombstone')
      await sql.query(`INSERT INTO cqrs_tombstone (cqrs_id, pk, revision, updated, deleted_at) VALUES ($1, $2, 9, now(), now()), ($1, $3, -1, now(), now())`, [id(), pks[pks.length > 60 ? 55 : 0], pks[pks.length > 60 ? 60 : 1]])
      await sql.query(`INSERT INTO author_ref (id, name, external_id, cqrs_revision, cqrs_updated) VALUES ($1, 'stored newer', 'e', 9, '2026-01-01 00:00:00+00'), ($2, 'stored older', 'e', -1, '2026-01-01 00:00:00+00')`, [pks[110], pks[120]])
    }
    await history()
    const state: DirectLoadState = { tryDirect: true }
    const mixed = await loadPrepared(lines.slice(0, 100), state)
    expect(state.tryDirect, note).toBe(true) // batch 2 went staged for its tombstones, and left the direct way open
    Object.assign(mixed, await loadPrepared(lines.slice(100), state).then((r) => ({ applied: mixed.applied + r.applied, skipped: mixed.skipped + r.skipped })))
    expect(state.tryDirect, note).toBe(false) // batch 3 met the stored rows
    const rows = await table()
    await history()
    expect(await loadPrepared(lines, { tryDirect: false }), note).toEqual(mixed)
    expect(await table(), note).toEqual(rows)
    const byId = new Map(rows.map((r) => [String(JSON.parse(r).id), JSON.parse(r)]))
    expect(byId.get(pks[110])?.name, note).toBe('stored newer')
    expect(byId.has(pks[55]), note).toBe(false)
    expect(byId.has(pks[60]), note).toBe(true)
  })
})

