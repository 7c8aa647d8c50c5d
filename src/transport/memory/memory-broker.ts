import {
  deadLetterBindingKey,
  deadLetterQueueName,
  replicaBindingKeys,
} from '../queue-names.js'
import type { QueueSpec } from '../types.js'

/** A message as the in-memory broker stores it. */
export interface MemoryMessage {
  routingKey: string
  body: Buffer
  messageId?: string
  headers: Record<string, unknown>
  redelivered: boolean
}

/** A consumer attached to a {@link MemoryQueue}: the broker hands it at most `prefetch` unsettled messages. */
export interface MemoryConsumer {
  readonly prefetch: number
  /** Messages handed out and not yet settled; the consumer lowers it when it settles them. */
  unacked: number
  deliver(message: MemoryMessage): void
}

/** A queue of the in-memory broker: its bindings, ready messages and consumers. */
export class MemoryQueue {
  readonly bindings = new Set<string>()
  readonly ready: MemoryMessage[] = []
  readonly consumers: MemoryConsumer[] = []
  /** Messages waiting for their retry delay to pass before they come back. */
  retrying = 0
  /** Round-robin position, so competing consumers share the work like on RabbitMQ. */
  next = 0
  constructor(readonly name: string) {}
}

let shared: MemoryBroker | undefined

/**
 * An in-process stand-in for RabbitMQ's `cqrs` topic exchange and the queues bound to it, for unit
 * tests and the demo. Several transports may share one broker (a master and a replica in one
 * process). As on RabbitMQ, a message that matches no queue's binding is dropped.
 */
export class MemoryBroker {
  readonly #queues = new Map<string, MemoryQueue>()
  readonly #dirty = new Set<MemoryQueue>()
  #dispatching: NodeJS.Immediate | undefined

  /** The process-wide broker that `memory()` uses when given none. */
  static shared(): MemoryBroker {
    shared ??= new MemoryBroker()
    return shared
  }

  /** Declare the replica queue of `spec` and its dead-letter queue, with their bindings. Idempotent; bindings add up. */
  declare(spec: Pick<QueueSpec, 'queue' | 'cqrsIds'>): void {
    const main = this.#declareQueue(spec.queue)
    for (const key of replicaBindingKeys(spec)) main.bindings.add(key)
    this.#declareQueue(deadLetterQueueName(spec.queue)).bindings.add(deadLetterBindingKey(spec.queue))
  }

  /** The queue named `name`, if declared. */
  queue(name: string): MemoryQueue | undefined {
    return this.#queues.get(name)
  }

  /** Remove a queue and its messages. */
  deleteQueue(name: string): void {
    this.#queues.delete(name)
  }

  /** Route a message through the topic exchange; returns how many queues it reached. */
  publish(message: Omit<MemoryMessage, 'redelivered'>): number {
    let routed = 0
    for (const q of this.#queues.values()) {
      if (![...q.bindings].some((pattern) => topicMatches(pattern, message.routingKey))) continue
      q.ready.push({ ...message, headers: { ...message.headers }, redelivered: false })
      this.#markDirty(q)
      routed++
    }
    return routed
  }

  /** Put messages back at the head of `q`, marked redelivered (a nack with requeue). */
  requeue(q: MemoryQueue, messages: MemoryMessage[]): void {
    q.ready.unshift(...messages.map((m) => ({ ...m, redelivered: true })))
    this.#markDirty(q)
  }

  /** Publish `message` after `delayMs`; meanwhile it counts as retrying on `q`. Timers do not keep the process alive. */
  publishLater(q: MemoryQueue, delayMs: number, message: Omit<MemoryMessage, 'redelivered'>): void {
    q.retrying++
    const timer = setTimeout(() => {
      q.retrying--
      this.publish(message)
    }, delayMs)
    timer.unref()
  }

  /** Attach a consumer; messages flow to it from the next dispatch. */
  addConsumer(q: MemoryQueue, consumer: MemoryConsumer): void {
    q.consumers.push(consumer)
    this.#markDirty(q)
  }

  /** Detach a consumer; it gets no more messages. */
  removeConsumer(q: MemoryQueue, consumer: MemoryConsumer): void {
    const i = q.consumers.indexOf(consumer)
    if (i >= 0) q.consumers.splice(i, 1)
  }

  /** Call after a consumer settled messages: it may take more now. */
  settled(q: MemoryQueue): void {
    this.#markDirty(q)
  }

  #declareQueue(name: string): MemoryQueue {
    let q = this.#queues.get(name)
    if (!q) this.#queues.set(name, (q = new MemoryQueue(name)))
    return q
  }

  // Dispatch runs on setImmediate, not a microtask: a handler that always fails and requeues must
  // not starve timers and I/O, just as it would not on a real broker.
  #markDirty(q: MemoryQueue): void {
    this.#dirty.add(q)
    this.#dispatching ??= setImmediate(() => {
      this.#dispatching = undefined
      const queues = [...this.#dirty]
      this.#dirty.clear()
      for (const dq of queues) this.#dispatch(dq)
    })
  }

  #dispatch(q: MemoryQueue): void {
    while (q.ready.length > 0 && q.consumers.length > 0) {
      let consumer: MemoryConsumer | undefined
      for (let i = 0; i < q.consumers.length && !consumer; i++) {
        const c = q.consumers[(q.next + i) % q.consumers.length]
        if (c.unacked < c.prefetch) {
          consumer = c
          q.next = (q.next + i + 1) % q.consumers.length
        }
      }
      if (!consumer) return
      consumer.unacked++
      consumer.deliver(q.ready.shift()!)
    }
  }
}

/** AMQP topic matching: words split on `.`, `*` matches one word, `#` zero or more. */
export function topicMatches(pattern: string, routingKey: string): boolean {
  const p = pattern.split('.')
  const k = routingKey.split('.')
  const match = (i: number, j: number): boolean => {
    if (i === p.length) return j === k.length
    if (p[i] === '#') return match(i + 1, j) || (j < k.length && match(i, j + 1))
    return j < k.length && (p[i] === '*' || p[i] === k[j]) && match(i + 1, j + 1)
  }
  return match(0, 0)
}
