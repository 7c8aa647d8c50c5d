/**
 * `prisma.$cqrs.flush()` while the broker is away from this client (a TCP proxy cuts it, the shared
 * RabbitMQ keeps running): with `timeoutMs` it rejects after that long with a clear error and the
 * events stay in the outbox; without it, it waits and resolves once the broker is back, every event
 * published.
 */
import { afterEach, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { rabbitmq } from '../../src/transport/rabbitmq/index.js'
import { createTestDatabase } from '../support/databases.js'
import { testQueue, uniqueSuffix } from '../support/rabbit.js'
import { TcpProxy } from '../support/tcp-proxy.js'
import { masterClient } from '../support/master.js'

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})

/** Wait for a state the test cannot be notified of (a publish attempt that failed). */
async function until(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

it('flush waits for the broker; with timeoutMs it gives up with a clear error', async () => {
  const db = await createTestDatabase('postgresql', 'flush')
  cleanups.push(() => db.drop())
  const cqrsId = `author_${uniqueSuffix()}`
  const q = await testQueue([cqrsId], 'flush')
  cleanups.push(() => q.delete())
  const proxy = await TcpProxy.start()
  cleanups.push(() => proxy.close())
  // No in-process relay: only flush publishes, so what arrives is flush's doing.
  const prisma = await masterClient(await db.client(), { transport: rabbitmq({ url: proxy.amqpUrl, logger: silentLogger, reconnect: { initialMs: 50, maxMs: 250 } }), models: { author: { cqrsId } }, relay: { enabled: false }, logger: silentLogger })
  cleanups.push(() => prisma.$cqrs.close())

  await prisma.author.create({ data: { name: 'before', externalId: 'b' } })
  expect(await prisma.$cqrs.flush()).toBe(1)
  await q.until(1)

  proxy.cut()
  for (let i = 0; i < 5; i++) await prisma.author.create({ data: { name: `during ${i}`, externalId: `d${i}` } })

  const started = Date.now()
  const timedOut = await prisma.$cqrs.flush({ timeoutMs: 500 }).then(
    () => null,
    (e: Error & { code?: string }) => e,
  )
  expect(timedOut?.code).toBe('CQRS_FLUSH_TIMEOUT')
  expect(timedOut?.message).toMatch(/^flush gave up after 500 ms with events still in the outbox \(0 published meanwhile\)/)
  expect(timedOut?.message).toContain('call flush() without timeoutMs to wait')
  expect(Date.now() - started).toBeGreaterThanOrEqual(500)
  expect(Number((await db.query<{ n: string }>('SELECT COUNT(*) AS n FROM cqrs_outbox'))[0].n)).toBe(5)

  // Without a timeout: it keeps trying while the broker is away, and finishes once it is back.
  let settled = false
  const errorsBefore = prisma.$cqrs.relay.stats.errors
  const waiting = prisma.$cqrs.flush().finally(() => (settled = true))
  await until(() => prisma.$cqrs.relay.stats.errors >= errorsBefore + 2, 'two failed publish attempts')
  expect(settled).toBe(false)
  proxy.restore()
  expect(await waiting).toBe(5)
  const received = await q.until(6)
  expect(received.map((r) => r.body.instance_data.name).slice(1).sort()).toEqual(['during 0', 'during 1', 'during 2', 'during 3', 'during 4'])
  expect(Number((await db.query<{ n: string }>('SELECT COUNT(*) AS n FROM cqrs_outbox'))[0].n)).toBe(0)
})
