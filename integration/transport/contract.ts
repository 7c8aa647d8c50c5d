/**
 * One suite for every transport (drizzle's shared driver tests): what the core relies on, proven
 * against each implementation. Each test uses queues and cqrs_ids with a random suffix, waits for
 * events (never for a fixed time) and closes what it opened; `cleanup` deletes the broker's queues.
 */
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { TransportError } from '../../src/core/errors.js'
import { runtime } from '../../src/transport/runtime-transport.js'
import { eventually } from '../support/compare.js'
import type { BatchHandler, Delivery, OutgoingMessage, Outcome, QueueSpec, Subscription, Transport } from '../../src/transport/types.js'

/** Hooks a transport may need around the shared suite. */
export interface ContractHooks {
  /** Delete what a test declared for `spec` (after its transports are closed). */
  cleanup?: (spec: QueueSpec) => Promise<void>
  /**
   * What a queue keeps in order. `queue` (default; RabbitMQ, memory): everything it receives.
   * `subject`: each routing key on its own (NATS 2.9 reads a queue through one durable consumer per
   * cqrs_id, so a SAVE to all and a SYNC to this queue may pass each other; the apply is
   * version-gated, so the replica ends the same).
   */
  ordering?: 'queue' | 'subject'
}

const ack: Outcome = { kind: 'ack' }

/** A handler that records deliveries and batch sizes, and lets a test wait for the n-th delivery. */
export function inbox(decide: (d: Delivery, seen: number) => Outcome | Promise<Outcome> = () => ack) {
  const deliveries: Delivery[] = []
  const batches: number[] = []
  let waiters: Array<{ n: number; resolve: () => void }> = []
  const handler: BatchHandler = async (batch) => {
    batches.push(batch.length)
    const outcomes: Outcome[] = []
    for (const d of batch) {
      deliveries.push(d)
      outcomes.push(await decide(d, deliveries.length))
    }
    waiters = waiters.filter((w) => (deliveries.length >= w.n ? (w.resolve(), false) : true))
    return outcomes
  }
  const until = async (n: number): Promise<Delivery[]> => {
    if (deliveries.length < n) await new Promise<void>((resolve) => waiters.push({ n, resolve }))
    return deliveries
  }
  const bodies = () => deliveries.map((d) => d.body.toString('utf8'))
  return { handler, deliveries, batches, until, bodies }
}

