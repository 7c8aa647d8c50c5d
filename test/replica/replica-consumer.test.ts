import { describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { encodeMessage } from '../../src/core/message.js'
import { cqrsMessage } from '../../integration/support/messages.js'
import { ReplicaConsumer } from '../../src/replica/replica-consumer.js'
import type { ReplicaStore } from '../../src/replica/replica-store.js'
import type { Delivery } from '../../src/transport/types.js'

const delivery = (id: number): Delivery => {
  const m = cqrsMessage('SAVE', 'note', { id, cqrs_revision: id })
  return { body: Buffer.from(encodeMessage(m)), routingKey: 'note', headers: {}, redelivered: false }
}

describe('the replica consumer', () => {
  it('applies batches handed over together in the order they came, however long each takes to decode', async () => {
    const applied: number[] = []
    const consumer = new ReplicaConsumer({
      queue: 'q',
      routes: new Map([['note', { kind: 'custom', handle: async (m) => void applied.push(Number(m.instance_pk)) }]]),
      store: {} as ReplicaStore,
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
