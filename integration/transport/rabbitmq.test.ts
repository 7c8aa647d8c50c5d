import { randomBytes } from 'node:crypto'
import { Socket } from 'node:net'
import amqp, { type ChannelModel } from 'amqplib'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { TransportError } from '../../src/core/errors.js'
import type { Logger } from '../../src/core/logger.js'
import { rabbitmq, RabbitmqTransport, topologyPlan, type RabbitmqOptions } from '../../src/transport/rabbitmq/index.js'
import type { QueueSpec } from '../../src/transport/types.js'
import { deferred, inbox, transportContract } from './contract.js'

const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }

// The tests inspect and clean up the broker over a plain connection of their own.
let admin: ChannelModel
beforeAll(async () => {
  admin = await amqp.connect(AMQP_URL)
})
afterAll(async () => {
  await admin?.close()
})

async function deleteTopology(spec: QueueSpec): Promise<void> {
  const ch = await admin.createChannel()
  for (const q of topologyPlan(spec).queues) await ch.deleteQueue(q.name)
  await ch.close()
}

transportContract('rabbitmq', () => rabbitmq({ url: AMQP_URL, logger: quiet }), { cleanup: deleteTopology })
transportContract('rabbitmq (quorum queues)', () => rabbitmq({ url: AMQP_URL, logger: quiet, queueType: 'quorum' }), { cleanup: deleteTopology })

