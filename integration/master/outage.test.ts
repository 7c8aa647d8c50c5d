/**
 * A broker that goes away while the application writes (DESIGN.md G1, G7): the writes neither fail
 * nor wait for the broker, their events wait in the outbox, and once the broker is back the relay
 * reconnects by itself and publishes every one of them, once.
 *
 * The broker is taken away from this client only, never from the other tests: a TCP proxy between
 * the transport and the shared RabbitMQ destroys every connection and refuses new ones (`cut()`),
 * or forwards nothing while keeping the connections open (`blackhole()`, a network partition).
 */
import { performance } from 'node:perf_hooks'
import { afterEach, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { adapterFromUrl } from '../../src/prisma/adapter-from-url.js'
import { rabbitmq } from '../../src/transport/rabbitmq/index.js'
import { createTestDatabase, DIALECTS, type Dialect } from '../support/databases.js'
import { eventCounts, revisionsByPk, testQueue, uniqueSuffix } from '../support/rabbit.js'
import { TcpProxy } from '../support/tcp-proxy.js'
import { masterClient } from '../support/master.js'

const cleanups: Array<() => Promise<unknown>> = []
/** A cleanup step that hangs must not keep the next ones (queues, databases) from running. */
const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`cleanup step still running after ${ms} ms`)), ms).unref())])
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await withTimeout(c(), 15_000).catch(() => {})
}, 60_000)

/** Wait for a state the test cannot be notified of (the transport noticing a dead socket). */
async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

/** A master on a fresh database whose transport reaches RabbitMQ through a proxy, a queue for its events, and writers. */
async function setup(dialect: Dialect) {
  const db = await createTestDatabase(dialect, 'outage')
  cleanups.push(() => db.drop())
  const cqrsId = `author_${uniqueSuffix()}`
  const q = await testQueue([cqrsId], 'outage')
  cleanups.push(() => q.delete())
  const proxy = await TcpProxy.start()
  cleanups.push(() => proxy.close())

  const transport = rabbitmq({ url: proxy.amqpUrl, logger: silentLogger, reconnect: { initialMs: 50, maxMs: 250 } })
  // Generous transaction limits: the tests share a busy machine (Prisma's defaults are 2 s and 5 s).
  const { PrismaClient } = await import(`../../prisma/generated/${dialect}/client.ts`)
  const base = new PrismaClient({ adapter: await adapterFromUrl(db.url), transactionOptions: { maxWait: 15_000, timeout: 30_000 } })
  const prisma = await masterClient(base, { transport, models: { author: { cqrsId } }, relay: { enabled: true, pollIntervalMs: 100 }, logger: silentLogger })
  cleanups.push(async () => {
    await prisma.$cqrs.close()
    await base.$disconnect()
  })
  const outbox = async () => Number((await db.query<{ n: number | bigint }>('SELECT COUNT(*) AS n FROM cqrs_outbox'))[0].n)

  const rows = await Promise.all([0, 1, 2, 3].map((i) => prisma.author.create({ data: { name: `o${i}`, externalId: `o${i}` } })))
  const state = { written: rows.length }
  /** `n` writes from 3 concurrent callers (updates, and an interactive transaction now and then); their latencies. */
  const writeMany = async (n: number, afterEach?: () => void): Promise<number[]> => {
    const latencies: number[] = []
    let left = n
    await Promise.all(
      [0, 1, 2].map(async (c) => {
        for (let i = 0; left > 0; i++) {
          left--
          const row = rows[(c + i) % rows.length]
          const t0 = performance.now()
          if (i % 5 === 4) await prisma.$transaction(async (tx: any) => tx.author.update({ where: { id: row.id }, data: { rating: { increment: 1 } } }))
          else await prisma.author.update({ where: { id: row.id }, data: { rating: { increment: 1 }, nickname: `c${c}-${i}` } })
          latencies.push(performance.now() - t0)
          state.written++
          afterEach?.()
        }
      }),
    )
    return latencies
  }

  /** Broker reachable: writes go out as usual. Returns the measured latencies (the first writes warm up, unmeasured). */
  const baseline = async () => {
    await writeMany(9)
    const before = await writeMany(30)
    await q.until(state.written)
    // Let the relay finish its claims (a cut between a publish and its confirm would rightly publish again).
    await prisma.$cqrs.flush()
    await q.barrier()
    expect(q.received).toHaveLength(state.written)
    return before
  }

  /** After the outage: every committed event arrived exactly once, in revision order per row; the outbox is empty. */
  const expectEverythingOnce = async () => {
    await q.until(state.written)
    await prisma.$cqrs.flush()
    await q.barrier()
    const counts = eventCounts(q.received)
    const expected = new Set<string>()
    for (const r of await db.query<{ id: number | bigint; cqrs_revision: number | bigint }>('SELECT id, cqrs_revision FROM author'))
      for (let rev = 0; rev <= Number(r.cqrs_revision); rev++) expected.add(`${r.id}:${rev}:SAVE`)
    expect(expected.size, 'every write committed').toBe(state.written)
    expect([...expected].filter((k) => counts.get(k) !== 1), 'events that did not arrive exactly once').toEqual([])
    expect(q.received).toHaveLength(state.written)
    for (const [pk, revisions] of revisionsByPk(q.received)) expect(revisions, `pk ${pk} in revision order`).toEqual(revisions.map((_, i) => i))
    expect(await outbox()).toBe(0)
  }

  const expectLatencyInTheSameOrder = (before: number[], during: number[], after: number[], what: string) => {
    const [b, d, a] = [median(before), median(during), median(after)]
    const text = `${dialect}: median write latency before ${b.toFixed(1)} ms, during ${what} ${d.toFixed(1)} ms, after ${a.toFixed(1)} ms`
    console.log(text)
    // Generous bound: other test files share the CPU. A write that waited for the broker would take seconds.
    expect(d, text).toBeLessThan(5 * b + 25)
  }

  return { db, q, proxy, transport, prisma, state, outbox, writeMany, baseline, expectEverythingOnce, expectLatencyInTheSameOrder }
}

