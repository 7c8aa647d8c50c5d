/**
 * PostgreSQL's replica batches PREPARE their lock statement and upserts once per connection and run
 * them by EXECUTE (replica-sql.ts, pgPreparedScript). What a user relies on: the statements really are
 * kept on the connection and reused (not prepared again each batch), and a connection that does not
 * keep them (PgBouncer in transaction mode hands each transaction another server connection; a pooler's
 * `DISCARD ALL` drops them) loses nothing: the batch that finds out runs again inline and applies, and
 * the store goes on inline.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { decodeMessage, encodeMessage, type CqrsMessage } from '../../src/core/message.js'
import { toApplyOp } from '../../src/replica/decode-op.js'
import { silentLogger } from '../../src/core/logger.js'
import { cqrsReplica, type Replica } from '../../src/prisma/cqrs-replica.js'
import { runScript, type SqlRunner } from '../../src/prisma/sql-runner.js'
import type { Delivery, Transport } from '../../src/transport/types.js'
import { createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases.js'

const noTransport = { name: 'none', connect: async () => {}, publish: async () => {}, consume: async () => ({ stop: async () => {} }), close: async () => {} } as Transport

const save = (id: number, name: string, revision: number): Delivery => {
  const m: CqrsMessage = {
    signal_type: 'SAVE',
    cqrs_id: 'author',
    instance_data: { id, name, external_id: `x${id}`, balance: '1.50', cqrs_revision: revision, cqrs_updated: '2026-12-06 02:00:00.123456+00:00' },
    previous_data: null,
    instance_pk: id,
    correlation_id: null,
    retries: 0,
    expires: null,
    meta: {},
  }
  return { body: Buffer.from(encodeMessage(m)), routingKey: 'author', headers: {}, redelivered: false }
}

describe.skipIf(!DIALECTS.includes('postgresql'))('PostgreSQL replica batches: prepared statements', () => {
  let db: TestDatabase
  let prisma: any
  let replica: Replica
  /** The store's own connections: batches run there one after the other, so on one pooled connection. */
  let conn: SqlRunner
  const onConnection = async (sql: string) => ((await runScript(conn, sql)) ?? [])[0] ?? []
  const preparedNames = async () => (await onConnection(`SELECT name FROM pg_prepared_statements WHERE left(name, 5) = 'cqrs_' ORDER BY name`)).map((r) => r.name as string)
  const names = async () => (await db.query<{ id: number; name: string; cqrs_revision: number }>('SELECT id, name, cqrs_revision FROM author_ref ORDER BY id')).map((r) => `${r.id}:${r.name}:${r.cqrs_revision}`)
  const handle = async (batch: Delivery[]) => {
    const out = await replica.consumer.handle(batch)
    expect(out.map((o) => o.kind), JSON.stringify(out)).toEqual(batch.map(() => 'ack'))
  }

  beforeAll(async () => {
    db = await createTestDatabase('postgresql', 'prep')
    prisma = await db.client()
  })
  // Each test with a replica of its own: a store of its own, with its own connections.
  beforeEach(async () => {
    await db.exec('TRUNCATE author_ref')
    replica = cqrsReplica({ prisma, transport: noTransport, queue: 'replica', logger: silentLogger, retry: { maxRetries: 0 }, handlers: { author: { model: 'authorRef' } } })
    conn = (replica.store as unknown as { fast: SqlRunner }).fast
  })
  afterEach(async () => {
    await replica?.store.close()
  })
  afterAll(async () => {
    await prisma?.$disconnect()
    await db?.drop()
  })

  it('prepares a batch shape once and reuses it; after DISCARD ALL the batch runs inline, applies, and so do the next ones', async () => {
    await handle([save(1, 'a', 1), save(2, 'b', 1)])
    const first = await preparedNames()
    // The lock statement and the upsert.
    expect(first).toHaveLength(2)
    // The same shape again (an older revision for 1, which the gate skips): nothing prepared anew.
    await handle([save(1, 'stale', 0), save(3, 'c', 1)])
    expect(await preparedNames()).toEqual(first)
    expect(await names()).toEqual(['1:a:1', '2:b:1', '3:c:1'])

    // The connection forgets them, as a pooler's reset does; the store still records them there.
    await onConnection('DISCARD ALL')
    expect(await preparedNames()).toEqual([])
    await handle([save(2, 'b2', 2), save(4, 'd', 1)])
    await handle([save(5, 'e', 1)])
    expect(await names()).toEqual(['1:a:1', '2:b2:2', '3:c:1', '4:d:1', '5:e:1'])
    // From then on inline: nothing prepared on the connection again.
    expect(await preparedNames()).toEqual([])
  })

  it('a batch that fails after its PREPAREs ran (a value PostgreSQL refuses) leaves them recorded: the next batch EXECUTEs them', async () => {
    const { target } = replica.routes.get('author') as { target: any }
    const ops = (batch: Delivery[]) => batch.map((d) => toApplyOp(target, decodeMessage(d.body.toString())))
    // A text PostgreSQL refuses inside the EXECUTE, after the PREPAREs ran (a PREPARE outlives the
    // rollback of its transaction).
    await expect(replica.store.applyBatch(target, ops([save(101, 'ok', 1), save(102, 'nul \u0000 inside', 1)]))).rejects.toThrow(/unsupported Unicode escape sequence/)
    const prepared = await preparedNames()
    expect(prepared).toHaveLength(2)
    // Had the store not known they were there, it would have PREPAREd them again, been refused (one
    // of that name exists) and gone inline for good.
    const inline = () => !(replica.store as unknown as { prepare: boolean }).prepare
    expect(await replica.store.applyBatch(target, ops([save(101, 'ok', 1), save(103, 'ok too', 1)]))).toEqual(['applied', 'applied'])
    await handle([save(104, 'd', 1)])
    expect(inline()).toBe(false)
    expect(await preparedNames()).toEqual(prepared)
    expect(await names()).toEqual(['101:ok:1', '103:ok too:1', '104:d:1'])
  })
})
