import { describe, expect, it } from 'vitest'
import { TransportError } from '../../src/core/errors.js'
import { silentLogger } from '../../src/core/logger.js'
import { MemoryBroker, memory, topicMatches } from '../../src/transport/memory/index.js'
import type { BatchHandler, Delivery, Outcome } from '../../src/transport/types.js'

const spec = { queue: 'replica', cqrsIds: ['author'], retryDelaysMs: [20] }
const ack: Outcome = { kind: 'ack' }

function recorder(decide: (d: Delivery) => Outcome = () => ack) {
  const seen: Delivery[] = []
  const batches: number[] = []
  let wake: (() => void) | undefined
  const handler: BatchHandler = async (batch) => {
    batches.push(batch.length)
    seen.push(...batch)
    wake?.()
    return batch.map(decide)
  }
  const until = async (n: number) => {
    while (seen.length < n) await new Promise<void>((r) => (wake = r))
    return seen
  }
  return { handler, seen, batches, until, bodies: () => seen.map((d) => d.body.toString()) }
}

const publish = (t: ReturnType<typeof memory>, n: number, key = 'author') =>
  t.publish(Array.from({ length: n }, (_, i) => ({ routingKey: key, body: `${i}`, messageId: `m${i}` })))

describe('topicMatches', () => {
  it.each([
    ['author', 'author', true],
    ['author', 'book', false],
    ['cqrs.*.author', 'cqrs.replica.author', true],
    ['cqrs.*', 'cqrs.replica.author', false],
    ['cqrs.dead_letter_replica.#', 'cqrs.dead_letter_replica.author', true],
    ['cqrs.dead_letter_replica.#', 'cqrs.dead_letter_replica', true],
    ['cqrs.dead_letter_replica.#', 'cqrs.replica.author', false],
    ['#', 'anything.at.all', true],
    ['#.author', 'cqrs.replica.author', true],
  ])('%s matches %s: %s', (pattern, key, expected) => {
    expect(topicMatches(pattern, key)).toBe(expected)
  })
})