/** A promise with its resolve function. */
export function deferred<T = void>() {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

/** Run the shared transport suite against `makeTransport()` (a new, unconnected transport per call). */
export function transportContract(name: string, makeTransport: () => Transport, hooks: ContractHooks = {}): void {
  describe(`transport contract: ${name}`, { timeout: 20_000 }, () => {
    const opened: Transport[] = []
    const specs: QueueSpec[] = []

    afterEach(async () => {
      await Promise.allSettled(opened.splice(0).map((t) => t.close()))
      for (const s of specs.splice(0)) await hooks.cleanup?.(s)
    })

    const open = async () => {
      const t = runtime(makeTransport())
      opened.push(t)
      await t.connect()
      return t
    }
    const suffix = () => randomBytes(4).toString('hex')
    const makeSpec = (ids: string[], retryDelaysMs: number[] = [], tag = suffix()): QueueSpec => {
      const spec = { queue: `contract_${tag}_${specs.length}`, cqrsIds: ids.map((id) => `${id}_${tag}`), retryDelaysMs }
      specs.push(spec)
      return spec
    }
    const consume = (t: Transport, spec: QueueSpec, handler: BatchHandler, prefetch = 10, batchSize = 10): Promise<Subscription> =>
      t.consume({ ...spec, prefetch, batchSize }, handler)
    // Messages published before a queue exists are lost (as on RabbitMQ): declare it by consuming once.
    const declare = async (t: Transport, spec: QueueSpec) => (await consume(t, spec, inbox().handler)).stop()
    const message = (routingKey: string, body: string, extra: Partial<OutgoingMessage> = {}): OutgoingMessage => ({ routingKey, body, ...extra })

    it('delivers published messages in order, with message id and headers', async () => {
      const t = await open()
      const spec = makeSpec(['author'])
      const [id] = spec.cqrsIds
      await declare(t, spec)
      await t.publish(Array.from({ length: 20 }, (_, i) => message(id, `{"n":${i}}`, { messageId: `m-${i}`, headers: { 'x-n': i } })))
      const box = inbox()
      await consume(t, spec, box.handler, 5, 4)
      const got = await box.until(20)
      expect(box.bodies()).toEqual(Array.from({ length: 20 }, (_, i) => `{"n":${i}}`))
      expect(got[3]).toMatchObject({ routingKey: id, messageId: 'm-3', redelivered: false, headers: { 'x-n': 3 } })
    })

    it('routes <cqrs_id> to every queue bound to it, and cqrs.<Q>.<cqrs_id> to Q only', async () => {
      const t = await open()
      const tag = suffix()
      const q1 = makeSpec(['a'], [], tag)
      const q2 = makeSpec(['a', 'b'], [], tag)
      const [a, b] = q2.cqrsIds
      const box1 = inbox()
      const box2 = inbox()
      await consume(t, q1, box1.handler, 1, 1)
      await consume(t, q2, box2.handler, 1, 1)
      await t.publish([
        message(a, 'a1'),
        message(b, 'b1'),
        message(`cqrs.${q1.queue}.${a}`, 'direct-q1-a'),
        message(`cqrs.${q1.queue}.${b}`, 'direct-q1-b'), // Q1 does not handle b: nobody gets it
        message(`cqrs.${q2.queue}.${b}`, 'direct-q2-b'),
        message(a, 'end'), // order is kept per queue: once 'end' arrived, nothing else will
      ])
      await box1.until(3)
      await box2.until(4)
      const inOrder = (got: string[], want: string[]) => {
        if (hooks.ordering !== 'subject') return expect(got).toEqual(want)
        expect([...got].sort()).toEqual([...want].sort())
        expect(got.indexOf('a1')).toBeLessThan(got.indexOf('end')) // one routing key keeps its order
      }
      inOrder(box1.bodies(), ['a1', 'direct-q1-a', 'end'])
      inOrder(box2.bodies(), ['a1', 'b1', 'direct-q2-b', 'end'])
      expect(box1.deliveries.find((d) => d.body.toString() === 'direct-q1-a')!.routingKey).toBe(`cqrs.${q1.queue}.${a}`)
      // Nothing more comes (direct-q1-b above all): a last marker on each queue is the next delivery.
      await t.publish([message(`cqrs.${q1.queue}.${a}`, 'last-q1'), message(`cqrs.${q2.queue}.${a}`, 'last-q2')])
      expect((await box1.until(4)).slice(3).map((d) => d.body.toString())).toEqual(['last-q1'])
      expect((await box2.until(5)).slice(4).map((d) => d.body.toString())).toEqual(['last-q2'])
    })

    it('hands over batches of at most batchSize, in order', async () => {
      const t = await open()
      const spec = makeSpec(['author'])
      await declare(t, spec)
      await t.publish(Array.from({ length: 10 }, (_, i) => message(spec.cqrsIds[0], `${i}`)))
      const box = inbox()
      await consume(t, spec, box.handler, 10, 3)
      await box.until(10)
      expect(Math.max(...box.batches)).toBeLessThanOrEqual(3)
      expect(box.batches.reduce((s, n) => s + n, 0)).toBe(10)
      expect(box.bodies()).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
    })

    it('a retry comes back after its delay, to cqrs.<Q>.<cqrs_id>, with its headers', async () => {
      const t = await open()
      const spec = makeSpec(['author'], [300])
      const [id] = spec.cqrsIds
      const times: number[] = []
      const box = inbox((d, seen) => {
        times.push(Date.now())
        if (seen > 1) return ack
        return { kind: 'retry', delayMs: 300, body: '{"retries":1}', cqrsId: id, headers: { 'x-trace': 'abc', 'x-count': 1 } }
      })
      await consume(t, spec, box.handler)
      await t.publish([message(id, '{"retries":0}', { messageId: 'r-1' })])
      const [, second] = await box.until(2)
      expect(times[1] - times[0]).toBeGreaterThanOrEqual(250)
      expect(second).toMatchObject({ routingKey: `cqrs.${spec.queue}.${id}`, messageId: 'r-1', headers: { 'x-trace': 'abc', 'x-count': 1 } })
      expect(second.body.toString()).toBe('{"retries":1}')
    })

    it('retries a message more than once, even when the handler passes the delivery headers back', async () => {
      const t = await open()
      const spec = makeSpec(['author'], [50])
      const [id] = spec.cqrsIds
      const box = inbox((d, seen) =>
        seen < 3 ? { kind: 'retry', delayMs: 50, body: `{"retries":${seen}}`, cqrsId: id, headers: d.headers as Record<string, string> } : ack,
      )
      await consume(t, spec, box.handler)
      await t.publish([message(id, '{"retries":0}')])
      await box.until(3)
      expect(box.bodies()).toEqual(['{"retries":0}', '{"retries":1}', '{"retries":2}'])
    })

    it('a dead letter lands in dead_letter_<Q>: listed without removing, drained, re-published', async () => {
      const t = await open()
      const spec = makeSpec(['author'])
      const [id] = spec.cqrsIds
      const box = inbox((d) => ({ kind: 'deadLetter', body: d.body.toString(), cqrsId: id, headers: { 'x-error': 'boom' } }))
      const sub = await consume(t, spec, box.handler)
      await t.publish([message(id, 'one', { messageId: 'dl-1' }), message(id, 'two', { messageId: 'dl-2' })])
      await box.until(2)
      await sub.stop() // the dead letters were confirmed before the originals were acked
      const listed = await t.listDeadLetters!(spec, 10)
      expect(listed.map((d) => d.id)).toEqual(['dl-1', 'dl-2'])
      expect(listed[0]).toMatchObject({ routingKey: `cqrs.dead_letter_${spec.queue}.${id}`, body: 'one', headers: { 'x-error': 'boom' } })
      expect(await t.listDeadLetters!(spec, 10)).toEqual(listed)
      expect(await t.listDeadLetters!(spec, 1)).toEqual(listed.slice(0, 1))
      // A quorum queue counts messages handed back by the listing a moment later: await the count.
      if (t.queueStats) {
        const stats = t.queueStats
        await eventually(async () => {
          const s = await stats(spec)
          return s.queue === spec.queue && s.messages === 0 && s.deadLettered === 2 ? [] : [JSON.stringify(s)]
        }, 10_000, 'queueStats to count the two dead letters')
      }

      const republish = (d: { body: string }) => t.publish([message(`cqrs.${spec.queue}.${id}`, d.body)])
      expect(await t.drainDeadLetters!(spec, (d) => d.id === 'dl-1', republish)).toBe(1)
      expect((await t.listDeadLetters!(spec, 10)).map((d) => d.id)).toEqual(['dl-2'])
      const again = inbox()
      await consume(t, spec, again.handler)
      expect((await again.until(1))[0].body.toString()).toBe('one')
    })

    it("a drain stops at the first failure of its callback and leaves that dead letter in the queue", async () => {
      const t = await open()
      const spec = makeSpec(['author'])
      const [id] = spec.cqrsIds
      await declare(t, spec)
      await t.publish(['d1', 'd2', 'd3'].map((m) => message(`cqrs.dead_letter_${spec.queue}.${id}`, m, { messageId: m })))
      const seen: string[] = []
      const fn = async (d: { id: string }) => {
        seen.push(d.id)
        if (d.id === 'd2') throw new Error('cannot re-publish d2')
      }
      await expect(t.drainDeadLetters!(spec, () => true, fn)).rejects.toThrow('cannot re-publish d2')
      expect(seen).toEqual(['d1', 'd2'])
      expect((await t.listDeadLetters!(spec, 10)).map((d) => d.id)).toEqual(['d2', 'd3'])
    })

    it('stop() waits for the batch in flight, whose messages are acked', async () => {
      const t = await open()
      const spec = makeSpec(['author'])
      const [id] = spec.cqrsIds
      const entered = deferred()
      const events: string[] = []
      const sub = await consume(t, spec, async (batch) => {
        entered.resolve()
        // A slow handler (not a wait for something to happen): a stop() that did not wait would win.
        await new Promise((r) => setTimeout(r, 300))
        events.push('handled')
        return batch.map(() => ack)
      })
      await t.publish([message(id, 'first')])
      await entered.promise
      await sub.stop().then(() => events.push('stopped'))
      expect(events).toEqual(['handled', 'stopped'])
      // Had 'first' not been acked, it would come back before the marker.
      await t.publish([message(id, 'marker')])
      const box = inbox()
      await consume(t, spec, box.handler)
      await box.until(1)
      expect(box.bodies()).toEqual(['marker'])
    })

    it('acks nothing before the handler resolves: a batch whose handler throws is delivered again', async () => {
      const t = await open()
      const spec = makeSpec(['author'])
      const [id] = spec.cqrsIds
      let calls = 0
      const box = inbox()
      await consume(t, spec, async (batch) => {
        if (++calls === 1) throw new Error('handler bug (expected by the test)')
        return box.handler(batch)
      })
      await t.publish([message(id, 'again')])
      const [d] = await box.until(1)
      expect(d).toMatchObject({ redelivered: true })
      expect(d.body.toString()).toBe('again')
    })

    it('counts retries waiting in queueStats', async () => {
      const t = await open()
      if (!t.queueStats) return
      const spec = makeSpec(['author'], [60_000])
      const [id] = spec.cqrsIds
      const box = inbox(() => ({ kind: 'retry', delayMs: 60_000, body: 'later', cqrsId: id, headers: {} }))
      const sub = await consume(t, spec, box.handler)
      await t.publish([message(id, 'later')])
      await box.until(1)
      await sub.stop()
      // A quorum queue forgets a cancelled consumer through its Raft log, a moment after cancel-ok: await the count.
      const stats = t.queueStats
      const want = { queue: spec.queue, messages: 0, consumers: 0, retrying: 1, deadLettered: 0 }
      await eventually(async () => {
        const s = await stats(spec)
        return JSON.stringify(s) === JSON.stringify(want) ? [] : [JSON.stringify(s)]
      }, 10_000, 'queueStats to count one retry and no consumer')
    })

    it('publish() after close() throws a TransportError', async () => {
      const t = makeTransport()
      await t.connect()
      await t.close()
      await expect(t.publish([message('x', 'y')])).rejects.toThrow(TransportError)
    })
  })
}
