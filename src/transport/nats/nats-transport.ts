import {
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  type MsgRequest,
  RetentionPolicy,
  type StreamConfig,
  StorageType,
} from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { ConfigError, TransportError } from '../../core/errors.js'
import { assertConsumeOptions } from '../batch-pump.js'
import { deadLetterId } from '../queue-names.js'
import type {
  BatchHandler,
  ConsumeOptions,
  DeadLetter,
  OutgoingMessage,
  QueueSpec,
  QueueStats,
  Subscription,
  Transport,
} from '../types.js'
import { decodeHeaders, encodeHeaders } from './headers.js'
import { type ConsumerHost, NatsConsumer } from './nats-consumer.js'
import { type NatsOptions, type ResolvedNatsOptions, resolveNatsOptions } from './nats-options.js'
import { deadLetterFilter, deadLetterRoutingKeyOf, type DurablePlan, durablePlans, presenceSubject, retryFilter, streamSubjects, subjectFor } from './subjects.js'

const NANOS_PER_MS = 1_000_000
// How long `queueStats` waits for running consumers to answer a head count.
const PRESENCE_WAIT_MS = 300

/**
 * The NATS JetStream transport (`cqrs-sync/nats`). Events go to one stream (`CQRS`) on subjects
 * that carry the cqrs_id; a replica queue is a set of durable consumers shared by its workers;
 * retries wait in the server (a retry stream, released by a delayed negative ack) and dead letters
 * go to a stream of their own. The publish of an event carries its message id, so the server drops
 * a relay's second publish of it (within `duplicateWindowMs`). The client reconnects by itself.
 */
export class NatsTransport implements Transport {
  readonly name = 'nats'
  /** The validated options. */
  readonly options: ResolvedNatsOptions
  #nc: NatsConnection | undefined
  #js: JetStreamClient | undefined
  #jsm: JetStreamManager | undefined
  #connected = false
  #closing = false
  readonly #consumers = new Set<NatsConsumer>()
  readonly #host: ConsumerHost

