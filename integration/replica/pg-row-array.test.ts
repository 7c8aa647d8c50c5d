/**
 * PostgreSQL's batches go as arrays of the replica table's own row type, read by position
 * (replica-sql.ts, pgRowArray): any text arrives as it was sent, whatever characters the record, array
 * and string literals treat specially, under either standard_conforming_strings; a text no literal can
 * carry still gets PostgreSQL's own refusal, dead-lettered with it. A migration that changes the
 * table's columns between batches (even one that keeps their number, which would shift every value
 * after a dropped column) changes nothing a batch stores, and a statement built for an older column
 * order is refused, never applied. A table with a NOT NULL domain column takes the JSON path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeMessage, type CqrsMessage } from '../../src/core/message.js'
import { silentLogger } from '../../src/core/logger.js'
import { cqrsReplica, type Replica } from '../../src/prisma/cqrs-replica.js'
import { PG_LAYOUT_SQL, pgApplyStatement, pgInline, pgLayout, ROW_ARRAY_MIN } from '../../src/prisma/replica-sql.js'
import { decodeMessage } from '../../src/core/message.js'
import { toApplyOp } from '../../src/replica/decode-op.js'
import type { Delivery, Transport } from '../../src/transport/types.js'
import { createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases.js'
import { prng } from '../exact/replica-support.js'

const SEED = Number(process.env.CQRS_SEED ?? Math.floor(Math.random() * 2 ** 31))
const noTransport = { name: 'none', connect: async () => {}, publish: async () => {}, consume: async () => ({ stop: async () => {} }), close: async () => {} } as Transport
const UPDATED = '2026-12-05 01:02:03.456789+00:00'

const message = (cqrsId: string, pk: unknown, data: Record<string, unknown>, revision = 0): CqrsMessage => ({
  signal_type: 'SAVE',
  cqrs_id: cqrsId,
  instance_data: { ...data, cqrs_revision: revision, cqrs_updated: UPDATED },
  previous_data: null,
  instance_pk: pk as string,
  correlation_id: null,
  retries: 0,
  expires: null,
  meta: {},
})
const delivery = (m: CqrsMessage): Delivery => ({ body: Buffer.from(encodeMessage(m)), routingKey: m.cqrs_id, headers: {}, redelivered: false })

/** Pieces the literals treat specially (quotes, backslashes, separators, braces, dollar tags), and others. */
const PIECES = ['"', '\\', ',', '(', ')', '{', '}', ' ', '\t', '\n', '\r\n', "'", "''", '$', '$$', '$cqrs$', '$cqrs', 'cqrs$', '$cqrs1$', 'NULL', 'null', '""', '\\"', 'E\'', 'é', '日本', '🎉', 'x', '0', '-1.5']
function texts(seed: number, n: number): string[] {
  const rnd = prng(seed)
  const int = (k: number) => Math.floor(rnd() * k)
  const out = new Set<string>(['', ' ', '$cqrs', 'ends in $cqrs', '"quoted"', '\\', 'NULL'])
  while (out.size < n) out.add(Array.from({ length: int(12) }, () => PIECES[int(PIECES.length)]).join(''))
  return [...out]
}

const PG = DIALECTS.includes('postgresql') ? ['on', 'off'] : []

