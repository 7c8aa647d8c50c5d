/**
 * MariaDB kills the replica's connections while it applies (`KILL CONNECTION`, as a failover, a
 * restart or an operator does): batches cut mid-transaction or mid-commit are held and applied again
 * on new connections, through real RabbitMQ, and the replica ends equal to what was sent, with nothing
 * dead-lettered (a lost connection is waited for, not blamed on the message).
 */
import mariadb, { type Connection } from 'mariadb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { encodeMessage } from '../../src/core/message.js'
import { cqrsReplica } from '../../src/prisma/cqrs-replica.js'
import { rabbitmq } from '../../src/transport/rabbitmq/index.js'
import { runtime } from '../../src/transport/runtime-transport.js'
import { rng } from '../support/chaos.js'
import { eventually } from '../support/compare.js'
import { AMQP_URL, createTestDatabase, DIALECTS, mariadbConfig, type TestDatabase } from '../support/databases.js'
import { deleteQueues } from '../support/rabbit-cleanup.js'
import { cqrsMessage } from '../support/messages.js'

describe.runIf(DIALECTS.includes('mysql'))('MariaDB connections killed under the replica', () => {
  let db: TestDatabase
  let admin: Connection
  const suffix = `_kill${Math.random().toString(36).slice(2, 8)}`
  const queue = `kill${suffix}`
  const cqrsId = `author${suffix}`

  beforeAll(async () => {
    db = await createTestDatabase('mysql', 'kill')
    // The test's own connection: it counts rows and kills the replica's connections to the database.
    admin = await mariadb.createConnection(mariadbConfig(db.url))
  })
  afterAll(async () => {
    await admin?.end()
    await deleteQueues(queue)
    await db?.drop()
  })

  it('holds the cut batches, applies them on new connections, and converges', async () => {
    const seed = Number(process.env.CQRS_TEST_SEED ?? Date.now() % 1_000_000)
    console.log(`mariadb-connection-kill seed ${seed} (CQRS_TEST_SEED=${seed} to replay)`)
    const rnd = rng(seed)
    // What the consumer said about retries and dead letters, to name the error if there are any.
    const said: string[] = []
    const note = (msg: string, fields?: Record<string, unknown>) => void (/in the broker|dead-lettered/.test(msg) && said.push(`${msg}: ${String(fields?.error ?? fields?.reason)}`))
    const replica = cqrsReplica({
      prisma: await db.client(),
      transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }),
      queue,
      logger: { ...silentLogger, info: note, warn: note },
      prefetch: 200,
      batchSize: 50,
      retry: { maxRetries: 2, delaysMs: [200] },
      handlers: { [cqrsId]: { model: 'authorRef' } },
    })
    await replica.start()
    // 1,500 rows, each saved at revision 0 and then at a random later revision (some twice), shuffled
    // per pk only by the broker's order: the final revision is the highest sent.
    const final = new Map<number, number>()
    const messages: string[] = []
    for (let id = 1; id <= 1500; id++) {
      const revisions = [0, 1 + Math.floor(rnd() * 3)]
      if (rnd() < 0.2) revisions.push(revisions[1]) // a duplicate
      for (const r of revisions) messages.push(encodeMessage(cqrsMessage('SAVE', cqrsId, { id, name: `n${id}-r${r}`, external_id: `x${id}`, balance: 1.5, rating: r, cqrs_revision: r, cqrs_updated: '2026-12-04 10:00:00.123456+00:00' })))
      final.set(id, revisions[1])
    }
    // Spare the test's own connections: this one and the database helper's.
    const [{ id: helper }] = await db.query<{ id: number | bigint }>('SELECT CONNECTION_ID() AS id')
    let kills = 0
    let killing = true
    const killer = (async () => {
      while (killing) {
        const others = await admin.query<Array<{ id: number | bigint }>>('SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID() AND id <> ?', [Number(helper)])
        for (const { id } of others) {
          await admin.query(`KILL CONNECTION ${Number(id)}`).then(
            () => kills++,
            () => {}, // gone meanwhile
          )
        }
        await new Promise((r) => setTimeout(r, 5 + Math.floor(rnd() * 40)))
      }
    })()
    const publisher = runtime(rabbitmq({ url: AMQP_URL, logger: silentLogger }))
    try {
      await publisher.publish(messages.map((body) => ({ routingKey: cqrsId, body })))
      // Keep killing until half the rows are in, so batches are cut throughout the first half.
      await eventually(async () => {
        const [{ n }] = await admin.query<Array<{ n: number | bigint }>>('SELECT count(*) AS n FROM author_ref')
        return Number(n) >= 750 ? [] : [`${n} of 750 rows`]
      }, 120_000, 'half the rows while connections are killed')
      killing = false
      await killer
      await eventually(async () => {
        const rows: Array<{ id: number; cqrs_revision: number; name: string }> = await admin.query('SELECT id, cqrs_revision, name FROM author_ref')
        const got = new Map(rows.map((r) => [Number(r.id), r]))
        const out: string[] = []
        for (const [id, rev] of final) {
          const r = got.get(id)
          if (!r || Number(r.cqrs_revision) !== rev || r.name !== `n${id}-r${rev}`) out.push(`pk ${id}: want revision ${rev}, have ${r ? `${r.cqrs_revision} (${r.name})` : 'no row'} (seed ${seed})`)
        }
        return out
      }, 120_000)
      expect(kills, 'connections killed while the replica applied').toBeGreaterThanOrEqual(5)
      // A lost connection is held, not retried; a statement the kill interrupts mid-way (MariaDB may
      // answer "Query execution was interrupted" before the connection drops) is not known to be a
      // lost connection and may take one retry through the broker. Nothing is dead-lettered.
      if (said.length) console.log(`retries while connections were killed: ${said.join('; ')}`)
      expect(replica.stats.snapshot(), `seed ${seed}; ${said.join('; ')}`).toMatchObject({ deadLettered: 0 })
      expect(replica.stats.retried, `seed ${seed}; ${said.join('; ')}`).toBeLessThanOrEqual(5)
    } finally {
      killing = false
      await killer.catch(() => {})
      await publisher.close()
      await replica.stop()
    }
  })
})
