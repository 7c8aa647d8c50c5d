/**
 * G2 across two workers on PostgreSQL: a late SAVE that waits for a DELETE's pk lock must see the
 * DELETE's tombstone once it gets the lock, so the row stays deleted. The interleaving is forced, not
 * hoped for: a third connection holds an uncommitted tombstone of each pk, so worker A's DELETE batch
 * stops after taking its locks and deleting the rows; worker B's SAVE batch then waits for those
 * locks; then the third connection rolls back and both finish. A store that took its locks in the
 * same statement as its tombstone check (a snapshot older than the wait) would bring the rows back.
 * Revisions are generated from a seed (printed with a failure); a SAVE newer than the DELETE must
 * still win, so the check cannot pass by blocking everything.
 */
import { createHash } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeMessage, type CqrsMessage } from '../../src/core/message.js'
import { silentLogger } from '../../src/core/logger.js'
import { cqrsReplica, type Replica } from '../../src/prisma/cqrs-replica.js'
import { pgLockStatement } from '../../src/prisma/prisma-replica-store.js'
import { pgInline, pgScript } from '../../src/prisma/replica-sql.js'
import { runScript, sqlRunner } from '../../src/prisma/sql-runner.js'
import type { Delivery, Transport } from '../../src/transport/types.js'
import { rng } from '../support/chaos.js'
import { eventually } from '../support/compare.js'
import { createTestDatabase, type TestDatabase } from '../support/databases.js'
import { cqrsMessage } from '../support/messages.js'

const noTransport = { name: 'none', connect: async () => {}, publish: async () => {}, consume: async () => ({ stop: async () => {} }), close: async () => {} } as Transport

const message = (signal: CqrsMessage['signal_type'], id: number, revision: number): CqrsMessage =>
  cqrsMessage(signal, 'author', signal === 'DELETE' ? { id, cqrs_revision: revision, cqrs_updated: '2026-11-23 03:36:52.912512+00:00' } : { id, name: `n${id}r${revision}`, external_id: `x-${id}`, cqrs_revision: revision, cqrs_updated: '2026-11-23 03:36:52.912512+00:00' })
const deliveries = (ms: CqrsMessage[]): Delivery[] => ms.map((m) => ({ body: Buffer.from(encodeMessage(m)), routingKey: m.cqrs_id, headers: {}, redelivered: false }))