describe('rabbitmq transport', { timeout: 20_000 }, () => {
  const opened: RabbitmqTransport[] = []
  const specs: QueueSpec[] = []
  afterEach(async () => {
    await Promise.allSettled(opened.splice(0).map((t) => t.close()))
    for (const s of specs.splice(0)) await deleteTopology(s)
  })
  const open = async (options: RabbitmqOptions = {}) => {
    const t = rabbitmq({ url: AMQP_URL, logger: quiet, ...options })
    opened.push(t)
    await t.connect()
    return t
  }
  const makeSpec = (retryDelaysMs: number[] = []): QueueSpec => {
    const tag = randomBytes(4).toString('hex')
    const spec = { queue: `rabbit_${tag}`, cqrsIds: [`author_${tag}`], retryDelaysMs }
    specs.push(spec)
    return spec
  }
  const declare = async (t: RabbitmqTransport, spec: QueueSpec) => (await t.consume({ ...spec, prefetch: 1, batchSize: 1 }, inbox().handler)).stop()
  const getOne = async (queue: string) => {
    const ch = await admin.createChannel()
    const m = await ch.get(queue, { noAck: true })
    await ch.close()
    if (!m) throw new Error(`queue ${queue} is empty`)
    return m
  }

  // amqplib leaves Nagle's algorithm on unless told. Then an ack or a publish written while an earlier
  // segment waits for TCP's acknowledgement is held back, up to the broker's delayed ACK (40 ms on
  // Linux): a consumer's acks, and so a publisher's confirms, came tens of ms late (BENCHMARKS.md).
  it("turns Nagle's algorithm off on its connection", async () => {
    const setNoDelay = vi.spyOn(Socket.prototype, 'setNoDelay')
    try {
      const t = await open()
      const socket = (t.amqpConnection as unknown as { connection: { stream: Socket } }).connection.stream
      const calls = setNoDelay.mock.calls.filter((_, i) => setNoDelay.mock.contexts[i] === socket)
      expect(calls.length).toBeGreaterThan(0)
      expect(calls.at(-1)![0]).toBe(true)
    } finally {
      setNoDelay.mockRestore()
    }
  })

  // With Nagle off, each message written on its own would be a TCP segment of its own, which the
  // broker reads on its own: a batch must leave in a few writes, not one per message.
  it('writes a batch of messages to the socket in a few writes, not one per message', async () => {
    const t = await open()
    const socket = (t.amqpConnection as unknown as { connection: { stream: Socket } }).connection.stream as Socket & { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void }
    const write = vi.spyOn(socket, '_write')
    const writev = vi.spyOn(socket, '_writev')
    // 64 or more: a relay draining a backlog (a few, as at a steady rate, go one by one).
    const messages = Array.from({ length: 100 }, (_, i) => ({ routingKey: `nobody_${randomBytes(4).toString('hex')}`, body: JSON.stringify({ i, pad: 'x'.repeat(60) }), messageId: String(i) }))
    await (await t.send(messages)).confirmed
    const writes = write.mock.calls.length + writev.mock.calls.length
    expect(writes).toBeGreaterThan(0)
    expect(writes).toBeLessThan(10)
  })

  // A batch bigger than the confirm window (a pipelined relay's second batch, sent while the first
  // awaits its confirms) goes out as confirms free the window, a few messages at a time: those must
  // leave together too, not one write each once the first round has gone.
  it('writes a batch that waits for room in the confirm window in few writes, not one per message', async () => {
    const t = await open({ publishConfirmWindow: 100 })
    const socket = (t.amqpConnection as unknown as { connection: { stream: Socket } }).connection.stream as Socket & { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void }
    const write = vi.spyOn(socket, '_write')
    const writev = vi.spyOn(socket, '_writev')
    const n = 2000
    const messages = Array.from({ length: n }, (_, i) => ({ routingKey: `nobody_${randomBytes(4).toString('hex')}`, body: JSON.stringify({ i, pad: 'x'.repeat(60) }), messageId: String(i) }))
    await (await t.send(messages)).confirmed
    const writes = write.mock.calls.length + writev.mock.calls.length
    const single = write.mock.calls.length
    expect(writes).toBeGreaterThan(0)
    // Each write carries the messages the confirms before it made room for: far fewer writes than messages.
    expect(writes, `${writes} writes (${single} of one chunk) for ${n} messages`).toBeLessThan(n / 10)
  })

  it('a retry waits in the broker and survives a consumer restart', async () => {
    const t = await open()
    const spec = makeSpec([1500])
    const [id] = spec.cqrsIds
    const first = inbox(() => ({ kind: 'retry', delayMs: 1500, body: '{"retries":1}', cqrsId: id, headers: { 'x-trace': 't' } }))
    const sub = await t.consume({ ...spec, prefetch: 1, batchSize: 1 }, first.handler)
    await t.publish([{ routingKey: id, body: '{"retries":0}' }])
    await first.until(1)
    await sub.stop()
    expect((await t.queueStats(spec)).retrying).toBe(1)

    const second = inbox()
    await t.consume({ ...spec, prefetch: 1, batchSize: 1 }, second.handler)
    const [d] = await second.until(1)
    expect(d.routingKey).toBe(`cqrs.${spec.queue}.${id}`)
    expect(d.body.toString()).toBe('{"retries":1}')
    expect(d.headers).toMatchObject({ 'x-trace': 't', 'cqrs-delay-queue': spec.queue, 'cqrs-delay-ms': '1500' })
  })

  it("a retry waits only in its own queue's delay queue (not in another replica's with the same delay)", async () => {
    const t = await open()
    const mine = makeSpec([1500])
    const other = makeSpec([1500])
    await declare(t, other)
    const [id] = mine.cqrsIds
    const box = inbox(() => ({ kind: 'retry', delayMs: 1500, body: 'again', cqrsId: id, headers: {} }))
    const sub = await t.consume({ ...mine, prefetch: 1, batchSize: 1 }, box.handler)
    await t.publish([{ routingKey: id, body: 'first' }])
    await box.until(1)
    await sub.stop()
    expect((await t.queueStats(mine)).retrying).toBe(1)
    expect((await t.queueStats(other)).retrying).toBe(0)
  })

  it('publishes persistent messages with django-cqrs compatible properties', async () => {
    const t = await open()
    const spec = makeSpec()
    const [id] = spec.cqrsIds
    await declare(t, spec)
    const before = Math.floor(Date.now() / 1000)
    await t.publish([{ routingKey: id, body: '{"signal_type":"SAVE"}', messageId: '42', headers: { 'x-h': 1 } }])
    const m = await getOne(spec.queue)
    expect(m.fields).toMatchObject({ exchange: 'cqrs', routingKey: id })
    expect(m.properties).toMatchObject({ deliveryMode: 2, contentType: 'application/json', messageId: '42', headers: { 'x-h': 1 } })
    expect(m.properties.timestamp).toBeGreaterThanOrEqual(before)
    expect(m.content.toString()).toBe('{"signal_type":"SAVE"}')
  })

  it('dead letters are persistent and expire only when deadLetterExpirationMs is set', async () => {
    const t = await open({ deadLetterExpirationMs: 864_000_000 })
    const spec = makeSpec()
    const [id] = spec.cqrsIds
    const box = inbox(() => ({ kind: 'deadLetter', body: 'dead', cqrsId: id, headers: {} }))
    const sub = await t.consume({ ...spec, prefetch: 1, batchSize: 1 }, box.handler)
    await t.publish([{ routingKey: id, body: 'x', messageId: 'd-1' }])
    await box.until(1)
    await sub.stop()
    const m = await getOne(`dead_letter_${spec.queue}`)
    expect(m.fields.routingKey).toBe(`cqrs.dead_letter_${spec.queue}.${id}`)
    expect(m.properties).toMatchObject({ deliveryMode: 2, expiration: '864000000', messageId: 'd-1' })
  })

  it('publish fails fast while the connection is down, then reconnects and resumes consumers by itself', async () => {
    const lost = deferred()
    const back = deferred()
    const logger: Logger = {
      ...quiet,
      warn: (msg) => msg.startsWith('lost the connection') && lost.resolve(),
      info: (msg) => msg.startsWith('reconnected') && back.resolve(),
    }
    const t = await open({ logger, reconnect: { initialMs: 50, maxMs: 200 } })
    const spec = makeSpec()
    const [id] = spec.cqrsIds
    const box = inbox()
    await t.consume({ ...spec, prefetch: 1, batchSize: 1 }, box.handler)

    breakConnection(t)
    await lost.promise
    expect(t.isConnected()).toBe(false)
    await expect(t.publish([{ routingKey: id, body: 'during' }])).rejects.toThrow(/not connected to RabbitMQ at amqp:\/\/guest:\*\*\*@/)

    await back.promise
    expect(t.isConnected()).toBe(true)
    await t.publish([{ routingKey: id, body: 'after' }])
    expect((await box.until(1)).map((d) => d.body.toString())).toEqual(['after'])
  })

  it('a publish in flight when the connection drops rejects with a TransportError', async () => {
    const t = await open({ reconnect: { initialMs: 50, maxMs: 200 } })
    const spec = makeSpec()
    await declare(t, spec)
    const publishing = t.publish(Array.from({ length: 500 }, (_, i) => ({ routingKey: spec.cqrsIds[0], body: `${i}` })))
    breakConnection(t)
    await expect(publishing).rejects.toThrow(TransportError)
  })

  it('consume() on a queue declared with other arguments says what to do', async () => {
    const t = await open()
    const spec = makeSpec()
    const ch = await admin.createChannel()
    await ch.assertQueue(spec.queue, { durable: true, arguments: { 'x-max-priority': 5 } })
    await ch.close()
    await expect(t.consume({ ...spec, prefetch: 1, batchSize: 1 }, inbox().handler)).rejects.toThrow(
      /cannot consume queue 'rabbit_\w+' \(.*PRECONDITION_FAILED.*\); a queue of that name exists with other arguments/,
    )
    expect(t.isConnected()).toBe(true) // only the consumer's channel died
    await t.publish([{ routingKey: spec.cqrsIds[0], body: 'still works' }])
  })

  it('quorum queues: the replica, delay and dead-letter queues are declared quorum', async () => {
    const t = await open({ queueType: 'quorum' })
    const spec = makeSpec([200])
    await declare(t, spec)
    // Redeclaring with classic arguments fails only when the queue is of another type.
    for (const q of topologyPlan(spec, 'cqrs', 'quorum').queues) {
      const ch = await admin.createChannel()
      ch.on('error', () => {})
      const err = await ch.assertQueue(q.name, { durable: true, arguments: { ...q.arguments, 'x-queue-type': 'classic' } }).catch((e: Error) => e)
      expect(String(err)).toMatch(/x-queue-type/)
    }
  })

  it('a classic queue redeclared as quorum: the error says it cannot change type and how to move it', async () => {
    const classic = await open()
    const spec = makeSpec()
    await declare(classic, spec)
    const quorum = await open({ queueType: 'quorum' })
    const err = await quorum.consume({ ...spec, prefetch: 1, batchSize: 1 }, inbox().handler).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TransportError)
    expect((err as Error).message).toMatch(
      /cannot consume queue 'rabbit_\w+' \(.*x-queue-type.*\); a classic queue of that name exists, and rabbitmq\(\{ queueType: 'quorum' \}\) declares quorum queues; RabbitMQ cannot change a queue's type\. Either keep queueType: 'classic', or move the queue: .*\(README, "Transports and clusters"\)/,
    )
  })

  it('queueStats counts a queue that does not exist as empty', async () => {
    const t = await open()
    const tag = randomBytes(4).toString('hex')
    expect(await t.queueStats({ queue: `missing_${tag}`, cqrsIds: [], retryDelaysMs: [10] })).toEqual({
      queue: `missing_${tag}`,
      messages: 0,
      consumers: 0,
      retrying: 0,
      deadLettered: 0,
    })
  })

  it('a publish channel killed by the broker is replaced on the next publish', async () => {
    const exchange = `cqrs_test_${randomBytes(4).toString('hex')}`
    const t = await open({ exchange })
    await t.publish([{ routingKey: 'x', body: '1' }])
    const ch = await admin.createChannel()
    await ch.deleteExchange(exchange)
    // Publishing to a missing exchange makes RabbitMQ close the channel (404).
    await expect(t.publish([{ routingKey: 'x', body: '2' }])).rejects.toThrow(TransportError)
    await t.publish([{ routingKey: 'x', body: '3' }]) // a new channel declares the exchange again
    await ch.checkExchange(exchange)
    await ch.deleteExchange(exchange)
    await ch.deleteExchange(`${exchange}.delay`)
    await ch.close()
  })

  it('a failed first connect says where and what to do, without the password', async () => {
    const t = rabbitmq({ url: 'amqp://guest:secret@127.0.0.1:1', logger: quiet })
    const err = await t.connect().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TransportError)
    expect((err as Error).message).toBe(
      'cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:1 (ECONNREFUSED); is the broker running? Set AMQP_URL or rabbitmq({ url })',
    )
    await t.close()
  })
})

// Simulates a network failure: the socket dies under amqplib, which sees an error and closes.
function breakConnection(t: RabbitmqTransport): void {
  const conn = t.amqpConnection as unknown as { connection: { stream: { destroy(err: Error): void } } }
  conn.connection.stream.destroy(new Error('test: connection dropped'))
}
