/**
 * A test's own view of RabbitMQ, through amqplib directly (not through the transport under test):
 * a queue bound to the `cqrs` exchange with routing keys unique to the test, that records every
 * message it receives. Tests wait for messages (`until`) instead of sleeping, and `barrier()` proves
 * that nothing else is on its way: a sentinel published after everything the test expects arrives
 * behind it, because a confirmed message is already in the queue and the queue is FIFO.
 */
import { randomBytes } from 'node:crypto'
import amqp, { type ConfirmChannel, type ConsumeMessage, type MessageFields, type MessageProperties } from 'amqplib'
import { AMQP_URL } from './databases.js'

export const EXCHANGE = 'cqrs'

/** A fresh lowercase suffix, e.g. for `author_<suffix>` cqrs_ids that no other test binds. */
export const uniqueSuffix = () => randomBytes(5).toString('hex')

export interface Received {
  routingKey: string
  fields: MessageFields
  properties: MessageProperties
  /** The raw body, as published. */
  text: string
  /** The parsed body (numbers above 2^53 lose digits: tests here do not use them). */
  body: any
}

export interface TestQueue {
  name: string
  /** Every message received so far, in arrival order (sentinels left out). */
  readonly received: Received[]
  /** Resolves with `received` once at least `n` messages arrived; rejects after `timeoutMs` saying how many did. */
  until(n: number, timeoutMs?: number): Promise<Received[]>
  /** Resolves once `pred(received)` holds; checked on every arrival. */
  untilMatch(pred: (received: Received[]) => boolean, what: string, timeoutMs?: number): Promise<Received[]>
  /**
   * Publish a sentinel (confirmed) and wait for it: every message confirmed before this call has
   * then been received. Use after `$cqrs.flush()` to count exactly, duplicates included.
   */
  barrier(timeoutMs?: number): Promise<Received[]>
  /** Stop consuming, delete the queue, close the connection. */
  delete(): Promise<void>
}

/**
 * Declare a queue bound to `bindings` (routing keys in the `cqrs` exchange) and consume it.
 * The exchange is declared as the transport declares it (topic, durable).
 */
export async function testQueue(bindings: string[], label = 'test'): Promise<TestQueue> {
  const conn = await amqp.connect(AMQP_URL)
  conn.on('error', () => {})
  const ch: ConfirmChannel = await conn.createConfirmChannel()
  await ch.assertExchange(EXCHANGE, 'topic', { durable: true })
  const name = `cqrs_test_${label}_${uniqueSuffix()}`
  const sentinelKey = `${name}.sentinel`
  await ch.assertQueue(name, { durable: false, exclusive: false, autoDelete: false })
  for (const key of [...bindings, sentinelKey]) await ch.bindQueue(name, EXCHANGE, key)

  const received: Received[] = []
  const sentinels = new Set<string>()
  let waiters: Array<() => void> = []
  const notify = () => {
    const w = waiters
    waiters = []
    for (const f of w) f()
  }
  const { consumerTag } = await ch.consume(
    name,
    (m: ConsumeMessage | null) => {
      if (!m) return
      const text = m.content.toString('utf8')
      if (m.fields.routingKey === sentinelKey) sentinels.add(text)
      else {
        let body: unknown
        try {
          body = JSON.parse(text)
        } catch {
          body = undefined
        }
        received.push({ routingKey: m.fields.routingKey, fields: m.fields, properties: m.properties, text, body })
      }
      notify()
    },
    { noAck: true },
  )

  const waitFor = (ok: () => boolean, describe: () => string, timeoutMs: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (ok()) {
          clearTimeout(timer)
          resolve()
        } else waiters.push(check)
      }
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w !== check)
        reject(new Error(`queue ${name}: ${describe()} after ${timeoutMs} ms (received ${received.length})`))
      }, timeoutMs)
      check()
    })

  let deleted = false
  return {
    name,
    received,
    async until(n, timeoutMs = 45_000) {
      await waitFor(() => received.length >= n, () => `expected ${n} messages`, timeoutMs)
      return received
    },
    async untilMatch(pred, what, timeoutMs = 45_000) {
      await waitFor(() => pred(received), () => `still waiting for ${what}`, timeoutMs)
      return received
    },
    async barrier(timeoutMs = 45_000) {
      const token = randomBytes(8).toString('hex')
      ch.publish(EXCHANGE, sentinelKey, Buffer.from(token))
      await ch.waitForConfirms()
      await waitFor(() => sentinels.has(token), () => 'the sentinel did not arrive', timeoutMs)
      return received
    },
    async delete() {
      if (deleted) return
      deleted = true
      await ch.cancel(consumerTag).catch(() => {})
      const gone = await ch.deleteQueue(name).then(
        () => true,
        () => false,
      )
      await conn.close().catch(() => {})
      if (!gone) await deleteQueues([name]) // the channel died (broker hiccup): delete on a fresh connection
    },
  }
}

/** Delete queues on a connection of its own (cleanup that must not depend on a test's channel). */
export async function deleteQueues(names: string[]): Promise<void> {
  const conn = await amqp.connect(AMQP_URL)
  conn.on('error', () => {})
  try {
    for (const n of names) {
      const ch = await conn.createChannel()
      ch.on('error', () => {})
      await ch.deleteQueue(n).catch(() => {})
      await ch.close().catch(() => {})
    }
  } finally {
    await conn.close().catch(() => {})
  }
}

/** The events per pk in arrival order: `{ pk -> [revision, ...] }` (DELETE counts with its revision). */
export function revisionsByPk(received: Received[]): Map<string, number[]> {
  const out = new Map<string, number[]>()
  for (const r of received) {
    const pk = String(r.body.instance_pk)
    const list = out.get(pk) ?? []
    list.push(r.body.instance_data.cqrs_revision)
    out.set(pk, list)
  }
  return out
}

/** `pk:revision:signal` keys of the received events with how many times each arrived. */
export function eventCounts(received: Received[]): Map<string, number> {
  const out = new Map<string, number>()
  for (const r of received) {
    const k = `${r.body.instance_pk}:${r.body.instance_data.cqrs_revision}:${r.body.signal_type}`
    out.set(k, (out.get(k) ?? 0) + 1)
  }
  return out
}

/**
 * A `untilMatch` predicate: every event of `expected` (`pk:revision:signal` keys) arrived, copies
 * allowed. Cheap until enough messages came (it runs on each one), then one pass.
 */
export function allArrived(expected: Set<string>): (received: Received[]) => boolean {
  return (received) => {
    if (received.length < expected.size) return false
    const counts = eventCounts(received)
    for (const k of expected) if (!counts.has(k)) return false
    return true
  }
}