  constructor(options: NatsOptions = {}) {
    this.options = resolveNatsOptions(options)
    this.#host = {
      options: this.options,
      js: () => this.#need('consume').js,
      jsm: () => this.#need('consume').jsm,
      nc: () => this.#need('consume').nc,
      stopped: (c) => this.#consumers.delete(c),
    }
  }

  /** Connect and make sure the three streams exist. A failure is a {@link TransportError} that says what to check. */
  async connect(): Promise<void> {
    this.#assertOpen('connect')
    if (this.#nc) return
    const { servers, connectionName, user, pass, token, safeServers, logger } = this.options
    let nc: NatsConnection
    try {
      nc = await connect({ servers, name: connectionName, user, pass, token, maxReconnectAttempts: -1, reconnectTimeWait: 500 })
    } catch (err) {
      throw new TransportError(`cannot connect to NATS at ${safeServers} (${reason(err)}); is nats-server running with JetStream (-js)? Set NATS_URL or nats({ servers })`, { servers: safeServers }, { cause: err })
    }
    try {
      this.#jsm = await jetstreamManager(nc)
      this.#js = jetstream(nc)
      await this.#ensureStreams(this.#jsm)
    } catch (err) {
      await nc.close().catch(() => {})
      if (err instanceof ConfigError) throw err
      throw new TransportError(`connected to NATS at ${safeServers}, but JetStream refused to set up the streams (${reason(err)}); is JetStream enabled (nats-server -js), and may this user manage streams?`, { servers: safeServers }, { cause: err })
    }
    this.#nc = nc
    this.#connected = true
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.#connected = false
          logger.warn('lost the connection to NATS; reconnecting', { servers: safeServers })
        } else if (s.type === 'reconnect') {
          this.#connected = true
          logger.info('reconnected to NATS', { servers: safeServers })
        }
      }
    })().catch(() => {})
  }

  /** True while connected and not closed. */
  isConnected(): boolean {
    return this.#connected && !this.#closing
  }

  /** Publish in order with JetStream acks; each event's message id lets the server drop a second publish of it. */
  async publish(messages: OutgoingMessage[]): Promise<void> {
    const { js, nc } = this.#need('publish')
    if (messages.length === 0) return
    // Fail fast: the client would hold the publishes until its request timeout.
    if (!this.#connected) {
      throw new TransportError(`publish(): not connected to NATS at ${this.options.safeServers} (the connection was lost and is being re-established); try again later`, { servers: this.options.safeServers })
    }
    // A message over the server's max_payload is refused every time: say so, not "try again".
    const maxPayload = nc.info?.max_payload
    if (maxPayload) {
      for (const m of messages) {
        // A UTF-16 unit is at most 3 bytes of UTF-8: only a body that might be too big is measured.
        const bytes = m.body.length * 3 > maxPayload ? Buffer.byteLength(m.body) : 0
        if (bytes > maxPayload) {
          throw new TransportError(
            `publish(): message ${m.messageId ?? ''} with key '${m.routingKey}' is ${bytes} bytes, more than the max_payload of NATS at ${this.options.safeServers} (${maxPayload} bytes), so NATS refuses it every time; raise max_payload in the nats-server configuration (up to 64 MB). Until then it and the events behind it wait in the outbox`,
            { servers: this.options.safeServers, messageId: m.messageId, bytes, maxPayload },
          )
        }
      }
    }
    for (let i = 0; i < messages.length; i += this.options.publishWindow) {
      // Sent in order on one connection, so stored in order; the acks are awaited together.
      const acks = messages.slice(i, i + this.options.publishWindow).map((m) => {
        const { subject } = subjectFor(this.options, m.routingKey)
        const headers = encodeHeaders(m.headers, m.messageId)
        // One master owns a cqrs_id, so subject + outbox id names an event across masters.
        const msgID = m.messageId === undefined ? undefined : `${subject}:${m.messageId}`
        return js.publish(subject, m.body, { headers, msgID })
      })
      const results = await Promise.allSettled(acks)
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
      if (failed) {
        throw new TransportError(`publish(): NATS at ${this.options.safeServers} did not store every message (${reason(failed.reason)}); publish again later (the server drops duplicates)`, { servers: this.options.safeServers }, { cause: failed.reason })
      }
    }
  }

  /** Create or check the queue's durable consumers and read them; see {@link NatsConsumer}. */
  async consume(options: ConsumeOptions, handler: BatchHandler): Promise<Subscription> {
    assertConsumeOptions('nats', options, true)
    this.#need('consume')
    const consumer = new NatsConsumer(this.#host, options, handler)
    this.#consumers.add(consumer)
    try {
      await consumer.start()
    } catch (err) {
      await consumer.stop()
      if (err instanceof ConfigError || err instanceof TransportError) throw err
      throw new TransportError(`cannot consume queue '${options.queue}' on NATS at ${this.options.safeServers} (${reason(err)}); check that JetStream is up and this user may create consumers`, { queue: options.queue }, { cause: err })
    }
    return consumer
  }

  /** Stop the consumers (their batches in flight finish and are acked), then drain and close the connection. */
  async close(): Promise<void> {
    if (this.#closing) return
    this.#closing = true
    await Promise.allSettled([...this.#consumers].map((c) => c.stop()))
    const nc = this.#nc
    this.#nc = undefined
    this.#connected = false
    await nc?.drain().catch(() => nc.close())
  }

  /** Read up to `limit` dead letters of the queue, oldest first, without removing them. */
  async listDeadLetters(spec: QueueSpec, limit: number): Promise<DeadLetter[]> {
    const found: DeadLetter[] = []
    for await (const { letter } of this.#deadLetters(spec)) {
      if (found.length >= limit) break
      found.push(letter)
    }
    return found
  }

  /** Take the dead letters `select` accepts out of the stream, each after `fn` succeeded; the rest stay. */
  async drainDeadLetters(spec: QueueSpec, select: (d: DeadLetter) => boolean, fn: (d: DeadLetter) => Promise<void>): Promise<number> {
    const { jsm } = this.#need('drainDeadLetters')
    let taken = 0
    for await (const { seq, letter } of this.#deadLetters(spec)) {
      if (!select(letter)) continue
      await fn(letter)
      await jsm.streams.deleteMessage(this.options.deadLetterStream, seq)
      taken++
    }
    return taken
  }

  /**
   * `messages`: waiting for the queue's event and direct durables; `retrying`: retries of the queue
   * stored in the retry stream (it keeps a retry until its queue acked it); `deadLettered`: in the
   * dead-letter stream; `consumers`: workers that answer a head count. What does not exist counts 0.
   */
  async queueStats(spec: QueueSpec): Promise<QueueStats> {
    const { jsm, nc } = this.#need('queueStats')
    const plans = durablePlans(this.options, spec).filter((d) => d.kind !== 'retry')
    const infos = await Promise.all(plans.map((d) => durableInfo(jsm, d)))
    const [retrying, deadLettered] = await Promise.all([
      storedCount(jsm, this.options.retryStream, retryFilter(this.options, spec.queue)),
      storedCount(jsm, this.options.deadLetterStream, deadLetterFilter(this.options, spec.queue)),
    ])
    let consumers = 0
    try {
      const replies = await nc.requestMany(presenceSubject(this.options, spec.queue), '', { maxWait: PRESENCE_WAIT_MS, strategy: 'timer' })
      for await (const r of replies) if (!r.headers?.hasError) consumers++
    } catch {
      // no responders: nobody consumes
    }
    return {
      queue: spec.queue,
      messages: infos.reduce((n, i) => n + (i?.num_pending ?? 0), 0),
      consumers,
      retrying,
      deadLettered,
    }
  }

  /** @internal For tests and benchmarks: the live connection. */
  get connection(): NatsConnection | undefined {
    return this.#nc
  }

  async *#deadLetters(spec: QueueSpec): AsyncGenerator<{ seq: number; letter: DeadLetter }> {
    const { jsm } = this.#need('listDeadLetters')
    const filter = deadLetterFilter(this.options, spec.queue)
    let seq = 1
    for (;;) {
      // The server's STREAM.MSG.GET takes next_by_subj (NATS >= 2.9); the client types it for direct gets only.
      const query = { seq, next_by_subj: filter } as unknown as MsgRequest
      const m = await jsm.streams.getMessage(this.options.deadLetterStream, query).catch((err: unknown) => {
        if (/no message found|not found/i.test(reason(err))) return null
        throw err
      })
      if (!m) return
      const { headers, messageId } = decodeHeaders(m.header)
      const body = Buffer.from(m.data)
      yield { seq: m.seq, letter: { id: deadLetterId(messageId, body), routingKey: deadLetterRoutingKeyOf(this.options, m.subject), body: body.toString('utf8'), headers } }
      seq = m.seq + 1
    }
  }

  async #ensureStreams(jsm: JetStreamManager): Promise<void> {
    const o = this.options
    const subjects = streamSubjects(o)
    const base = { storage: StorageType.File, num_replicas: o.replicas, duplicate_window: o.duplicateWindowMs * NANOS_PER_MS }
    await ensureStream(jsm, { ...base, name: o.stream, subjects: [subjects.events], retention: RetentionPolicy.Limits, max_age: o.maxAgeMs * NANOS_PER_MS })
    // Interest: a retry is gone once its queue's retry durable acked it.
    await ensureStream(jsm, { ...base, name: o.retryStream, subjects: [subjects.retries], retention: RetentionPolicy.Interest, max_age: 0 })
    await ensureStream(jsm, { ...base, name: o.deadLetterStream, subjects: [subjects.deadLetters], retention: RetentionPolicy.Limits, max_age: o.deadLetterMaxAgeMs * NANOS_PER_MS })
  }

  #need(operation: string): { nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager } {
    this.#assertOpen(operation)
    if (!this.#nc || !this.#js || !this.#jsm) {
      throw new TransportError(`${operation}(): not connected to NATS at ${this.options.safeServers} (connect() has not succeeded yet); try again later`, { operation })
    }
    return { nc: this.#nc, js: this.#js, jsm: this.#jsm }
  }

  #assertOpen(operation: string): void {
    if (this.#closing) throw new TransportError(`${operation}() after close() on the nats transport; create a new one with nats()`, { operation })
  }
}

/** Create the stream, or check that an existing one holds our subjects (its limits are left as the operator set them). */
async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string; subjects: string[] }): Promise<void> {
  const existing = await jsm.streams.info(config.name).catch((err: unknown) => {
    if (/stream not found/i.test(reason(err))) return null
    throw err
  })
  if (existing) {
    const missing = config.subjects.filter((s) => !existing.config.subjects?.includes(s))
    if (missing.length) {
      throw new ConfigError(`the NATS stream '${config.name}' exists with subjects ${JSON.stringify(existing.config.subjects)}, without ${missing.join(', ')}; add them (nats stream edit) or choose another nats({ stream, subjectPrefix })`, { stream: config.name })
    }
    return
  }
  try {
    await jsm.streams.add(config)
  } catch (err) {
    // Another process created it at the same moment.
    if (!(await jsm.streams.info(config.name).catch(() => null))) throw err
  }
}

/** Messages stored in `stream` on subjects matching `filter`. */
async function storedCount(jsm: JetStreamManager, stream: string, filter: string): Promise<number> {
  const info = await jsm.streams.info(stream, { subjects_filter: filter })
  return Object.values(info.state.subjects ?? {}).reduce((n, c) => n + c, 0)
}

async function durableInfo(jsm: JetStreamManager, d: DurablePlan) {
  return jsm.consumers.info(d.stream, d.name).catch((err: unknown) => {
    if (/consumer not found|stream not found/i.test(reason(err))) return null
    throw err
  })
}

/** The text of an error, for messages. */
function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
