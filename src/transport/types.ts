/**
 * The transport seam: the only thing the core needs from a message broker.
 * Implementations live in one folder each (memory/, rabbitmq/, nats/); the core wraps every transport
 * in {@link RuntimeTransport} for connect-once / close-once.
 */

/** A message to publish. `routingKey` follows PROTOCOL.md (`<cqrs_id>`, `cqrs.<Q>.<cqrs_id>`, ...). */
export interface OutgoingMessage {
  routingKey: string
  body: string
  /** Stable id (the outbox row id on a master), so a consumer can trace duplicates. */
  messageId?: string
  headers?: Record<string, string | number>
}

/** A message handed to a consumer. */
export interface Delivery {
  body: Buffer
  routingKey: string
  messageId?: string
  headers: Record<string, unknown>
  /** True when the broker delivered this message before (a consumer died or nacked it). */
  redelivered: boolean
}

/**
 * What the consumer decided for one delivery. The transport carries it out:
 * - `ack`: done, remove it.
 * - `retry`: re-publish `body` to wait `delayMs` in the broker (not in memory), then come back to the
 *   same queue with routing key `cqrs.<Q>.<cqrs_id>`; the original is acked after the re-publish is confirmed.
 * - `deadLetter`: publish `body` to `cqrs.dead_letter_<Q>.<cqrs_id>` (the `dead_letter_<Q>` queue), then ack.
 */
export type Outcome =
  | { kind: 'ack' }
  | { kind: 'retry'; delayMs: number; body: string; cqrsId: string; headers: Record<string, string | number> }
  | { kind: 'deadLetter'; body: string; cqrsId: string; headers: Record<string, string | number> }

/** What a replica queue is bound to. */
export interface QueueSpec {
  /** The replica's queue name `Q`. */
  queue: string
  /** cqrs_ids it handles: binds `<cqrs_id>` and `cqrs.<Q>.<cqrs_id>` for each. */
  cqrsIds: string[]
  /** Broker-side retry delays the consumer may ask for (ms); each gets a delay queue. */
  retryDelaysMs: number[]
}

export interface ConsumeOptions extends QueueSpec {
  /** Unacked messages the broker may hand out at once. */
  prefetch: number
  /** Most deliveries handed to the handler in one call. */
  batchSize: number
  /**
   * Batches the handler may hold at once (default 1). With 2 the next batch is handed over while the
   * previous call is still running (the replica decodes it meanwhile and applies it after); calls
   * still come in delivery order and their outcomes are acked in that order. Only for a handler that
   * keeps its own order. A transport may keep to 1 (nats does).
   */
  inFlight?: number
  /**
   * Start a NEW queue at this time of the broker's retention (`cqrs consume --from`): it first gets
   * the events published since then. Only a transport that keeps history can (nats); the others
   * throw a ConfigError, and so does nats for a queue that exists already.
   */
  from?: Date
}

/**
 * Called with a batch of deliveries; returns one outcome per delivery, in the same order. Batches are
 * handed over in delivery order, one at a time unless {@link ConsumeOptions.inFlight} allows more.
 */
export type BatchHandler = (batch: Delivery[]) => Promise<Outcome[]>

export interface Subscription {
  /** Stop taking new messages, wait for the batches in flight to settle, then resolve. */
  stop(): Promise<void>
}

/** A dead letter as read back by `cqrs dead-letters list`. */
export interface DeadLetter {
  id: string
  routingKey: string
  body: string
  headers: Record<string, unknown>
}

/** Queue depths for `cqrs status`. */
export interface QueueStats {
  queue: string
  messages: number
  consumers: number
  retrying: number
  deadLettered: number
}

export interface Transport {
  /** Short name for logs and errors: 'rabbitmq', 'nats', 'memory'. */
  readonly name: string
  /** Connect and declare the exchange. Called once by the runtime wrapper. */
  connect(): Promise<void>
  /** Publish in order; resolves when the broker confirmed every message, rejects if any was not. */
  publish(messages: OutgoingMessage[]): Promise<void>
  /**
   * Optional, for pipelining: write `messages` in order and resolve once all are written, before the
   * broker confirmed them; `confirmed` settles as `publish()` would. Messages of a later call go out
   * after these, so the relay may claim and send its next batch while this one's confirms are
   * outstanding (without it, the relay publishes one batch at a time).
   */
  send?(messages: OutgoingMessage[]): Promise<{ confirmed: Promise<void> }>
  /** Declare the replica queue, its bindings, delay queues and dead-letter queue, and consume it. */
  consume(options: ConsumeOptions, handler: BatchHandler): Promise<Subscription>
  /** Close connections. Called once by the runtime wrapper. */
  close(): Promise<void>
  /** True while connected; the relay does not claim outbox rows while the broker is down. */
  isConnected?(): boolean
  /** Optional, for `cqrs dead-letters`: read without removing. */
  listDeadLetters?(spec: QueueSpec, limit: number): Promise<DeadLetter[]>
  /** Optional, for `cqrs dead-letters retry|purge`: take dead letters matching `select` out of the queue; `fn` decides to re-publish. */
  drainDeadLetters?(spec: QueueSpec, select: (d: DeadLetter) => boolean, fn: (d: DeadLetter) => Promise<void>): Promise<number>
  /** Optional, for `cqrs status`. */
  queueStats?(spec: QueueSpec): Promise<QueueStats>
}