describe('memory transport', () => {
  it('loses messages published before the queue exists, like RabbitMQ', async () => {
    const broker = new MemoryBroker()
    const t = memory({ broker })
    await publish(t, 1)
    expect(await t.queueStats(spec)).toMatchObject({ messages: 0 })
  })

  it('keeps messages for queues declared ahead, and shares them between transports on one broker', async () => {
    const broker = new MemoryBroker()
    const master = memory({ broker, queues: [spec] })
    const replica = memory({ broker })
    await publish(master, 3)
    expect(await replica.queueStats(spec)).toMatchObject({ messages: 3 })
    const r = recorder()
    await replica.consume({ ...spec, prefetch: 10, batchSize: 10 }, r.handler)
    await r.until(3)
    expect(r.bodies()).toEqual(['0', '1', '2'])
    expect(r.seen[0]).toMatchObject({ routingKey: 'author', messageId: 'm0', redelivered: false })
  })

  it('defaults to one broker per process', () => {
    expect(memory().broker).toBe(MemoryBroker.shared())
    expect(memory().broker).toBe(memory().broker)
  })

  it('hands messages over in batches of batchSize', async () => {
    const t = memory({ broker: new MemoryBroker(), queues: [spec] })
    await publish(t, 10)
    const r = recorder()
    await t.consume({ ...spec, prefetch: 10, batchSize: 3 }, r.handler)
    await r.until(10)
    expect(r.batches).toEqual([3, 3, 3, 1])
  })

  it('never hands out more than prefetch unsettled messages', async () => {
    const t = memory({ broker: new MemoryBroker(), queues: [spec] })
    await publish(t, 5)
    const r = recorder()
    await t.consume({ ...spec, prefetch: 2, batchSize: 10 }, r.handler)
    await r.until(5)
    expect(Math.max(...r.batches)).toBeLessThanOrEqual(2)
  })

  it('competing consumers share a queue', async () => {
    const t = memory({ broker: new MemoryBroker(), queues: [spec] })
    const a = recorder()
    const b = recorder()
    await t.consume({ ...spec, prefetch: 1, batchSize: 1 }, a.handler)
    await t.consume({ ...spec, prefetch: 1, batchSize: 1 }, b.handler)
    await publish(t, 10)
    while (a.seen.length + b.seen.length < 10) await Promise.race([a.until(a.seen.length + 1), b.until(b.seen.length + 1)])
    expect(a.seen.length).toBeGreaterThan(0)
    expect(b.seen.length).toBeGreaterThan(0)
  })

  it('counts a waiting retry, then delivers it to cqrs.<Q>.<cqrs_id>', async () => {
    const t = memory({ broker: new MemoryBroker() })
    let first = true
    const r = recorder(() => {
      if (!first) return ack
      first = false
      return { kind: 'retry', delayMs: 20, body: 'again', cqrsId: 'author', headers: { n: 1 } }
    })
    await t.consume({ ...spec, prefetch: 1, batchSize: 1 }, r.handler)
    await publish(t, 1)
    await r.until(1)
    expect(await t.queueStats(spec)).toMatchObject({ retrying: 1, consumers: 1 })
    const [, back] = await r.until(2)
    expect(back).toMatchObject({ routingKey: 'cqrs.replica.author', messageId: 'm0', headers: { n: 1, 'cqrs-delay-queue': 'replica', 'cqrs-delay-ms': '20' } })
    expect(await t.queueStats(spec)).toMatchObject({ retrying: 0 })
  })

  it('dead letters get a stable id from the body when they have no message id', async () => {
    const t = memory({ broker: new MemoryBroker() })
    const r = recorder(() => ({ kind: 'deadLetter', body: 'dead', cqrsId: 'author', headers: {} }))
    const sub = await t.consume({ ...spec, prefetch: 1, batchSize: 1 }, r.handler)
    await t.publish([{ routingKey: 'author', body: 'x' }])
    await r.until(1)
    await sub.stop()
    const [d] = await t.listDeadLetters(spec, 10)
    expect(d.id).toMatch(/^[0-9a-f]{40}$/)
    expect((await t.listDeadLetters(spec, 10))[0].id).toBe(d.id)
  })

  it('a dead letter stays in the queue when the drain callback fails', async () => {
    const t = memory({ broker: new MemoryBroker(), queues: [spec] })
    await t.publish([{ routingKey: 'cqrs.dead_letter_replica.author', body: 'd', messageId: 'd1' }])
    await expect(t.drainDeadLetters(spec, () => true, async () => Promise.reject(new Error('nope')))).rejects.toThrow('nope')
    expect((await t.listDeadLetters(spec, 10)).map((d) => d.id)).toEqual(['d1'])
  })

  it('hands back the batch of a handler that returns the wrong number of outcomes', async () => {
    const t = memory({ broker: new MemoryBroker(), queues: [spec], logger: silentLogger })
    let calls = 0
    const r = recorder()
    await t.consume({ ...spec, prefetch: 1, batchSize: 1 }, async (batch) => (++calls === 1 ? [] : r.handler(batch)))
    await publish(t, 1)
    const [d] = await r.until(1)
    expect(d.redelivered).toBe(true)
  })

  it('stop() hands buffered messages back to the queue', async () => {
    const t = memory({ broker: new MemoryBroker(), queues: [spec] })
    await publish(t, 5)
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let entered!: () => void
    const inHandler = new Promise<void>((r) => (entered = r))
    const sub = await t.consume({ ...spec, prefetch: 5, batchSize: 1 }, async (batch) => {
      entered()
      await gate
      return batch.map(() => ack)
    })
    await inHandler
    const stopped = sub.stop()
    release()
    await stopped
    expect(await t.queueStats(spec)).toMatchObject({ messages: 4, consumers: 0 })
  })

  it('refuses bad consume options and anything after close()', async () => {
    const t = memory({ broker: new MemoryBroker() })
    await expect(t.consume({ ...spec, prefetch: 0, batchSize: 1 }, recorder().handler)).rejects.toThrow(/prefetch, batchSize and inFlight must be integers >= 1; got prefetch=0/)
    await t.close()
    await expect(t.publish([])).rejects.toThrow(TransportError)
    await expect(t.consume({ ...spec, prefetch: 1, batchSize: 1 }, recorder().handler)).rejects.toThrow(/closed memory transport/)
    expect(t.isConnected()).toBe(false)
  })
})
