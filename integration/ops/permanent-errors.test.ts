/**
 * A value the replica's column can never hold (a decimal too wide, an integer out of range, a string
 * too long for VARCHAR(n)) is dead-lettered at its first delivery, with the database's message, the
 * column and the value, while the rest of its batch applies: through real RabbitMQ, on PostgreSQL
 * and MariaDB.
 */
import amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { encodeMessage, type CqrsMessage } from '../../src/core/message.js'
import { cqrsReplica } from '../../src/prisma/cqrs-replica.js'
import { rabbitmq } from '../../src/transport/rabbitmq/index.js'
import { runtime } from '../../src/transport/runtime-transport.js'
import type { BatchHandler } from '../../src/transport/types.js'
import { eventually } from '../support/compare.js'
import { AMQP_URL, createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases.js'
import { deleteQueues } from '../support/rabbit-cleanup.js'
import { cqrsMessage } from '../support/messages.js'

const dialects = DIALECTS.filter((d) => d === 'postgresql' || d === 'mysql')

describe.each(dialects)('permanent database errors on %s', (dialect) => {
  let db: TestDatabase
  const suffix = `_pe${Math.random().toString(36).slice(2, 8)}`
  const queue = `perm${suffix}`
  const cqrsId = `author${suffix}`

  beforeAll(async () => {
    db = await createTestDatabase(dialect, 'perm')
  })
  afterAll(async () => {
    await deleteQueues(queue)
    await db?.drop()
  })

  const message = (id: number, data: Record<string, unknown> = {}): CqrsMessage =>
    cqrsMessage('SAVE', cqrsId, { id, name: `n${id}`, external_id: `x${id}`, nickname: `nick${id}`, balance: 1.5, rating: id, cqrs_revision: 0, cqrs_updated: '2026-12-03 07:52:03.955000+00:00', ...data })

  /** A replica of `q` (a fresh client and transport each call). */
  const optionsFor = async (q: string, batchSize: number) => ({
    prisma: await db.client(),
    transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }),
    queue: q,
    logger: silentLogger,
    prefetch: 100,
    batchSize,
    // A retry would wait half a minute in the broker: a dead letter that shows up now was not retried.
    retry: { maxRetries: 3, delaysMs: [30_000] },
    handlers: { [cqrsId]: { model: 'authorRef' } },
  })

  it('dead-letters the value at first delivery, names column and value, and applies the rest of the batch', async () => {
    const replicaOptions = () => optionsFor(queue, 50)
    // Declare the queue, then fill it, so the poison arrives in a batch with the good messages.
    const declare = cqrsReplica(await replicaOptions())
    await declare.start()
    await declare.stop()

    const poison = new Map<number, { data: Record<string, unknown>; column: string; value: string }>([
      [108, { data: { balance: 1e17 }, column: 'balance', value: '"100000000000000000"' }], // DECIMAL(18,2) holds 16 integer digits
      [112, { data: { rating: 2 ** 31 }, column: 'rating', value: '2147483648' }], // INTEGER
    ])
    if (dialect === 'mysql') poison.set(116, { data: { name: 'é'.repeat(192) }, column: 'name', value: JSON.stringify('é'.repeat(192)) }) // VARCHAR(191)
    if (dialect === 'postgresql') {
      // Lengths a user's replica table may have (the test schema's are text): a text too long for them
      // is refused, never cut to fit. The full-length ones beside them apply as sent.
      await db.exec('ALTER TABLE author_ref ALTER COLUMN nickname TYPE varchar(8), ALTER COLUMN external_id TYPE char(6)')
      poison.set(116, { data: { nickname: 'ninechars' }, column: 'nickname', value: '"ninechars"' })
      poison.set(120, { data: { external_id: 'x120567' }, column: 'external_id', value: '"x120567"' })
    }
    const ids = Array.from({ length: 24 }, (_, i) => 100 + i)
    const publisher = runtime(rabbitmq({ url: AMQP_URL, logger: silentLogger }))
    await publisher.publish(ids.map((id) => ({ routingKey: cqrsId, body: encodeMessage(message(id, poison.get(id)?.data)) })))
    await publisher.close()

    const replica = cqrsReplica(await replicaOptions())
    const batches: number[][] = []
    const handle = replica.consumer.handle
    ;(replica.consumer as { handle: BatchHandler }).handle = (batch) => {
      batches.push(batch.map((d) => JSON.parse(d.body.toString()).instance_pk))
      return handle(batch)
    }
    await replica.start()
    try {
      const good = ids.filter((id) => !poison.has(id))
      await eventually(async () => {
        const rows = await db.query<{ id: number }>('SELECT id FROM author_ref ORDER BY id')
        const have = new Set(rows.map((r) => Number(r.id)))
        return good.filter((id) => !have.has(id)).map((id) => `missing ${id}`)
      }, 90_000)
      const dead = await deadLetters(queue, poison.size)
      expect(dead.map((d) => d.pk).sort()).toEqual([...poison.keys()].sort())
      for (const d of dead) {
        const { column, value } = poison.get(d.pk)!
        expect(d.attempts, `pk ${d.pk}`).toBe(1)
        expect(d.reason, `pk ${d.pk}`).toContain(`column ${column}, value ${value}`)
      }
      expect(dead.find((d) => d.pk === 108)!.reason).toMatch(dialect === 'postgresql' ? /^numeric field overflow \(22003\)/ : /^Out of range value for column 'balance' at row \d+ \(1264\)/)
      expect(replica.stats.snapshot()).toMatchObject({ retried: 0, deadLettered: poison.size })
      if (dialect === 'postgresql') {
        // The ones that fit arrived whole (`nick123` fills seven of eight, `x12345` would fill six).
        const rows = await db.query<{ nickname: string; external_id: string }>('SELECT nickname, external_id FROM author_ref WHERE id = 123')
        expect(rows).toEqual([{ nickname: 'nick123', external_id: 'x123  ' }])
      }
      // Poison isolation: each poisoned message shared its batch with good ones, which applied.
      for (const pk of poison.keys()) expect(batches.find((b) => b.includes(pk))!.some((id) => !poison.has(id)), `batches ${JSON.stringify(batches)}`).toBe(true)
    } finally {
      await replica.stop()
    }
  })

  // MariaDB takes no statement bigger than its max_allowed_packet (16 MB here): a batch of big rows is
  // split to fit, and a row that alone is bigger is dead-lettered saying what to raise, not retried
  // forever as a lost connection (the server cuts the connection it came on).
  it.runIf(dialect === 'mysql')('splits a batch bigger than max_allowed_packet, and dead-letters a row bigger than it with what to raise', async () => {
    const bigQueue = `big${suffix}`
    const limit = Number((await db.query<{ m: number }>('SELECT @@max_allowed_packet AS m'))[0].m)
    const rowChars = Math.ceil((1.5 * limit) / 100) // 100 rows: one and a half times the limit in all
    const ids = Array.from({ length: 100 }, (_, i) => 300 + i)
    const tooBig = 350 // alone more than the limit
    const profile = (id: number) => ({ blob: String(id % 10).repeat(id === tooBig ? limit + 1024 : rowChars) })
    const options = () => optionsFor(bigQueue, 100)
    // Declare the queue, then fill it, so the rows arrive in one batch.
    const declare = cqrsReplica(await options())
    await declare.start()
    await declare.stop()
    try {
      const publisher = runtime(rabbitmq({ url: AMQP_URL, logger: silentLogger }))
      await publisher.publish(ids.map((id) => ({ routingKey: cqrsId, body: encodeMessage(message(id, { profile: profile(id) })) })))
      await publisher.close()
      const again = cqrsReplica(await options())
      await again.start()
      try {
        const good = ids.filter((id) => id !== tooBig)
        await eventually(async () => {
          const rows = await db.query<{ id: number; n: number }>(`SELECT id, LENGTH(JSON_VALUE(profile, '$.blob')) AS n FROM author_ref WHERE id BETWEEN 300 AND 399`)
          const have = new Map(rows.map((r) => [Number(r.id), Number(r.n)]))
          return good.filter((id) => have.get(id) !== rowChars).map((id) => `row ${id}: ${have.get(id) ?? 'missing'}`)
        }, 45_000)
        const [dead] = await deadLetters(bigQueue, 1)
        expect(dead.pk).toBe(tooBig)
        expect(dead.attempts).toBe(1)
        expect(dead.reason).toMatch(/max_allowed_packet/)
        expect(dead.reason).toMatch(/raise max_allowed_packet on the replica's server/)
        expect(again.stats.snapshot()).toMatchObject({ retried: 0, deadLettered: 1 })
      } finally {
        await again.stop()
      }
    } finally {
      await deleteQueues(bigQueue)
    }
  })
})

/** Reads (and acks) `n` dead letters of `queue`, awaiting them. */
async function deadLetters(queue: string, n: number): Promise<Array<{ pk: number; attempts: number; reason: string }>> {
  const conn = await amqp.connect(AMQP_URL)
  const ch = await conn.createChannel()
  const out: Array<{ pk: number; attempts: number; reason: string }> = []
  try {
    await eventually(async () => {
      for (let m = await ch.get(`dead_letter_${queue}`, { noAck: true }); m; m = await ch.get(`dead_letter_${queue}`, { noAck: true })) {
        const h = m.properties.headers ?? {}
        out.push({ pk: JSON.parse(m.content.toString()).instance_pk, attempts: Number(h['x-cqrs-attempts']), reason: String(h['x-cqrs-reason']) })
      }
      return out.length >= n ? [] : [`${out.length} of ${n} dead letters`]
    }, 60_000)
    return out
  } finally {
    await conn.close()
  }
}
