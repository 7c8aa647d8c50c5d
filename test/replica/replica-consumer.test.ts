import { describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { encodeMessage } from '../../src/core/message.js'
import { cqrsMessage } from '../../integration/support/messages.js'
import { ReplicaConsumer } from '../../src/replica/replica-consumer.js'
import type { ReplicaStore } from '../../src/replica/replica-store.js'
import type { ApplyOp, ApplyResult, TableTarget, TargetColumn } from '../../src/replica/apply-op.js'
import type { Delivery } from '../../src/transport/types.js'

const delivery = (id: number): Delivery => {
  const m = cqrsMessage('SAVE', 'note', { id, cqrs_revision: id })
  return { body: Buffer.from(encodeMessage(m)), routingKey: 'note', headers: {}, redelivered: false }
}

const col = (column: string): TargetColumn => ({ column, field: column, kind: 'Int', required: true })
const target: TableTarget = { cqrsId: 'note', table: 'note', pk: col('id'), revision: col('cqrs_revision'), updated: null, byKey: new Map([['id', col('id')]]) }

/** A store whose applyBatch calls wait until the test lets them finish. */
function heldStore(concurrentBatches: boolean) {
  const calls: Array<{ pks: unknown[]; finish: () => void }> = []
  let called: () => void = () => {}
  const store = {
    concurrentBatches,
    applyBatch: (_: TableTarget, ops: ApplyOp[]) =>
      new Promise<ApplyResult[]>((resolve) => {
        calls.push({ pks: ops.map((o) => o.pk), finish: () => resolve(ops.map(() => 'applied')) })
        called()
      }),
  } as unknown as ReplicaStore
  /** Resolves once applyBatch has been called `n` times. */
  const callsReach = (n: number) => new Promise<void>((resolve) => (called = () => calls.length >= n && resolve()))
  return { store, calls, callsReach }
}

describe('the replica consumer', () => {
  it('starts the next batch of a table replica while one commits where the store allows two at once', async () => {
    const { store, calls, callsReach } = heldStore(true)
    const consumer = new ReplicaConsumer({ queue: 'q', routes: new Map([['note', { kind: 'table', target }]]), store, maxRetries: 0, delaysMs: [], honorExpires: false, logger: silentLogger })
    const both = callsReach(2)
    const done = Promise.all([consumer.handle([delivery(1), delivery(2)]), consumer.handle([delivery(3)])])
    await both // the second batch reached the store while the first was still held
    expect(calls.map((c) => c.pks)).toEqual([[1, 2], [3]])
    calls[1].finish()
    calls[0].finish()
    expect((await done).flat().map((o) => o.kind)).toEqual(['ack', 'ack', 'ack'])
  })

  it('applies a table replica batch after the one before it where the store allows one at a time', async () => {
    const { store, calls, callsReach } = heldStore(false)
    const consumer = new ReplicaConsumer({ queue: 'q', routes: new Map([['note', { kind: 'table', target }]]), store, maxRetries: 0, delaysMs: [], honorExpires: false, logger: silentLogger })
    const first = callsReach(1)
    const done = Promise.all([consumer.handle([delivery(1), delivery(2)]), consumer.handle([delivery(3)])])
    await first
    // Give the second batch every chance to overtake: it has decoded long before these turns end.
    for (let i = 0; i < 20; i++) await new Promise(setImmediate)
    expect(calls.map((c) => c.pks)).toEqual([[1, 2]])
    const second = callsReach(2)
    calls[0].finish()
    await second
    calls[1].finish()
    expect((await done).flat().map((o) => o.kind)).toEqual(['ack', 'ack', 'ack'])
  })

  it.each([false, true])('applies batches handed over together in the order they came, however long each takes to decode (custom handler; concurrentBatches %s)', async (concurrentBatches) => {
    const applied: number[] = []
    const consumer = new ReplicaConsumer({
      queue: 'q',
      routes: new Map([['note', { kind: 'custom', handle: async (m) => void applied.push(Number(m.instance_pk)) }]]),
      store: { concurrentBatches } as ReplicaStore,
      maxRetries: 0,
      delaysMs: [],
      honorExpires: false,
      logger: silentLogger,
    })
    // A long batch (its decode yields to the event loop between slices), then a short one handed over
    // while the first still decodes, as a transport with two batches in flight does.
    const long = Array.from({ length: 300 }, (_, i) => delivery(i + 1))
    const short = [delivery(1000)]
    const outcomes = await Promise.all([consumer.handle(long), consumer.handle(short)])
    expect(outcomes.flat().every((o) => o.kind === 'ack')).toBe(true)
    expect(applied).toEqual([...long.map((_, i) => i + 1), 1000])
  })
})