describe.each(DIALECTS)('broker outage on %s', (dialect) => {
  it('writes while the broker is gone resolve without waiting for it; then the relay reconnects and every event arrives once', async () => {
    const { q, proxy, transport, prisma, state, outbox, writeMany, baseline, expectEverythingOnce, expectLatencyInTheSameOrder } = await setup(dialect)
    const before = await baseline()
    const arrivedBefore = q.received.length

    // Broker gone: every connection through the proxy dies and new ones are refused.
    proxy.cut()
    await until(() => !transport.isConnected(), 'the transport to notice the lost connection')
    const during = await writeMany(60, () => {
      // Each write resolved while the transport was still disconnected: it did not wait for the broker.
      expect(transport.isConnected(), 'a write resolved while the broker was unreachable').toBe(false)
    })
    expect(proxy.state).toBe('cut')
    expect(during, 'every write during the outage resolved').toHaveLength(60)
    expect(await outbox(), 'the events of the outage wait in the outbox').toBe(60)
    await until(() => proxy.refused > 0, 'the transport to try reconnecting')
    expect(q.received.length, 'nothing was published while the broker was away').toBe(arrivedBefore)

    // Broker back: the transport reconnects by itself; the next commit wakes the relay, which
    // publishes the backlog and the new events. (Without a commit the relay waits out its backoff,
    // up to 10 s: it is not woken by the reconnect.)
    proxy.restore()
    await until(() => transport.isConnected(), 'the transport to reconnect by itself')
    const after = await writeMany(9)
    await expectEverythingOnce()
    expect(proxy.accepted, 'the transport opened a new connection after the outage').toBeGreaterThan(1)
    expect(prisma.$cqrs.relay.stats.errors, 'the relay saw the outage').toBeGreaterThan(0)
    expectLatencyInTheSameOrder(before, during, after, 'the outage')
  })

  // On SQLite the relay's claim transaction holds the database's only write lock (and the adapter's
  // transaction mutex) while it waits for the broker's confirm: during a partition the user's writes
  // wait for it and fail after Prisma's maxWait (2 s). Known limitation, see the report of this test.
  it.skipIf(dialect === 'sqlite')('writes during a network partition (connections hang, no reset) do not wait for the stuck publish', async () => {
    const { q, proxy, transport, prisma, state, outbox, writeMany, baseline, expectEverythingOnce, expectLatencyInTheSameOrder } = await setup(dialect)
    const before = await baseline()
    const published = prisma.$cqrs.relay.stats.published

    // The broker stops answering: the next publish is written into the void and its confirm never comes.
    proxy.blackhole()
    await writeMany(1)
    await proxy.swallowedAtLeast(1)
    expect(transport.isConnected(), 'the connection looks alive').toBe(true)
    const during = await writeMany(45, () => {
      expect(prisma.$cqrs.relay.stats.published, 'the relay is stuck in its publish while the write resolved').toBe(published)
    })
    expect(proxy.state).toBe('blackhole')
    expect(await outbox(), 'every event of the partition waits in the outbox').toBe(46)

    // The partition ends the way a heartbeat timeout would end it: the connection is torn down.
    proxy.cut()
    proxy.restore()
    await until(() => transport.isConnected(), 'the transport to reconnect by itself')
    const after = await writeMany(9)
    await expectEverythingOnce()
    expect(state.written).toBe(q.received.length)
    expectLatencyInTheSameOrder(before, during, after, 'the partition')
  })
})
