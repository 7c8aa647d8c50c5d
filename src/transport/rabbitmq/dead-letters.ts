import type { Channel, GetMessage } from 'amqplib'
import { deadLetterId, deadLetterQueueName } from '../queue-names.js'
import type { DeadLetter } from '../types.js'
import { declareTopology } from './declare-topology.js'
import { deadLetterPlan } from './topology.js'

// Dead letters are read with basic.get on a channel of their own: whatever is not acked goes back
// to the queue, in place and unchanged, when the caller closes that channel.

/** Read up to `limit` dead letters of `queue` without acking them. */
export async function readDeadLetters(ch: Channel, queue: string, exchange: string, limit: number): Promise<DeadLetter[]> {
  await declareTopology(ch, deadLetterPlan(queue, exchange))
  const found: DeadLetter[] = []
  for (let i = 0; i < limit; i++) {
    const m = await ch.get(deadLetterQueueName(queue), { noAck: false })
    if (!m) break
    found.push(toDeadLetter(m))
  }
  return found
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
): Promise<TakeResult> {
  await declareTopology(ch, deadLetterPlan(queue, exchange))
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
      break
    }
    ch.ack(m)
    result.taken++
  }
  ch.nackAll(true)
  return result
}

function toDeadLetter(m: GetMessage): DeadLetter {
  return {
    id: deadLetterId(m.properties.messageId, m.content),
    routingKey: m.fields.routingKey,
    body: m.content.toString('utf8'),
    headers: m.properties.headers ?? {},
  }
}
