import type { Channel, GetMessage } from 'amqplib'
import { deadLetterId, deadLetterQueueName } from '../queue-names.js'
import type { DeadLetter } from '../types.js'
import { declareTopology } from './declare-topology.js'
import { deadLetterPlan, type QueueType } from './topology.js'

// Dead letters are read with basic.get on a channel of their own: whatever is not acked goes back
// to the queue, unchanged, when the caller closes that channel. A classic queue puts returned
// messages back in place; a quorum queue puts them at its tail. So on a quorum queue every message
// present is taken before any goes back, and the queue keeps its order.

/** Read up to `limit` dead letters of `queue` without acking them. */
export async function readDeadLetters(ch: Channel, queue: string, exchange: string, limit: number, queueType: QueueType = 'classic'): Promise<DeadLetter[]> {
  await declareTopology(ch, deadLetterPlan(queue, exchange, queueType))
  const name = deadLetterQueueName(queue)
  const found: DeadLetter[] = []
  for (let i = 0; i < limit; i++) {
    const m = await ch.get(name, { noAck: false })
    if (!m) break
    found.push(toDeadLetter(m))
  }
  if (queueType === 'quorum' && found.length === limit) await holdTheRest(ch, name)
  return found
}

// Take (unacked) every message still in the queue, so that all go back together, in order.
async function holdTheRest(ch: Channel, name: string): Promise<void> {
  const { messageCount } = await ch.checkQueue(name)
  for (let i = 0; i < messageCount; i++) if (!(await ch.get(name, { noAck: false }))) break
}

/** What {@link takeDeadLetters} did: how many it took, and the error of `select` or `fn` that stopped it, if any. */
export interface TakeResult {
  taken: number
  failure?: { error: unknown }
}

/**
 * Go through the dead letters present at the start; ack those `select` accepts once `fn` succeeded
 * for them; nack the others back. Stops at the first error of `select` or `fn`, leaving that one in the queue.
 */
export async function takeDeadLetters(
  ch: Channel,
  queue: string,
  exchange: string,
  select: (d: DeadLetter) => boolean,
  fn: (d: DeadLetter) => Promise<void>,
  queueType: QueueType = 'classic',
): Promise<TakeResult> {
  await declareTopology(ch, deadLetterPlan(queue, exchange, queueType))
  const name = deadLetterQueueName(queue)
  const { messageCount } = await ch.checkQueue(name)
  const result: TakeResult = { taken: 0 }
  // Held unacked until the end, so get() does not hand us the ones we passed over again.
  for (let i = 0; i < messageCount; i++) {
    const m = await ch.get(name, { noAck: false })
    if (!m) break
    const d = toDeadLetter(m)
    try {
      if (!select(d)) continue
      await fn(d)
    } catch (error) {
      result.failure = { error }
      if (queueType === 'quorum') await holdTheRest(ch, name)
      break
    }
    ch.ack(m)
    result.taken++
  }
  ch.nackAll(true)
  return result
}

function toDeadLetter(m: GetMessage): DeadLetter {
  // x-delivery-count is a quorum queue's count of our own gets: bookkeeping, not the dead letter's.
  const { 'x-delivery-count': _count, ...headers } = m.properties.headers ?? {}
  return {
    id: deadLetterId(m.properties.messageId, m.content),
    routingKey: m.fields.routingKey,
    body: m.content.toString('utf8'),
    headers,
  }
}
