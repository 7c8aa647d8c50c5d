/**
 * On PostgreSQL a batch's tombstone check reads the tombstones of the batch's own pks, by the
 * tombstones' primary key, however many the table holds: a replica that keeps a week of deletes
 * (tombstoneRetentionMs) pays nothing for them on its next batch. A plain NOT EXISTS had PostgreSQL
 * hash every tombstone of the cqrs_id for each batch (a batch of 200 cost 2.3x its CPU beside 20,000
 * tombstones, 22x beside 200,000). With that many around, each op still gets the tombstone rule: its
 * own pk's tombstone at its revision or above blocks it, no other does. Both statement forms (a row
 * array, JSON), both gates (SAVE, SYNC), an int and a text key; pks, revisions and tombstones seeded.
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeMessage, encodeMessage, type CqrsMessage } from '../../src/core/message.js'
import { silentLogger } from '../../src/core/logger.js'
import { cqrsReplica, type Replica } from '../../src/prisma/cqrs-replica.js'
import { PG_LAYOUT_SQL, pgApplyStatement, pgInline, pgLayout, ROW_ARRAY_MIN } from '../../src/prisma/replica-sql.js'
import { toApplyOp } from '../../src/replica/decode-op.js'
import { gateOf } from '../../src/replica/version-gate.js'
import type { Transport } from '../../src/transport/types.js'
import { rng } from '../support/chaos.js'
import { createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases.js'

const SEED = Number(process.env.CQRS_SEED ?? Math.floor(Math.random() * 2 ** 31))
const noTransport = { name: 'none', connect: async () => {}, publish: async () => {}, consume: async () => ({ stop: async () => {} }), close: async () => {} } as Transport
/** Tombstones of other pks of the same cqrs_id, in the table before each batch. */
const OTHERS = 20_000

const KEYS = [
  { cqrsId: 'author', table: 'author_ref', pk: (i: number) => 500_000 + i, far: `(1000000 + g)::text`, data: (pk: unknown) => ({ id: pk, name: `n${pk}`, external_id: `x${pk}`, balance: 1.5 }) },
  { cqrsId: 'setting', table: 'setting_ref', pk: (i: number) => `key ${i}`, far: `'far ' || g`, data: (pk: unknown) => ({ key: pk, value: `v${pk}` }) },
]

// With the table's statistics taken before its tombstones came (autovacuum off, so it stays so: a
// replica whose deletes outran its last ANALYZE), and with statistics that know them.
const STATS = DIALECTS.includes('postgresql') ? ['statistics older than the tombstones', 'statistics that know them'] : []

describe.each(STATS)('PostgreSQL: the tombstone check beside many tombstones, %s', (stats) => {
  let db: TestDatabase
  let prisma: any
  let replica: Replica
  let client: pg.Client

  beforeAll(async () => {
    db = await createTestDatabase('postgresql', 'tombscale')
    prisma = await db.client()
    replica = cqrsReplica({ prisma, transport: noTransport, queue: 'replica', logger: silentLogger, handlers: { author: { model: 'authorRef' }, setting: { model: 'settingRef' } } })
    client = new pg.Client({ connectionString: db.url })
    await client.connect()
    await client.query('ALTER TABLE cqrs_tombstone SET (autovacuum_enabled = false)')
    await client.query('ANALYZE cqrs_tombstone')
    for (const { cqrsId, far } of KEYS) {
      await client.query(`INSERT INTO cqrs_tombstone (cqrs_id, pk, revision, updated) SELECT $1, ${far}, 9, now() FROM generate_series(1, ${OTHERS}) g`, [cqrsId])
    }
    if (stats === STATS[1]) await client.query('ANALYZE cqrs_tombstone')
  })
  afterAll(async () => {
    await client?.end()
    await replica?.store.close()
    await prisma?.$disconnect()
    await db?.drop()
  })

  const cases = KEYS.flatMap((key) => [ROW_ARRAY_MIN + 20, 20].flatMap((size) => (['SAVE', 'SYNC'] as const).map((signal) => ({ key, size, signal }))))
  it.each(cases)('$key.cqrsId, $size ops, $signal: reads only its own pks\' tombstones and applies the rule to each op (seeded)', async ({ key, size, signal }) => {
    const rnd = rng(SEED + size + (signal === 'SYNC' ? 1 : 0) + (key.cqrsId === 'setting' ? 2 : 0))
    const { target } = replica.routes.get(key.cqrsId) as { target: any }
    const layout = pgLayout((await client.query(PG_LAYOUT_SQL, [`"${key.table}"`])).rows)!
    // A fresh range of pks per case; about 40 % of them tombstoned, at revisions below, at and above the op's.
    const base = Math.floor(rnd() * 1e6) * 1000
    const ops = Array.from({ length: size }, (_, i) => {
      const pk = key.pk(base + i)
      const message: CqrsMessage = { signal_type: signal, cqrs_id: key.cqrsId, instance_data: { ...key.data(pk), cqrs_revision: 1 + Math.floor(rnd() * 4), cqrs_updated: '2026-12-05T01:02:03.456789Z' }, previous_data: null, instance_pk: pk as string, correlation_id: null, retries: 0, expires: null, meta: {} }
      return toApplyOp(target, decodeMessage(encodeMessage(message)))
    })
    const tombstones = new Map(ops.filter(() => rnd() < 0.4).map((op) => [op.pkKey, 1 + Math.floor(rnd() * 4)]))
    try {
      for (const [pk, revision] of tombstones) await client.query(`INSERT INTO cqrs_tombstone (cqrs_id, pk, revision, updated) VALUES ($1, $2, $3, now())`, [key.cqrsId, pk, revision])
      const gate = gateOf(ops[0], undefined)!
      const st = pgApplyStatement(target, ops, gate, layout)
      expect(st.sql).toContain(size >= ROW_ARRAY_MIN ? `::"${key.table}"[]` : '::json')

      // The rows read from the tombstone table (by a scan, or fetched through an index) so far: the
      // backend's counts not yet reported, which it reports only between transactions.
      const tombstoneRowsRead = async () => Number((await client.query<{ n: string }>(`SELECT (seq_tup_read + coalesce(idx_tup_fetch, 0))::text AS n FROM pg_stat_xact_user_tables WHERE relname = 'cqrs_tombstone'`)).rows[0].n)
      await client.query('BEGIN')
      const before = await tombstoneRowsRead()
      const skipped = (await client.query<{ cqrs_pk_key: string }>(pgInline(st))).rows.map((r) => r.cqrs_pk_key)
      const read = (await tombstoneRowsRead()) - before
      await client.query('COMMIT')

      expect(read, `tombstone rows read for a batch of ${size}, beside ${OTHERS + tombstones.size} tombstones of ${key.cqrsId}`).toBeLessThanOrEqual(size + 1)
      const blocked = ops.filter((op) => (tombstones.get(op.pkKey) ?? 0) >= op.revision).map((op) => op.pkKey)
      expect(skipped.sort()).toEqual(blocked.sort())
      const pkColumn = target.pk.column
      const stored = (await client.query<{ k: string; r: number }>(`SELECT "${pkColumn}"::text AS k, cqrs_revision AS r FROM "${key.table}" WHERE "${pkColumn}"::text = ANY($1)`, [ops.map((op) => op.pkKey)])).rows
      expect(new Map(stored.map((r) => [r.k, r.r]))).toEqual(new Map(ops.filter((op) => !blocked.includes(op.pkKey)).map((op) => [op.pkKey, op.revision])))
    } catch (e) {
      throw new Error(`${(e as Error).message}\n(repeat with CQRS_SEED=${SEED})`, { cause: e })
    }
  })
})