describe('a late SAVE racing a DELETE on another worker (postgresql)', () => {
  let db: TestDatabase
  let workers: Replica[] = []

  beforeAll(async () => {
    db = await createTestDatabase('postgresql', 'race')
    const make = async () => cqrsReplica({ prisma: await db.client(), transport: noTransport, queue: 'race', honorExpires: false, logger: silentLogger, handlers: { author: { model: 'authorRef' } } })
    // Two replicas, two stores, two connection pools: two workers.
    workers = [await make(), await make()]
  })
  afterAll(async () => {
    for (const w of workers) await w.store.close()
    await db?.drop()
  })

  /** Until a session of this test's database waits for a lock of `event` (PostgreSQL's wait_event: transactionid, advisory). */
  const waiting = async (event: string, what: string) =>
    eventually(
      async () => (Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = '${event}'`))[0].n) > 0 ? [] : [`no ${event} lock wait yet`]),
      30_000,
      what,
    )

  // The store sends a batch as one script (pgScript): the claim above must hold inside one script too.
  it('in one script, a statement after a lock wait reads what the lock holder committed', async () => {
    await db.exec(`DELETE FROM cqrs_tombstone`)
    const runner = sqlRunner(await db.client(), 'postgresql')
    const holder = new pg.Client({ connectionString: db.url })
    await holder.connect()
    try {
      await holder.query('BEGIN')
      await holder.query('SELECT pg_advisory_xact_lock(4242)')
      await holder.query(`INSERT INTO cqrs_tombstone (cqrs_id, pk, revision, updated) VALUES ('probe', '1', 5, now())`)
      const script = runScript(
        runner,
        pgScript([
          { sql: 'SELECT pg_advisory_xact_lock($1::bigint) IS NULL AS locked', params: [4242] },
          { sql: 'SELECT revision FROM cqrs_tombstone WHERE cqrs_id = $1', params: ['probe'] },
        ]),
      )
      await waiting('advisory', 'the script to wait for the held lock')
      await holder.query('COMMIT')
      const results = await script
      expect(results, 'the pg driver adapter runs scripts').not.toBeNull()
      // BEGIN, the lock, the read, COMMIT; a script's values come back as text.
      expect(results![2]).toEqual([{ revision: '5' }])
    } finally {
      await holder.end()
      await runner.close()
    }
  })

  // A worker of an older release may run beside this one during an upgrade: both must lock a pk by the
  // same key (sha1 of `cqrs_id NUL pk`, its first 8 bytes as a signed 64-bit integer), in signed order.
  it('locks each pk by the key every release takes, in ascending order', async () => {
    const random = rng(53)
    const pkKeys = Array.from({ length: 300 }, (_, i) =>
      i % 3 === 0 ? String(Math.floor(random() * 2 ** 40)) : i % 3 === 1 ? crypto.randomUUID() : `k-${Math.floor(random() * 1e9)}-é\u0000'"\\`,
    )
    const expected = (cqrsId: string) => pkKeys.map((k) => createHash('sha1').update(`${cqrsId}\0${k}`).digest().readBigInt64BE(0))
    const statement = pgLockStatement('author', [...pkKeys, ...pkKeys.slice(0, 10)])
    const sent = (statement.params[0] as string).split(',').map((h) => BigInt.asIntN(64, BigInt(`0x${h}`)))
    expect(sent, 'each pk once, in signed ascending order').toEqual([...expected('author')].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)))
    expect(sent.some((k) => k < 0n) && sent.some((k) => k > 0n), 'keys of both signs').toBe(true)
    const client = new pg.Client({ connectionString: db.url })
    await client.connect()
    try {
      await client.query('BEGIN')
      await client.query(pgInline(statement))
      const held = await client.query<{ k: string }>(`SELECT ((classid::bigint << 32) | objid::bigint)::text AS k FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND pid = pg_backend_pid()`)
      expect(new Set(held.rows.map((r) => BigInt(r.k)))).toEqual(new Set(expected('author')))
      await client.query('ROLLBACK')
    } finally {
      await client.end()
    }
  })

  for (const seed of [11, 29, 47]) {
    it(`the row stays deleted unless the SAVE is newer (seed ${seed})`, async () => {
      const random = rng(seed)
      const [a, b] = workers
      await db.exec(`TRUNCATE author_ref; DELETE FROM cqrs_tombstone`)
      const pks = Array.from({ length: 12 }, (_, i) => seed * 100 + i)
      const plan = pks.map((id) => {
        const stored = 1 + Math.floor(random() * 3)
        const deleted = stored + Math.floor(random() * 3)
        // Mostly late SAVEs (at most the DELETE's revision); some newer ones.
        const saved = random() < 0.75 ? 1 + Math.floor(random() * deleted) : deleted + 1 + Math.floor(random() * 2)
        return { id, stored, deleted, saved }
      })
      await a.consumer.handle(deliveries(plan.map((p) => message('SAVE', p.id, p.stored))))

      const holder = new pg.Client({ connectionString: db.url })
      await holder.connect()
      try {
        await holder.query('BEGIN')
        await holder.query(`INSERT INTO cqrs_tombstone (cqrs_id, pk, revision, updated) SELECT 'author', pk::text, 0, now() FROM unnest($1::int[]) AS u(pk)`, [pks])
        const deleting = a.consumer.handle(deliveries(plan.map((p) => message('DELETE', p.id, p.deleted))))
        await waiting('transactionid', 'worker A to wait for the held tombstones (its pk locks taken)')
        const saving = b.consumer.handle(deliveries(plan.map((p) => message('SAVE', p.id, p.saved))))
        await waiting('advisory', "worker B to wait for worker A's pk locks")
        await holder.query('ROLLBACK')
        const outcomes = [...(await deleting), ...(await saving)]
        expect(outcomes.every((o) => o.kind === 'ack'), `seed ${seed}: ${JSON.stringify(outcomes)}`).toBe(true)
      } finally {
        await holder.end()
      }

      const rows = await db.query<{ id: number; cqrs_revision: number }>('SELECT id, cqrs_revision FROM author_ref ORDER BY id')
      const expected = plan.filter((p) => p.saved > p.deleted).map((p) => ({ id: p.id, cqrs_revision: p.saved }))
      expect(rows, `seed ${seed}, plan ${JSON.stringify(plan)}`).toEqual(expected)
    })
  }
})
