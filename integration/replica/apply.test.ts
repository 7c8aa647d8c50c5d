/**
 * Version-gated apply on each database (G2), and the django-cqrs fixtures consumed as they are (G6).
 * Messages go through the same consumer the broker feeds; the broker itself is exercised elsewhere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeMessage, encodeMessage, type CqrsMessage } from '../../src/core/message.js'
import { toApplyOp } from '../../src/replica/decode-op.js'
import { silentLogger } from '../../src/core/logger.js'
import { cqrsReplica, type Replica } from '../../src/prisma/cqrs-replica.js'
import type { Delivery, Transport } from '../../src/transport/types.js'
import { createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases.js'
import { fixture, messageFixtures } from '../support/fixtures.js'
import { cqrsMessage } from '../support/messages.js'

const noTransport = { name: 'none', connect: async () => {}, publish: async () => {}, consume: async () => ({ stop: async () => {} }), close: async () => {} } as Transport

const save = (id: number, revision: number, name: string, signal: CqrsMessage['signal_type'] = 'SAVE'): CqrsMessage =>
  cqrsMessage(signal, 'author', { id, name, external_id: `x-${id}`, cqrs_revision: revision, cqrs_updated: `2026-11-23 03:36:5${revision}.912512+00:00`, balance: 1.5 })
const del = (id: number, revision: number): CqrsMessage => ({ ...save(id, revision, ''), signal_type: 'DELETE', instance_data: { id, cqrs_revision: revision, cqrs_updated: `2026-11-23 03:36:5${revision}.912512+00:00` } })
const delivery = (body: string | CqrsMessage, headers: Record<string, unknown> = {}): Delivery => ({
  body: Buffer.from(typeof body === 'string' ? body : encodeMessage(body)),
  routingKey: 'author',
  headers,
  redelivered: false,
})

describe.each(DIALECTS)('replica apply on %s', (dialect) => {
  let db: TestDatabase
  let prisma: any
  let replica: Replica
  let failNext = 0

  beforeAll(async () => {
    db = await createTestDatabase(dialect, 'rep')
    prisma = await db.client()
    replica = cqrsReplica({
      prisma,
      transport: noTransport,
      queue: 'replica',
      honorExpires: false,
      logger: silentLogger,
      retry: { maxRetries: 2, delaysMs: [100, 200] },
      handlers: {
        author: { model: 'authorRef' },
        book: { model: 'bookRef', fields: { author: 'authorId' } },
        tag: { model: 'tagRef' },
        ledger: { model: 'ledgerRef' },
        setting: {
          model: 'settingRef',
          async update(data, ctx) {
            if (failNext-- > 0) throw new Error('injected handler failure')
            return ctx.tx.settingRef.update({ where: { key: ctx.pk }, data })
          },
        },
      },
    })
  })
  afterAll(async () => db?.drop())

  const row = (id: number) => prisma.authorRef.findUnique({ where: { id } })
  const handle = (...ds: Delivery[]) => replica.consumer.handle(ds)

  it('SAVE creates, a newer SAVE updates, an older or equal one is ignored', async () => {
    expect(await handle(delivery(save(101, 0, 'a0')))).toEqual([{ kind: 'ack' }])
    await handle(delivery(save(101, 2, 'a2')))
    await handle(delivery(save(101, 1, 'a1')), delivery(save(101, 2, 'a2-dup')))
    expect(await row(101)).toMatchObject({ name: 'a2', cqrsRevision: 2 })
    expect((await row(101)).balance.toString()).toBe('1.5')
  })

  it('SYNC applies unless older; a forced SYNC applies even when older', async () => {
    await handle(delivery(save(102, 3, 'b3')))
    await handle(delivery(save(102, 3, 'b3-sync', 'SYNC')))
    expect(await row(102)).toMatchObject({ name: 'b3-sync', cqrsRevision: 3 })
    await handle(delivery(save(102, 1, 'b1-sync', 'SYNC')))
    expect(await row(102)).toMatchObject({ name: 'b3-sync' })
    await handle(delivery(save(102, 1, 'b1-forced', 'SYNC'), { 'x-cqrs-force': 1 }))
    expect(await row(102)).toMatchObject({ name: 'b1-forced', cqrsRevision: 1 })
  })

  it('DELETE removes the row and a late SAVE or SYNC cannot bring it back', async () => {
    await handle(delivery(save(103, 0, 'c0')), delivery(save(103, 1, 'c1')))
    await handle(delivery(del(103, 1)))
    expect(await row(103)).toBeNull()
    await handle(delivery(save(103, 1, 'late')), delivery(save(103, 0, 'later', 'SYNC')))
    expect(await row(103)).toBeNull()
    // A DELETE that arrives before the SAVEs it follows.
    await handle(delivery(del(104, 2)))
    await handle(delivery(save(104, 0, 'd0')), delivery(save(104, 2, 'd2')))
    expect(await row(104)).toBeNull()
  })

  it('a stale DELETE does not remove a newer row', async () => {
    await handle(delivery(save(105, 4, 'e4')))
    await handle(delivery(del(105, 2)))
    expect(await row(105)).toMatchObject({ name: 'e4' })
  })

  it('within one batch the newest op per pk wins, whatever the order', async () => {
    const out = await handle(delivery(save(106, 2, 'f2')), delivery(save(106, 0, 'f0')), delivery(del(107, 1)), delivery(save(107, 1, 'g1')), delivery(save(106, 1, 'f1')))
    expect(out.every((o) => o.kind === 'ack')).toBe(true)
    expect(await row(106)).toMatchObject({ name: 'f2', cqrsRevision: 2 })
    expect(await row(107)).toBeNull()
  })

  it('a poison message is dead-lettered with its reason while the rest of the batch applies', async () => {
    const bad = { ...save(108, 0, 'bad'), instance_data: { ...save(108, 0, 'x').instance_data, name: null } }
    const out = await handle(delivery(save(109, 0, 'good')), delivery(bad), delivery('{not json'), delivery({ ...save(110, 0, 'x'), cqrs_id: 'unknown' }))
    expect(out[0]).toEqual({ kind: 'ack' })
    expect(out[1]).toMatchObject({ kind: 'deadLetter', cqrsId: 'author', headers: { 'x-cqrs-reason': expect.stringContaining("'name' is null") } })
    expect(out[2]).toMatchObject({ kind: 'deadLetter', cqrsId: '_invalid', body: '{not json', headers: { 'x-cqrs-reason': expect.stringContaining('not valid JSON') } })
    expect(out[3]).toMatchObject({ kind: 'deadLetter', headers: { 'x-cqrs-reason': expect.stringContaining("no handler for cqrs_id 'unknown'") } })
    expect(await row(109)).toMatchObject({ name: 'good' })
  })

  it('a failing handler is retried through the broker with backoff, then dead-lettered with first and last error', async () => {
    const s = (rev: number, retries = 0): CqrsMessage => ({ ...save(100, rev, ''), cqrs_id: 'setting', instance_pk: 'k', instance_data: { key: 'k', value: `v${rev}`, cqrs_revision: rev, cqrs_updated: '2026-11-23 03:36:52+00:00' }, retries })
    await handle(delivery(s(0)))
    failNext = 10
    const [r1] = await handle(delivery(s(1)))
    expect(r1).toMatchObject({ kind: 'retry', delayMs: 100, headers: { 'x-cqrs-attempts': 1, 'x-cqrs-first-error': 'injected handler failure' } })
    expect(JSON.parse((r1 as any).body).retries).toBe(1)
    const [r3] = await handle(delivery(s(1, 2), { 'x-cqrs-first-error': 'first one' }))
    expect(r3).toMatchObject({ kind: 'deadLetter', headers: { 'x-cqrs-attempts': 3, 'x-cqrs-first-error': 'first one', 'x-cqrs-reason': 'gave up after 3 attempts: injected handler failure' } })
    failNext = 0
    expect(await handle(delivery(s(1, 1)))).toEqual([{ kind: 'ack' }])
    expect(await prisma.settingRef.findUnique({ where: { key: 'k' } })).toMatchObject({ value: 'v1', cqrsRevision: 1 })
  })

  it('expired messages are dead-lettered when expires is honoured', async () => {
    const strict = cqrsReplica({ prisma, transport: noTransport, queue: 'replica', logger: silentLogger, handlers: { author: { model: 'authorRef' } } })
    const [o] = await strict.consumer.handle([delivery({ ...save(111, 0, 'old'), expires: '2020-01-01T00:00:00+00:00' })])
    expect(o).toMatchObject({ kind: 'deadLetter', headers: { 'x-cqrs-reason': expect.stringContaining('expired') } })
  })

  it('consumes every django-cqrs fixture as it is', async () => {
    const names = messageFixtures()
    expect(names.length).toBeGreaterThanOrEqual(8)
    // Books need their author row to make sense to a reader; the replica has no FK, order is free.
    for (const name of names) {
      const f = fixture(name)
      const [o] = await handle({ body: Buffer.from(f.body), routingKey: f.routing_key, headers: {}, redelivered: false })
      expect(o, name).toEqual({ kind: 'ack' })
    }
    const a2 = await prisma.authorRef.findUnique({ where: { id: 2 } })
    expect(a2).toMatchObject({ name: 'Author 1', rating: 2, isActive: false, nickname: 'updated', externalId: 'fd9805ae-788f-486e-8267-24bb298e8301', cqrsRevision: 1, profile: { updated: true, rating: 2 } })
    expect(a2.lastSeen.toISOString()).toBe('2026-11-23T03:37:09.839Z')
    expect(a2.birthDate.toISOString().slice(0, 10)).toBe('1951-02-02')
    expect(a2.balance.toString()).toBe('1.02')
    const b1 = await prisma.bookRef.findUnique({ where: { id: 1 } })
    expect(b1).toMatchObject({ title: 'Book 1-0 (2nd ed.)', authorId: 1, cqrsRevision: 1 })
    expect(b1.price.toString()).toBe('11.49')
    // delete.json removes book 6 (never created here) and leaves its tombstone.
    const tomb = await db.query<any>(`SELECT revision FROM cqrs_tombstone WHERE cqrs_id = 'book' AND pk = '6'`)
    expect(tomb.map((t) => Number(t.revision))).toEqual([1])
    const a7 = await prisma.authorRef.findUnique({ where: { id: 7 } })
    expect(a7).toMatchObject({ name: 'FAIL: injected replica failure 0', cqrsRevision: 0 })
  })

  it('uuid, string and bigint keys apply', async () => {
    const id = '593e94de-aae7-4eed-8e91-a9a32f1abd3b'
    const big = 2n ** 60n + 1n
    await handle(
      delivery({ ...save(100, 0, ''), cqrs_id: 'tag', instance_pk: id, instance_data: { id, name: 'tg', cqrs_revision: 0, cqrs_updated: '2026-11-23T03:36:52Z' } }),
      delivery(`{"signal_type":"SAVE","cqrs_id":"ledger","instance_data":{"id":${big},"amount":-${big},"note":null,"cqrs_revision":0,"cqrs_updated":"2026-11-23T03:36:52.000Z"},"previous_data":null,"instance_pk":${big},"correlation_id":null,"retries":0,"expires":null,"meta":{}}`),
    )
    expect(await prisma.tagRef.findUnique({ where: { id } })).toMatchObject({ name: 'tg' })
    expect(await prisma.ledgerRef.findUnique({ where: { id: big } })).toMatchObject({ amount: -big })
  })

  // PostgreSQL's statement names the ops it skipped. MySQL and SQLite learn only whether a statement
  // changed any row, so there an older op beside applied ones counts as applied (a metrics count, not data).
  it.runIf(dialect === 'postgresql')("names each op's result, applied or skipped (older, tombstoned), for int, uuid and bigint keys", async () => {
    // An upper-case uuid: the tombstone and the result are keyed by the pk as sent, not as the column prints it.
    const keys = {
      author: [301, 302, 303, 304],
      tag: ['A93E94DE-AAE7-4EED-8E91-A9A32F1ABD31', 'A93E94DE-AAE7-4EED-8E91-A9A32F1ABD32', 'A93E94DE-AAE7-4EED-8E91-A9A32F1ABD33', 'A93E94DE-AAE7-4EED-8E91-A9A32F1ABD34'],
      ledger: [2n ** 62n + 1n, 2n ** 62n + 2n, 2n ** 62n + 3n, 2n ** 62n + 4n],
    }
    const data = (cqrsId: string, id: unknown): Record<string, unknown> =>
      cqrsId === 'author' ? { name: `n${id}`, external_id: `x-${id}`, balance: 1.5 } : cqrsId === 'tag' ? { name: `t${id}` } : { amount: 7, note: null }
    for (const [cqrsId, [a, b, c, d]] of Object.entries(keys)) {
      const { target } = replica.routes.get(cqrsId) as { target: any }
      const op = (signal: CqrsMessage['signal_type'], id: number | string | bigint, revision: number) =>
        toApplyOp(target, decodeMessage(encodeMessage(cqrsMessage(signal, cqrsId, { id, ...data(cqrsId, id), cqrs_revision: revision, cqrs_updated: '2026-11-23 03:36:52.912512+00:00' }))))
      const apply = (...ops: ReturnType<typeof op>[]) => replica.store.applyBatch(target, ops)
      expect(await apply(op('SAVE', a, 1), op('SAVE', b, 1), op('SAVE', c, 1))).toEqual(['applied', 'applied', 'applied'])
      expect(await apply(op('DELETE', b, 2))).toEqual(['applied'])
      // a: the same revision again; b: behind its tombstone; c: newer; d: new.
      expect(await apply(op('SAVE', a, 1), op('SAVE', b, 2), op('SAVE', c, 3), op('SAVE', d, 0)), cqrsId).toEqual(['skipped', 'skipped', 'applied', 'applied'])
      // A SYNC at the stored revision applies; one below it does not.
      expect(await apply(op('SYNC', c, 3), op('SYNC', d, 0)), cqrsId).toEqual(['applied', 'applied'])
      expect(await apply(op('SYNC', c, 2)), cqrsId).toEqual(['skipped'])
    }
  })

  it('prunes tombstones past the retention', async () => {
    await handle(delivery(del(112, 0)))
    expect(await replica.pruneTombstones(Date.now() + 8 * 24 * 3600 * 1000)).toBeGreaterThan(0)
    expect(await db.query(`SELECT pk FROM cqrs_tombstone WHERE pk = '112'`)).toEqual([])
  })
})
