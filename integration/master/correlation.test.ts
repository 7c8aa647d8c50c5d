/**
 * The correlation id of a write reaches its event in both capture modes: the extension writes it
 * into the event itself; with trigger capture (the default) the extension hands it to the trigger in
 * the write's transaction (a transaction-local setting on PostgreSQL, a user variable on MySQL that
 * must not outlive the write on a pooled connection). Writes without one stay on the one-round-trip
 * path and carry none. SQLite triggers cannot see it: that combination is refused by name.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { cqrsMaster } from '../../src/prisma/cqrs-master.js'
import { CollectorTransport } from '../support/collector.js'
import { createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases.js'
import { masterClient } from '../support/master.js'

// Prisma's queries are lazy: each runs when awaited, so it is awaited inside the request's scope.
const request = new AsyncLocalStorage<string>()
const MODES = ['trigger', 'extension'] as const
const CASES = DIALECTS.flatMap((d) => MODES.filter((m) => d !== 'sqlite' || m === 'extension').map((m) => [d, m] as const))

describe.each(CASES)('correlation ids on %s, %s capture', (dialect, capture) => {
  let db: TestDatabase
  let prisma: any
  const transport = new CollectorTransport()
  const models = { author: { cqrsId: 'author' } }

  beforeAll(async () => {
    db = await createTestDatabase(dialect, 'corr')
    prisma = await masterClient(await db.client(), { transport, capture, logger: silentLogger, relay: { enabled: false }, models, correlationId: () => request.getStore() })
  })
  afterAll(async () => {
    await prisma?.$cqrs.close()
    await db?.drop()
  })
  beforeEach(() => transport.clear())

  /** correlation_id by the name the write gave its author, in publishing order. */
  const published = async () => {
    await prisma.$cqrs.flush()
    const out = transport.bodies().map((b) => [b.instance_data.name, b.correlation_id])
    transport.clear()
    return out
  }

  it('each write carries the correlation id of its request, and a write outside a request none', async () => {
    const a = await request.run('req-1', async () => await prisma.author.create({ data: { name: 'a1', externalId: 'x' } }))
    await prisma.author.create({ data: { name: 'plain-1', externalId: 'x' } })
    await request.run('req-2', async () => await prisma.author.update({ where: { id: a.id }, data: { name: 'a2' } }))
    // Several writes without one: on MySQL they may reuse the connection that held req-2's variable.
    for (let i = 2; i <= 5; i++) await prisma.author.create({ data: { name: `plain-${i}`, externalId: 'x' } })
    expect(await published()).toEqual([['a1', 'req-1'], ['plain-1', null], ['a2', 'req-2'], ...[2, 3, 4, 5].map((i) => [`plain-${i}`, null])])
  })

  it('writes in a transaction carry its request’s id; a failed write leaves no id behind', async () => {
    const first = await request.run('req-tx', () =>
      prisma.$transaction(async (tx: any) => {
        const x = await tx.author.create({ data: { name: 'tx-1', externalId: 'x' } })
        await tx.author.update({ where: { id: x.id }, data: { name: 'tx-2' } })
        return x
      }),
    )
    // A write that fails (duplicate key) after its id was handed over: nothing is captured, and the
    // next write on the same pool carries none.
    await expect(request.run('req-fail', async () => await prisma.author.create({ data: { id: first.id, name: 'dup', externalId: 'x' } }))).rejects.toThrow()
    for (let i = 1; i <= 3; i++) await prisma.author.create({ data: { name: `after-${i}`, externalId: 'x' } })
    expect(await published()).toEqual([['tx-1', 'req-tx'], ['tx-2', 'req-tx'], ['after-1', null], ['after-2', null], ['after-3', null]])
  })
})

describe.runIf(DIALECTS.includes('sqlite'))('trigger capture on SQLite with a correlation id', () => {
  it('is refused when the client is extended, naming the fix', async () => {
    const db = await createTestDatabase('sqlite', 'corr')
    try {
      const base = await db.client()
      expect(() => base.$extends(cqrsMaster({ transport: new CollectorTransport(), relay: { enabled: false }, models: { author: { cqrsId: 'author' } }, correlationId: () => 'x' }))).toThrow(
        /correlationId with capture: 'trigger' needs PostgreSQL or MySQL.*set capture: 'extension'/,
      )
    } finally {
      await db.drop()
    }
  })
})