describe.each(PG)('PostgreSQL row-array batches (standard_conforming_strings %s)', (conforming) => {
  let db: TestDatabase
  let prisma: any
  let replica: Replica

  beforeAll(async () => {
    db = await createTestDatabase('postgresql', 'rowarr')
    // Every connection opened from here on (the client's, the store's own) takes the setting.
    await db.exec(`ALTER DATABASE "${new URL(db.url).pathname.slice(1)}" SET standard_conforming_strings = ${conforming}`)
    prisma = await db.client()
    replica = cqrsReplica({
      prisma,
      transport: noTransport,
      queue: 'replica',
      logger: silentLogger,
      retry: { maxRetries: 0 },
      handlers: { author: { model: 'authorRef' }, setting: { model: 'settingRef' }, ledger: { model: 'ledgerRef' } },
    })
    expect(await prisma.$queryRawUnsafe(`SELECT current_setting('standard_conforming_strings') AS s`)).toEqual([{ s: conforming }])
  })
  afterAll(async () => {
    await replica?.store.close()
    await prisma?.$disconnect()
    await db?.drop()
  })

  it('any text arrives as sent: an int key beside it, and as a text key (seeded)', async () => {
    const all = texts(SEED, 240)
    try {
      // Batches big enough to go as row arrays (and a smaller last one, as JSON).
      for (let i = 0; i < all.length; i += ROW_ARRAY_MIN + 10) {
        const part = all.slice(i, i + ROW_ARRAY_MIN + 10)
        const out = await replica.consumer.handle([
          ...part.map((s, k) => delivery(message('author', i + k + 1, { id: i + k + 1, name: s, nickname: `${s}|`, external_id: s, balance: 1.5 }))),
          ...part.map((s) => delivery(message('setting', s, { key: s, value: s }))),
        ])
        expect(out.every((o) => o.kind === 'ack'), JSON.stringify(out.filter((o) => o.kind !== 'ack'))).toBe(true)
      }
      const authors = await db.query<{ id: number; name: string; nickname: string; external_id: string }>('SELECT id, name, nickname, external_id FROM author_ref ORDER BY id')
      expect(authors.map((r) => [r.name, r.nickname, r.external_id])).toEqual(all.map((s) => [s, `${s}|`, s]))
      const settings = await db.query<{ key: string; value: string }>('SELECT key, value FROM setting_ref')
      expect(new Map(settings.map((r) => [r.key, r.value]))).toEqual(new Map(all.map((s) => [s, s])))
      // The same texts as one row-array statement of their own, run on a connection of the replica's
      // client (so with its standard_conforming_strings): the consumer would take a batch that fails
      // as a row array apart into smaller ones, which go as JSON, and hide the failure.
      const { target } = replica.routes.get('setting') as { target: any }
      const layout = pgLayout(await prisma.$queryRawUnsafe(PG_LAYOUT_SQL.replace('$1', `'"setting_ref"'`)))!
      const ops = all.map((t) => toApplyOp(target, decodeMessage(encodeMessage(message('setting', t, { key: t, value: `again ${t}` }, 5)))))
      const st = pgApplyStatement(target, ops, 'always', layout)
      expect(st.sql).toContain('::"setting_ref"[]')
      await prisma.$queryRawUnsafe(pgInline(st))
      const again = await db.query<{ key: string; value: string }>('SELECT key, value FROM setting_ref WHERE cqrs_revision = 5')
      expect(new Map(again.map((r) => [r.key, r.value]))).toEqual(new Map(all.map((t) => [t, `again ${t}`])))
    } catch (e) {
      throw new Error(`${(e as Error).message}\n(repeat with CQRS_SEED=${SEED})`, { cause: e })
    }
  })

  it("names each op's result in a row-array batch, applied or skipped (older, tombstoned), for int and text keys", async () => {
    const cases = [
      { cqrsId: 'author', id: (i: number) => 50_000 + i, data: (id: unknown) => ({ name: `n${id}`, external_id: `x${id}`, balance: 2.5 }) },
      // A text key: it goes beside the row array, as the tombstones and the results key it.
      { cqrsId: 'setting', id: (i: number) => `K-${String(i).padStart(4, '0')}`, data: (id: unknown) => ({ value: `v${id}` }) },
    ]
    for (const { cqrsId, id, data } of cases) {
      const { target } = replica.routes.get(cqrsId) as { target: any }
      const op = (signal: CqrsMessage['signal_type'], i: number, revision: number) => {
        const pk = id(i)
        return toApplyOp(target, decodeMessage(encodeMessage({ ...message(cqrsId, pk, { ...(cqrsId === 'setting' ? { key: pk } : { id: pk }), ...data(pk) }, revision), signal_type: signal })))
      }
      const n = ROW_ARRAY_MIN + 20
      const all = Array.from({ length: n }, (_, i) => i)
      expect(await replica.store.applyBatch(target, all.map((i) => op('SAVE', i, 2)))).toEqual(all.map(() => 'applied'))
      // Tombstones for the first ten.
      expect(await replica.store.applyBatch(target, all.slice(0, 10).map((i) => op('DELETE', i, 3)))).toEqual(all.slice(0, 10).map(() => 'applied'))
      // Then: 0-9 behind their tombstones, 10-19 older than stored, 20-29 the same revision, the rest newer.
      const revisionOf = (i: number) => (i < 10 ? 3 : i < 20 ? 1 : i < 30 ? 2 : 4)
      const results = await replica.store.applyBatch(target, all.map((i) => op('SAVE', i, revisionOf(i))))
      expect(results, cqrsId).toEqual(all.map((i) => (i < 30 ? 'skipped' : 'applied')))
    }
  })

  it('a text no literal can carry (NUL, a lone surrogate) is refused by PostgreSQL and dead-lettered; the rest of its batch applies', async () => {
    const out = await replica.consumer.handle([
      delivery(message('author', 9001, { id: 9001, name: 'ok before', external_id: 'a', balance: 1 })),
      delivery(message('author', 9002, { id: 9002, name: 'nul \u0000 inside', external_id: 'b', balance: 1 })),
      delivery(message('author', 9003, { id: 9003, name: 'lone \ud800 surrogate', external_id: 'c', balance: 1 })),
      delivery(message('author', 9004, { id: 9004, name: 'ok after', external_id: 'd', balance: 1 })),
    ])
    expect(out.map((o) => o.kind)).toEqual(['ack', 'deadLetter', 'deadLetter', 'ack'])
    expect(out[1]).toMatchObject({ headers: { 'x-cqrs-reason': expect.stringContaining('unsupported Unicode escape sequence (22P05)') } })
    expect(out[2]).toMatchObject({ headers: { 'x-cqrs-reason': expect.stringContaining('(22P02)') } })
    expect(await db.query('SELECT id, name FROM author_ref WHERE id BETWEEN 9001 AND 9004 ORDER BY id')).toEqual([
      { id: 9001, name: 'ok before' },
      { id: 9004, name: 'ok after' },
    ])
  })

  it('a migration between batches, adding, dropping and re-adding columns, changes nothing a batch stores', async () => {
    const ledger = (id: number, note: string | null) => delivery(message('ledger', id, { id, amount: -id, note }))
    // Batches big enough to go as row arrays.
    const ids = (k: number) => Array.from({ length: ROW_ARRAY_MIN }, (_, i) => k * 1000 + i)
    // Each batch must apply whole: the consumer would take a failed one apart into smaller batches,
    // which go as JSON (below ROW_ARRAY_MIN) and would hide the failure.
    const calls: Array<{ size: number; ok: boolean }> = []
    const apply = replica.store.applyBatch.bind(replica.store)
    replica.store.applyBatch = (target, ops) => apply(target, ops).then((r) => (calls.push({ size: ops.length, ok: true }), r), (e) => (calls.push({ size: ops.length, ok: false }), Promise.reject(e)))
    const batch = async (ids: number[], note: (id: number) => string | null) => {
      calls.length = 0
      const out = await replica.consumer.handle(ids.map((id) => ledger(id, note(id))))
      expect(out.map((o) => o.kind)).toEqual(ids.map(() => 'ack'))
      expect(calls).toEqual([{ size: ids.length, ok: true }])
    }
    const stored = (ids: number[]) => db.query<{ id: string; amount: string; note: string | null }>(`SELECT id::text, amount::text, note FROM ledger_ref WHERE id IN (${ids.join(',')}) ORDER BY id`)
    const expected = (ids: number[], note: (id: number) => string | null) => ids.map((id) => ({ id: String(id), amount: String(-id), note: note(id) }))
    const note = (id: number) => `note ${id}`

    try {
      await batch(ids(1), note) // the columns are read here
      // One more column: a record of the old order is too short.
      await db.exec('ALTER TABLE ledger_ref ADD COLUMN memo text')
      await batch(ids(2), note)
      expect(await stored([...ids(1), ...ids(2)])).toEqual(expected([...ids(1), ...ids(2)], note))
      // The same number of columns in another order: read by the old order, `note` would take memo's
      // empty field and memo `note`'s text, both without an error.
      await db.exec('ALTER TABLE ledger_ref DROP COLUMN note')
      await db.exec('ALTER TABLE ledger_ref ADD COLUMN note text')
      await batch(ids(3), note)
      expect(await stored(ids(3))).toEqual(expected(ids(3), note))
      expect(await db.query('SELECT count(*)::int AS n FROM ledger_ref WHERE memo IS NOT NULL')).toEqual([{ n: 0 }])
      // A column's type changed: the same names, read by the new type.
      await db.exec('ALTER TABLE ledger_ref ALTER COLUMN note TYPE varchar(40)')
      await batch(ids(4), note)
      expect(await stored(ids(4))).toEqual(expected(ids(4), note))
      // And the same again with no column of ours moved: a replica-only column swapped for another.
      const someNull = (id: number) => (id % 2 ? null : note(id))
      await db.exec('ALTER TABLE ledger_ref DROP COLUMN memo, ADD COLUMN memo2 text')
      await batch(ids(5), someNull)
      expect(await stored(ids(5))).toEqual(expected(ids(5), someNull))
    } finally {
      replica.store.applyBatch = apply
    }
  })

  it('a table with a NOT NULL domain column the master does not feed takes saves, deletes and the writes of row hooks (as JSON of the columns written: a record would hand the domain a NULL)', async () => {
    const setting = (key: string, revision: number) => delivery(message('setting', key, { key, value: `${key}@${revision}` }, revision))
    expect((await replica.consumer.handle([setting('d1', 1), setting('d2', 1)])).map((o) => o.kind)).toEqual(['ack', 'ack'])
    await db.exec(`CREATE DOMAIN origin_text AS text NOT NULL`)
    await db.exec(`ALTER TABLE setting_ref ADD COLUMN origin origin_text DEFAULT 'replica'`)
    expect((await replica.consumer.handle([setting('d1', 2), setting('d3', 1)])).map((o) => o.kind)).toEqual(['ack', 'ack'])
    expect((await replica.consumer.handle([setting('d2', 2), setting('d4', 1)])).map((o) => o.kind)).toEqual(['ack', 'ack'])
    // A DELETE, and a handler with a row hook, whose default write of a new row is a statement of its own.
    expect((await replica.consumer.handle([delivery({ ...message('setting', 'd3', { key: 'd3' }, 2), signal_type: 'DELETE' })])).map((o) => o.kind)).toEqual(['ack'])
    const hooked = cqrsReplica({ prisma, transport: noTransport, queue: 'hooked', logger: silentLogger, retry: { maxRetries: 0 }, handlers: { setting: { model: 'settingRef', update: (data, ctx) => ctx.tx.settingRef.update({ where: { key: ctx.pk }, data }) } } })
    expect((await hooked.consumer.handle([setting('d5', 1), setting('d1', 3)])).map((o) => o.kind)).toEqual(['ack', 'ack'])
    await hooked.store.close()
    expect(await db.query(`SELECT key, value, origin::text AS origin FROM setting_ref WHERE key LIKE 'd_' ORDER BY key`)).toEqual(
      ['d1@3', 'd2@2', 'd4@1', 'd5@1'].map((v) => ({ key: v.slice(0, 2), value: v, origin: 'replica' })),
    )
  })

  it('a statement built for an older column order fails, naming the columns, and writes nothing', async () => {
    const { target } = replica.routes.get('ledger') as { target: any }
    const live = pgLayout(await db.query(PG_LAYOUT_SQL.replace('$1', `'"ledger_ref"'`)))!
    // The same columns, amount and cqrs_revision swapped (both integers): every field still reads as
    // its column's type, so only the check can tell.
    const [a, r] = [live.names.indexOf('amount'), live.names.indexOf('cqrs_revision')]
    const swap = <T,>(xs: T[]) => xs.map((x, i) => (i === a ? xs[r] : i === r ? xs[a] : x))
    const stale = { ...live, names: swap(live.names), types: swap(live.types) }
    const op = toApplyOp(target, decodeMessage(encodeMessage(message('ledger', 77, { id: 77, amount: 5, note: 'n' }))))
    const st = pgApplyStatement(target, [op], 'newer', stale, 1)
    expect(st.sql).toContain('::"ledger_ref"[]') // the row-array path, not the JSON one
    await expect(db.query(pgInline(st))).rejects.toThrow(/cqrs-sync: the columns of "ledger_ref" changed; now id bigint, amount bigint, /)
    expect(await db.query('SELECT id FROM ledger_ref WHERE id = 77')).toEqual([])
    // The live order applies.
    expect(await db.query(pgInline(pgApplyStatement(target, [op], 'newer', live, 1)))).toEqual([])
    expect(await db.query('SELECT amount::int AS amount, note FROM ledger_ref WHERE id = 77')).toEqual([{ amount: 5, note: 'n' }])
  })
})
