/**
 * The relay pipelines its batches on PostgreSQL: it claims and sends the next batch while the broker
 * has not yet confirmed the previous one, and still publishes every committed event exactly once,
 * each row's events in revision order, also while writers commit during the drain.
 *
 * The proof that it pipelines is behavioural, not a timing: the transport below holds back the
 * confirms of a full batch until the relay sends the next one, and counts how often that happened.
 * A relay that waits for confirms before claiming again never sends while a batch is held (each hold
 * then ends by its fallback timer instead, and the count stays 0).
 */
import { randomUUID } from 'node:crypto'
import { describe, expect, it, type TestContext } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { adapterFromUrl } from '../../src/prisma/adapter-from-url.js'
import { createRelay, cqrsMaster } from '../../src/prisma/cqrs-master.js'
import { RabbitmqTransport } from '../../src/transport/rabbitmq/index.js'
import type { OutgoingMessage } from '../../src/transport/types.js'
import { AMQP_URL, createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases.js'
import { revisionsByPk, testQueue, uniqueSuffix } from '../support/rabbit.js'
import { rng } from '../support/chaos.js'

const BATCH = 10

/** RabbitMQ whose confirms of a full batch wait until the next batch is sent (or a fallback timer). */
class HoldingTransport extends RabbitmqTransport {
  /** Sends that found the previous full batch still unconfirmed. */
  overlaps = 0
  private release: (() => void) | null = null

  override async send(messages: OutgoingMessage[]): Promise<{ confirmed: Promise<void> }> {
    const held = this.release
    this.release = null
    if (held) {
      this.overlaps++
      held()
    }
    const { confirmed } = await super.send(messages)
    if (messages.length < BATCH) return { confirmed }
    const gate = new Promise<void>((resolve) => {
      const open = () => {
        clearTimeout(timer)
        if (this.release === open) this.release = null
        resolve()
      }
      // The last full batch has no successor: let it go after a while so the drain can end.
      const timer = setTimeout(open, 300)
      this.release = open
    })
    return { confirmed: confirmed.then(() => gate) }
  }
}


function cleanups(ctx: TestContext) {
  const list: Array<() => Promise<unknown>> = []
  ctx.onTestFinished(async () => {
    for (const c of list.splice(0).reverse()) await c().catch(() => {})
  }, 60_000)
  return (fn: () => Promise<unknown>) => list.push(fn)
}

describe('the relay pipelines batches on PostgreSQL and keeps each row in revision order', () => {
  it.runIf(DIALECTS.includes('postgresql'))('with a full outbox, and with writers committing during the drain', async (ctx) => {
    const seed = Number(process.env.CQRS_TEST_SEED ?? Date.now() % 1_000_000)
    console.log(`relay-pipeline seed ${seed} (CQRS_TEST_SEED=${seed} to replay)`)
    const rnd = rng(seed)
    const defer = cleanups(ctx)
    const db: TestDatabase = await createTestDatabase('postgresql', 'pipeline')
    defer(() => db.drop())
    const cqrsId = `author_${uniqueSuffix()}`
    const q = await testQueue([cqrsId], 'pipeline')
    defer(() => q.delete())
    const { PrismaClient } = await import(`../../prisma/generated/${'postgresql'}/client.ts`)
    const open = async () => {
      const c = new PrismaClient({ adapter: await adapterFromUrl(db.url), transactionOptions: { maxWait: 15_000, timeout: 30_000 } })
      defer(() => c.$disconnect())
      return c
    }
    const models = { author: { cqrsId } }
    const app = (await open()).$extends(cqrsMaster({ transport: new RabbitmqTransport({ url: AMQP_URL, logger: silentLogger }), capture: 'extension', models, relay: { enabled: false }, logger: silentLogger }))
    defer(() => app.$cqrs.close())
    const transport = new HoldingTransport({ url: AMQP_URL, logger: silentLogger })
    const relay = createRelay(await open(), transport, { batchSize: BATCH, pollIntervalMs: 50, listen: false, logger: silentLogger, master: { models } })
    defer(() => transport.close())
    defer(() => relay.stop())

    // 1. A full outbox: 12 rows, then updates in random row order, so each row's events span batches.
    const ids: number[] = []
    for (let i = 0; i < 12; i++) ids.push((await app.author.create({ data: { name: `a${i}`, externalId: randomUUID() } })).id)
    for (let i = 0; i < 60; i++) {
      const id = ids[Math.floor(rnd() * ids.length)]
      await app.author.update({ where: { id }, data: { name: `u${i}` } })
    }
    expect(await relay.drain(60_000)).toBe(72)
    expect(transport.overlaps, 'the next batch was sent while the previous one was unconfirmed').toBeGreaterThan(0)

    // 2. Writers commit while the relay runs: outbox ids commit out of order, and are still published in row order.
    relay.start()
    await Promise.all(
      [0, 1, 2, 3].map(async (w) => {
        for (let i = 0; i < 25; i++) {
          const id = ids[Math.floor(rnd() * ids.length)]
          await app.author.update({ where: { id }, data: { name: `w${w}-${i}` } })
        }
      }),
    )
    await relay.drain(60_000)
    await relay.stop()
    await q.barrier()

    const rows = await db.query<{ id: number; cqrs_revision: number }>('SELECT id, cqrs_revision FROM author ORDER BY id')
    const byPk = revisionsByPk(q.received)
    for (const r of rows) {
      const expected = Array.from({ length: Number(r.cqrs_revision) + 1 }, (_, i) => i)
      expect(byPk.get(String(r.id)), `row ${r.id}: every revision once, in order (seed ${seed})`).toEqual(expected)
    }
    expect(q.received.length).toBe(172)
    expect(relay.stats.errors, `no failed batch: ${relay.stats.lastError}`).toBe(0)
  })
})
