/**
 * Every write path on a master model emits exactly the events of PROTOCOL.md, on each database.
 * The relay publishes to a recording transport; `$cqrs.flush()` drains the outbox deterministically.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { cqrsMaster, installCaptureTriggers } from '../../src/prisma/cqrs-master.js'
import { CollectorTransport } from '../support/collector.js'
import { createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases.js'

const MODES = ['extension', 'trigger'] as const
const CASES = DIALECTS.flatMap((d) => MODES.map((m) => [d, m] as const))

describe.each(CASES)('capture on %s by %s', (dialect, capture) => {
  let db: TestDatabase
  let transport: CollectorTransport
  let prisma: any
  let base: any

  beforeAll(async () => {
    db = await createTestDatabase(dialect, 'cap')
    base = await db.client()
    transport = new CollectorTransport()
    if (capture === 'trigger') await installCaptureTriggers(base, { models })
    prisma = base.$extends(cqrsMaster({ transport, capture, relay: { enabled: false }, models }))
  })
  const models = {
    author: { cqrsId: 'author' },
    book: { cqrsId: 'book', trackedFields: ['title', 'price'], filter: (row: Record<string, unknown>) => row.isPublic === true },
    tag: { cqrsId: 'tag' },
    setting: { cqrsId: 'setting', meta: { source: 'test' } },
    ledger: { cqrsId: 'ledger' },
  }
  afterAll(async () => {
    await prisma?.$cqrs.close()
    await db?.drop()
  })
  beforeEach(() => transport.clear())

  const flush = async () => {
    await prisma.$cqrs.flush()
    const bodies = transport.bodies()
    transport.clear()
    return bodies
  }
  const outboxCount = async () => Number((await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM cqrs_outbox'))[0].n)

  it('create emits SAVE at revision 0 with every scalar field, shaped like the django-cqrs fixture', async () => {
    const a = await prisma.author.create({ data: { name: 'Ann', externalId: 'e-1', balance: '12.50', birthDate: new Date('1951-02-02T00:00:00Z'), profile: { tags: ['x'] } } })
    expect(a.cqrsRevision).toBe(0)
    const [m] = await flush()
    expect(Object.keys(m)).toEqual(['signal_type', 'cqrs_id', 'instance_data', 'previous_data', 'instance_pk', 'correlation_id', 'retries', 'expires', 'meta'])
    expect(m).toMatchObject({ signal_type: 'SAVE', cqrs_id: 'author', instance_pk: a.id, previous_data: null, retries: 0, expires: null, meta: {}, correlation_id: null })
    expect(m.instance_data).toMatchObject({ cqrs_revision: 0, id: a.id, name: 'Ann', balance: 12.5, birthDate: dialect === 'sqlite' ? '1951-02-02 00:00:00+00:00' : '1951-02-02', profile: { tags: ['x'] }, isActive: true })
    expect(m.instance_data.cqrs_updated).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?\+00:00$/)
  })

  it('update raises the revision by one in the same statement, each time', async () => {
    const a = await prisma.author.create({ data: { name: 'Bo', externalId: 'e-2' } })
    const u1 = await prisma.author.update({ where: { id: a.id }, data: { name: 'Bo 2' } })
    const u2 = await prisma.author.update({ where: { id: a.id }, data: { rating: { increment: 5 } } })
    expect([u1.cqrsRevision, u2.cqrsRevision]).toEqual([1, 2])
    const ms = await flush()
    expect(ms.map((m) => [m.signal_type, m.instance_data.cqrs_revision, m.instance_data.name])).toEqual([
      ['SAVE', 0, 'Bo'],
      ['SAVE', 1, 'Bo 2'],
      ['SAVE', 2, 'Bo 2'],
    ])
  })

  it('an upsert with nothing to update and a write that sets the revision itself still raise it by one', async () => {
    const a = await prisma.author.create({ data: { name: 'Di', externalId: 'e-4' } })
    const u1 = await prisma.author.upsert({ where: { id: a.id }, create: { name: 'never', externalId: 'never' }, update: {} })
    const u2 = await prisma.author.update({ where: { id: a.id }, data: { name: 'Di 2', cqrsRevision: 40 } })
    expect([u1.cqrsRevision, u2.cqrsRevision]).toEqual([1, 2])
    const ms = await flush()
    expect(ms.map((m) => [m.signal_type, m.instance_data.cqrs_revision, m.instance_data.name])).toEqual([
      ['SAVE', 0, 'Di'],
      ['SAVE', 1, 'Di'],
      ['SAVE', 2, 'Di 2'],
    ])
  })

  it('update with select returns only what was asked and still sends the whole row', async () => {
    const a = await prisma.author.create({ data: { name: 'Cy', externalId: 'e-3' } })
    const r = await prisma.author.update({ where: { id: a.id }, data: { nickname: 'c' }, select: { nickname: true } })
    expect(r).toEqual({ nickname: 'c' })
    const ms = await flush()
    expect(ms[1].instance_data).toMatchObject({ id: a.id, name: 'Cy', nickname: 'c', cqrs_revision: 1 })
  })

  it('createMany, updateMany and deleteMany emit one event per row', async () => {
    const r = await prisma.author.createMany({ data: [0, 1, 2].map((i) => ({ name: `M${i}`, externalId: `m-${i}` })) })
    expect(r.count).toBe(3)
    const created = await flush()
    expect(created.map((m) => [m.signal_type, m.instance_data.name, m.instance_data.cqrs_revision])).toEqual([
      ['SAVE', 'M0', 0],
      ['SAVE', 'M1', 0],
      ['SAVE', 'M2', 0],
    ])
    const u = await prisma.author.updateMany({ where: { name: { startsWith: 'M' } }, data: { rating: 7 } })
    expect(u.count).toBe(3)
    const updated = await flush()
    expect(updated.map((m) => [m.signal_type, m.instance_data.rating, m.instance_data.cqrs_revision])).toEqual([
      ['SAVE', 7, 1],
      ['SAVE', 7, 1],
      ['SAVE', 7, 1],
    ])
    const d = await prisma.author.deleteMany({ where: { name: { startsWith: 'M' } } })
    expect(d.count).toBe(3)
    const deleted = await flush()
    expect(deleted.map((m) => m.signal_type)).toEqual(['DELETE', 'DELETE', 'DELETE'])
    expect(deleted[0].instance_data).toEqual({ id: created[0].instance_pk, cqrs_revision: 1, cqrs_updated: expect.any(String) })
    expect(await prisma.author.count({ where: { name: { startsWith: 'M' } } })).toBe(0)
  })

  it.skipIf(dialect === 'mysql')('createManyAndReturn and updateManyAndReturn emit events and return rows', async () => {
    const rows = await prisma.tag.createManyAndReturn({ data: [{ name: 't1' }, { name: 't2' }], select: { id: true } })
    expect(rows.every((r: any) => Object.keys(r).length === 1)).toBe(true)
    const up = await prisma.tag.updateManyAndReturn({ where: { id: { in: rows.map((r: any) => r.id) } }, data: { name: 'tx' } })
    expect(up.map((r: any) => r.cqrsRevision)).toEqual([1, 1])
    const ms = await flush()
    expect(ms.map((m) => [m.signal_type, m.instance_data.name, m.instance_data.cqrs_revision])).toEqual([
      ['SAVE', 't1', 0],
      ['SAVE', 't2', 0],
      ['SAVE', 'tx', 1],
      ['SAVE', 'tx', 1],
    ])
    expect(typeof ms[0].instance_pk).toBe('string')
  })

  it('upsert creates at revision 0, then updates with a raised revision', async () => {
    await prisma.setting.upsert({ where: { key: 'k1' }, create: { key: 'k1', value: 'a' }, update: { value: 'b' } })
    await prisma.setting.upsert({ where: { key: 'k1' }, create: { key: 'k1', value: 'a' }, update: { value: 'b' } })
    const ms = await flush()
    expect(ms.map((m) => [m.signal_type, m.instance_pk, m.instance_data.value, m.instance_data.cqrs_revision, m.meta])).toEqual([
      ['SAVE', 'k1', 'a', 0, { source: 'test' }],
      ['SAVE', 'k1', 'b', 1, { source: 'test' }],
    ])
  })

  it('delete emits DELETE with id, revision and time only', async () => {
    const a = await prisma.author.create({ data: { name: 'Del', externalId: 'd' } })
    await prisma.author.update({ where: { id: a.id }, data: { name: 'Del 2' } })
    await prisma.author.delete({ where: { id: a.id } })
    const ms = await flush()
    expect(ms[2]).toMatchObject({ signal_type: 'DELETE', instance_pk: a.id, instance_data: { id: a.id, cqrs_revision: 1 } })
    expect(Object.keys(ms[2].instance_data).sort()).toEqual(['cqrs_revision', 'cqrs_updated', 'id'])
  })

  it('tracked fields send previous_data; a row leaving the filter sends DELETE', async () => {
    const a = await prisma.author.create({ data: { name: 'Au', externalId: 'x' } })
    const b = await prisma.book.create({ data: { title: 'T1', authorId: a.id, price: '9.99' } })
    await prisma.book.update({ where: { id: b.id }, data: { title: 'T2', price: '11.49' } })
    await prisma.book.update({ where: { id: b.id }, data: { isPublic: false } })
    await prisma.book.create({ data: { title: 'hidden', authorId: a.id, isPublic: false } })
    const ms = (await flush()).filter((m) => m.cqrs_id === 'book')
    expect(ms.map((m) => [m.signal_type, m.previous_data])).toEqual([
      ['SAVE', { title: null, price: null }],
      ['SAVE', { title: 'T1', price: 9.99 }],
      ['DELETE', null],
    ])
    expect(ms[1].instance_data).toMatchObject({ title: 'T2', price: 11.49, cqrs_revision: 1 })
  })

  it('bigint keys and values keep every digit on the wire', async () => {
    const big = 2n ** 60n + 7n
    const l = await prisma.ledger.create({ data: { id: big, amount: -big } })
    expect(l.id).toBe(big)
    await prisma.$cqrs.flush()
    const body = transport.published[0].body
    expect(body).toContain(`"instance_pk":${big}`)
    expect(body).toContain(`"amount":-${big}`)
  })

  it('a rolled-back interactive transaction emits nothing', async () => {
    await expect(
      prisma.$transaction(async (tx: any) => {
        await tx.author.create({ data: { name: 'rollback', externalId: 'r' } })
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(await outboxCount()).toBe(0)
    expect(await prisma.author.count({ where: { name: 'rollback' } })).toBe(0)
  })

  it('a failed batch transaction emits nothing; a good one emits its events', async () => {
    const a = await prisma.author.create({ data: { name: 'batch', externalId: 'b' } })
    await flush()
    await expect(
      prisma.$transaction([prisma.author.create({ data: { name: 'b2', externalId: 'b' } }), prisma.author.create({ data: { id: a.id, name: 'dup', externalId: 'b' } })]),
    ).rejects.toMatchObject({ code: 'P2002' })
    expect(await outboxCount()).toBe(0)
    const [x, n] = await prisma.$transaction([prisma.author.update({ where: { id: a.id }, data: { name: 'batch 2' } }), prisma.author.count()])
    expect(x.cqrsRevision).toBe(1)
    expect(typeof n).toBe('number')
    const ms = await flush()
    expect(ms.map((m) => [m.signal_type, m.instance_data.name])).toEqual([['SAVE', 'batch 2']])
  })

  it('writes inside an interactive transaction publish after commit, in order', async () => {
    await prisma.$transaction(async (tx: any) => {
      const a = await tx.author.create({ data: { name: 'tx1', externalId: 't' } })
      await tx.author.update({ where: { id: a.id }, data: { name: 'tx2' } })
      await tx.author.delete({ where: { id: a.id } })
    })
    const ms = await flush()
    expect(ms.map((m) => [m.signal_type, m.instance_data.cqrs_revision])).toEqual([
      ['SAVE', 0],
      ['SAVE', 1],
      ['DELETE', 1],
    ])
  })

  it.runIf(capture === 'extension' || dialect === 'sqlite')('refuses nested writes into a master model loudly', async () => {
    const a = await prisma.author.create({ data: { name: 'nest', externalId: 'n' } })
    await expect(prisma.author.update({ where: { id: a.id }, data: { books: { create: { title: 'x' } } } })).rejects.toThrow(/cannot capture the nested write 'books: \{ create \}'/)
  })

  it.runIf(capture === 'trigger' && dialect !== 'sqlite')('captures nested writes and raw SQL, raising the revision', async () => {
    const a = await prisma.author.create({ data: { name: 'nest', externalId: 'n' } })
    await prisma.author.update({ where: { id: a.id }, data: { books: { create: { title: 'nested' } } } })
    await db.exec(`UPDATE author SET name = 'raw' WHERE id = ${a.id}`)
    const ms = (await flush()).filter((m) => m.cqrs_id === 'author' && m.instance_pk === a.id || m.cqrs_id === 'book')
    expect(ms.map((m) => [m.cqrs_id, m.signal_type, m.instance_data.cqrs_revision, m.instance_data.name ?? m.instance_data.title])).toEqual([
      ['author', 'SAVE', 0, 'nest'],
      ['author', 'SAVE', 1, 'nest'],
      ['book', 'SAVE', 0, 'nested'],
      ['author', 'SAVE', 2, 'raw'],
    ])
  })

  it('writes to models that are not configured pass through untouched', async () => {
    await flush()
    await prisma.plain.create({ data: { name: 'p' } })
    expect(await outboxCount()).toBe(0)
  })
})
