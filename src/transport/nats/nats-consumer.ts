import { AckPolicy, type Consumer, type ConsumerConfig, type ConsumerMessages, DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream'
import type { NatsConnection, Subscription as NatsSubscription } from '@nats-io/transport-node'
import { ConfigError } from '../../core/errors.js'
import type { Logger } from '../../core/logger.js'
import { assertOutcomes, BatchPump } from '../batch-pump.js'
import type { BatchHandler, ConsumeOptions, Delivery, Outcome, Subscription } from '../types.js'
import { decodeHeaders, encodeHeaders, H } from './headers.js'
import type { ResolvedNatsOptions } from './nats-options.js'
import { cqrsIdOf, type DurablePlan, durablePlans, presenceSubject, retrySubject, routingKeyOf, subjectFor } from './subjects.js'

const NANOS_PER_MS = 1_000_000
// A pull request waits this long for messages before the next one (the client's minimum is 1 s).
const FETCH_EXPIRES_MS = 5_000

/** What a consumer needs from its transport. */
export interface ConsumerHost {
  readonly options: ResolvedNatsOptions
  js(): JetStreamClient
  jsm(): JetStreamManager
  nc(): NatsConnection
  /** The subscription stopped: forget it. */
  stopped(consumer: NatsConsumer): void
}

interface Held {
  msg: JsMsg
  durable: Reader
}

/** One durable consumer being read: how many of its messages this worker holds. */
interface Reader {
  plan: DurablePlan
  held: number
  fetching: ConsumerMessages | undefined
  freed: (() => void) | undefined
}

/**
 * One `consume()` call: the queue's durable consumers created (or checked), each read by a pull
 * loop holding at most `prefetch` of its messages, all feeding one micro-batch pump. Outcomes are
 * carried out before the originals are acked: a retry is published to the retry stream with the
 * time it is due, and the retry durable holds it back with a delayed negative ack until then (so
 * it waits in the server, and any worker may take it); a dead letter is published to the
 * dead-letter stream. Held messages are kept from redelivery with `working()` every third of
 * `ackWaitMs`; a worker that dies has its messages redelivered after `ackWaitMs`.
 */
export class NatsConsumer implements Subscription {
  readonly #host: ConsumerHost
  readonly #options: ConsumeOptions
  readonly #handler: BatchHandler
  readonly #logger: Logger
  readonly #pump: BatchPump<Held>
  readonly #held = new Set<Held>()
  readonly #readers: Reader[]
  readonly #loops: Promise<void>[] = []
  #presence: NatsSubscription | undefined
  #keepAlive: NodeJS.Timeout | undefined
  #stopping: Promise<void> | undefined
  // Resolved by stop(): wakes a pull loop waiting out a backoff.
  #wake!: () => void
  readonly #stopSignal = new Promise<void>((resolve) => (this.#wake = resolve))

  constructor(host: ConsumerHost, options: ConsumeOptions, handler: BatchHandler) {
    this.#host = host
    this.#options = options
    this.#handler = handler
    this.#logger = host.options.logger
    this.#readers = durablePlans(host.options, options).map((plan) => ({ plan, held: 0, fetching: undefined, freed: undefined }))
    this.#pump = new BatchPump(options.batchSize, (batch) => this.#run(batch))
  }

  /** Create or check every durable, then start reading them. */
  async start(): Promise<void> {
    const jsm = this.#host.jsm()
    for (const r of this.#readers) await this.#ensureDurable(jsm, r.plan)
    if (this.#stopping) return
    this.#presence = this.#host.nc().subscribe(presenceSubject(this.#host.options, this.#options.queue), { callback: (_err, m) => void m.respond(String(process.pid)) })
    const every = Math.max(50, Math.floor(this.#host.options.ackWaitMs / 3))
    this.#keepAlive = setInterval(() => {
      for (const h of this.#held) h.msg.working()
    }, every)
    this.#keepAlive.unref()
    for (const r of this.#readers) this.#loops.push(this.#read(r))
  }

  /** Stop reading, let the batch in flight finish and its acks reach the server, hand the rest back. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop()
    return this.#stopping
  }

  async #stop(): Promise<void> {
    this.#wake()
    for (const r of this.#readers) {
      r.fetching?.stop()
      r.freed?.()
    }
    this.#presence?.unsubscribe()
    await Promise.allSettled(this.#loops)
    await this.#pump.stop()
    // Not handled: back to the server for another worker, at once.
    for (const h of this.#pump.take()) this.#release(h, () => h.msg.nak())
    clearInterval(this.#keepAlive)
    await this.#host.nc().flush().catch(() => {})
    this.#host.stopped(this)
  }

  async #ensureDurable(jsm: JetStreamManager, plan: DurablePlan): Promise<void> {
    const { ackWaitMs, maxAckPending } = this.#host.options
    const from = this.#options.from
    const existing = await jsm.consumers.info(plan.stream, plan.name).catch(() => null)
    if (existing) {
      if (from && plan.kind !== 'retry' && !sameStart(existing.config, from)) {
        throw new ConfigError(
          `--from ${from.toISOString()}: queue '${this.#options.queue}' exists already on NATS (durable ${plan.name}, reading since ` +
            `${existing.config.opt_start_time ?? `its creation, ${existing.created}`}); --from only starts a new queue. ` +
            `Delete its durables (nats consumer rm ${plan.stream} ${plan.name}) or use a new queue name`,
          { queue: this.#options.queue },
        )
      }
      if (existing.config.ack_wait !== ackWaitMs * NANOS_PER_MS || existing.config.max_ack_pending !== maxAckPending) {
        await jsm.consumers.update(plan.stream, plan.name, { ack_wait: ackWaitMs * NANOS_PER_MS, max_ack_pending: maxAckPending })
      }
      return
    }
    const config: Partial<ConsumerConfig> = {
      durable_name: plan.name,
      filter_subject: plan.filterSubject,
      ack_policy: AckPolicy.Explicit,
      ack_wait: ackWaitMs * NANOS_PER_MS,
      max_ack_pending: maxAckPending,
      max_deliver: -1, // we decide when a message is dead: never the server
      // A new queue gets what is published from now on, as a new RabbitMQ queue does; --from reaches back.
      deliver_policy: plan.kind === 'retry' ? DeliverPolicy.All : from ? DeliverPolicy.StartTime : DeliverPolicy.New,
    }
    if (from && plan.kind !== 'retry') config.opt_start_time = from.toISOString()
    try {
      await jsm.consumers.add(plan.stream, config)
    } catch (err) {
      // Another worker created it at the same moment, with the same config.
      if (!(await jsm.consumers.info(plan.stream, plan.name).catch(() => null))) throw err
    }
  }

  // Pull loop of one durable: fetch what the prefetch leaves room for, until stop().
  async #read(r: Reader): Promise<void> {
    let consumer: Consumer | undefined
    let backoff = 100
    while (!this.#stopping) {
      const room = this.#options.prefetch - r.held
      if (room <= 0) {
        await new Promise<void>((resolve) => (r.freed = resolve))
        r.freed = undefined
        continue
      }
      try {
        consumer ??= await this.#host.js().consumers.get(r.plan.stream, r.plan.name)
        r.fetching = await consumer.fetch({ max_messages: room, expires: FETCH_EXPIRES_MS })
        if (this.#stopping) r.fetching.stop()
        for await (const msg of r.fetching) this.#take(r, msg)
        backoff = 100
      } catch (err) {
        if (this.#stopping) break
        this.#logger.warn('reading a NATS consumer failed; trying again', { queue: this.#options.queue, durable: r.plan.name, error: err as Error })
        let timer: NodeJS.Timeout | undefined
        await Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, backoff))), this.#stopSignal])
        clearTimeout(timer)
        backoff = Math.min(backoff * 2, 5_000)
      } finally {
        r.fetching = undefined
      }
    }
  }

  #take(r: Reader, msg: JsMsg): void {
    if (this.#stopping) return msg.nak()
    if (r.plan.kind === 'retry') {
      const due = Number(msg.headers?.get(H.retryAt) || 0)
      const wait = due - Date.now()
      // Not due yet: back to the server, which offers it again when it is.
      if (wait > 0) return msg.nak(wait)
    }
    if (r.plan.kind !== 'event') {
      const cqrsId = cqrsIdOf(this.#host.options, r.plan.kind, msg.subject, this.#options.queue)
      // Sent to this queue for a cqrs_id it does not handle: RabbitMQ would not have routed it here.
      if (!this.#options.cqrsIds.includes(cqrsId)) return msg.ack()
    }
    const held: Held = { msg, durable: r }
    r.held++
    this.#held.add(held)
    this.#pump.push(held)
  }

  async #run(batch: Held[]): Promise<void> {
    let outcomes: Outcome[]
    try {
      outcomes = await this.#handler(batch.map((h) => this.#toDelivery(h)))
      assertOutcomes(outcomes, batch.length)
    } catch (err) {
      this.#logger.error('batch handler failed; its messages go back to the stream', { queue: this.#options.queue, size: batch.length, error: err })
      for (const h of batch) this.#release(h, () => h.msg.nak())
      return
    }
    const results = await Promise.allSettled(outcomes.map((o, i) => this.#carryOut(o, batch[i])))
    results.forEach((r, i) => {
      const h = batch[i]
      if (r.status === 'fulfilled') return this.#release(h, () => h.msg.ack())
      this.#logger.warn('could not publish a retry or dead letter; the message goes back to the stream', { queue: this.#options.queue, seq: h.msg.seq, error: r.reason })
      this.#release(h, () => h.msg.nak())
    })
    // The acks are on the wire before the batch counts as done (stop() relies on it).
    await this.#host.nc().flush().catch(() => {})
  }

  async #carryOut(o: Outcome, h: Held): Promise<void> {
    if (o.kind === 'ack') return
    const { messageId } = decodeHeaders(h.msg.headers)
    const js = this.#host.js()
    // Named after the delivery it replaces, so a second publish of it (a worker that died before
    // its ack) is dropped by the server.
    const msgID = `${o.kind}:${this.#options.queue}:${h.msg.info.stream}:${h.msg.seq}`
    if (o.kind === 'retry') {
      const delayMs = Math.max(0, Math.round(o.delayMs))
      const headers = encodeHeaders({ ...o.headers, 'cqrs-delay-queue': this.#options.queue, 'cqrs-delay-ms': String(delayMs) }, messageId)
      headers.set(H.retryAt, String(Date.now() + delayMs))
      await js.publish(retrySubject(this.#host.options, this.#options.queue, o.cqrsId), o.body, { headers, msgID })
    } else {
      const { subject } = subjectFor(this.#host.options, `cqrs.dead_letter_${this.#options.queue}.${o.cqrsId}`)
      await js.publish(subject, o.body, { headers: encodeHeaders(o.headers, messageId), msgID })
    }
  }

  #toDelivery(h: Held): Delivery {
    const { headers, messageId } = decodeHeaders(h.msg.headers)
    return {
      body: Buffer.from(h.msg.data),
      routingKey: routingKeyOf(this.#host.options, h.durable.plan, h.msg.subject, this.#options.queue),
      messageId,
      headers,
      redelivered: h.msg.redelivered,
    }
  }

  #release(h: Held, settle: () => void): void {
    try {
      settle()
    } catch (err) {
      this.#logger.warn('could not ack or nak; NATS will deliver the message again', { queue: this.#options.queue, error: err as Error })
    }
    if (this.#held.delete(h)) {
      h.durable.held--
      h.durable.freed?.()
    }
  }
}

function sameStart(config: ConsumerConfig, from: Date): boolean {
  return config.deliver_policy === DeliverPolicy.StartTime && !!config.opt_start_time && Date.parse(config.opt_start_time) === from.getTime()
}
