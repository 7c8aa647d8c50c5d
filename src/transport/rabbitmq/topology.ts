import { ConfigError } from '../../core/errors.js'
import {
  deadLetterBindingKey,
  deadLetterQueueName,
  deadLetterRoutingKey,
  directRoutingKey,
  replicaBindingKeys,
} from '../queue-names.js'
import type { QueueSpec } from '../types.js'

// The RabbitMQ topology as data (PROTOCOL.md, "RabbitMQ topology"): pure functions, no I/O, so the
// plan is unit-tested without a broker and printed by `--dry-run`.

/** An exchange to declare. */
export interface ExchangeDeclaration {
  name: string
  type: 'topic' | 'headers'
  durable: true
}

/** A queue to declare. `arguments` must match on every declaration, or RabbitMQ refuses it. */
export interface QueueDeclaration {
  name: string
  role: 'replica' | 'delay' | 'dead-letter'
  durable: true
  arguments: Record<string, unknown>
}

/** A binding of a queue to an exchange; `arguments` are the header match of a headers exchange. */
export interface BindingDeclaration {
  queue: string
  exchange: string
  routingKey: string
  arguments?: Record<string, unknown>
}

/** What to declare, in order: exchanges, then queues, then bindings. */
export interface TopologyPlan {
  exchanges: ExchangeDeclaration[]
  queues: QueueDeclaration[]
  bindings: BindingDeclaration[]
}

/** Where to publish a message, with which headers. */
export interface PublishRoute {
  exchange: string
  routingKey: string
  headers: Record<string, string | number>
  /** Per-message TTL in ms, as AMQP wants it: a string. */
  expiration?: string
}

/**
 * `classic` (the default, what django-cqrs declares) or `quorum`: replicated over the cluster's
 * nodes (Raft), so a queue keeps its messages through the loss of a minority of nodes.
 */
export type QueueType = 'classic' | 'quorum'

/**
 * The arguments every queue of this type carries (RabbitMQ refuses a redeclaration with others).
 * Quorum queues are always durable, never exclusive or auto-delete, which we never ask for anyway.
 */
export function queueTypeArguments(queueType: QueueType): Record<string, unknown> {
  return queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : {}
}

/** `<exchange>.delay`: the headers exchange feeding the delay queues. */
export const delayExchangeName = (exchange: string): string => `${exchange}.delay`

/** `<Q>.retry.<ms>`: where a retry of `Q` waits `ms` before it comes back. */
export const delayQueueName = (queue: string, delayMs: number): string => `${queue}.retry.${delayMs}`

/** The two exchanges every service uses: `<exchange>` (topic) and `<exchange>.delay` (headers), both durable. */
export function exchangePlan(exchange: string): TopologyPlan {
  return {
    exchanges: [
      { name: exchange, type: 'topic', durable: true },
      { name: delayExchangeName(exchange), type: 'headers', durable: true },
    ],
    queues: [],
    bindings: [],
  }
}

/**
 * The delay queue for retries of `queue` after `delayMs`: messages expire after the delay and are
 * dead-lettered to `exchange` with their own routing key (`cqrs.<Q>.<cqrs_id>`, so they come back
 * to `Q` only). They wait in the broker, so they outlive consumer restarts.
 */
export function delayQueuePlan(queue: string, delayMs: number, exchange: string, queueType: QueueType = 'classic'): TopologyPlan {
  if (!Number.isInteger(delayMs) || delayMs < 0) {
    throw new ConfigError(`retry delays must be whole milliseconds >= 0; got ${delayMs} for queue '${queue}'`, { queue, delayMs })
  }
  const name = delayQueueName(queue, delayMs)
  // No x-dead-letter-routing-key: the message keeps the key it was published with.
  const args: Record<string, unknown> = { ...queueTypeArguments(queueType), 'x-message-ttl': delayMs, 'x-dead-letter-exchange': exchange }
  if (queueType === 'quorum') {
    // A quorum queue dead-letters at most once by default: a retry expiring while the node hosting
    // the leader fails could be lost. At least once (RabbitMQ >= 3.10) needs reject-publish
    // overflow; with no length limit set, nothing is ever rejected.
    args['x-dead-letter-strategy'] = 'at-least-once'
    args['x-overflow'] = 'reject-publish'
  }
  return {
    exchanges: [],
    queues: [{ name, role: 'delay', durable: true, arguments: args }],
    bindings: [{ queue: name, exchange: delayExchangeName(exchange), routingKey: '', arguments: delayHeaders(queue, delayMs, { 'x-match': 'all' }) }],
  }
}

/** `dead_letter_<Q>`, bound to `cqrs.dead_letter_<Q>.#`. */
export function deadLetterPlan(queue: string, exchange: string, queueType: QueueType = 'classic'): TopologyPlan {
  const name = deadLetterQueueName(queue)
  return {
    exchanges: [],
    queues: [{ name, role: 'dead-letter', durable: true, arguments: queueTypeArguments(queueType) }],
    bindings: [{ queue: name, exchange, routingKey: deadLetterBindingKey(queue) }],
  }
}

/**
 * Everything a replica queue needs: the exchanges, queue `Q` bound to `<cqrs_id>` and
 * `cqrs.<Q>.<cqrs_id>` for each cqrs_id, one delay queue per retry delay, and `dead_letter_<Q>`;
 * all of them of `queueType`.
 */
export function topologyPlan(spec: QueueSpec, exchange = 'cqrs', queueType: QueueType = 'classic'): TopologyPlan {
  if (!spec.queue) throw new ConfigError('a replica queue needs a name; got an empty string', { spec })
  const replica: TopologyPlan = {
    exchanges: [],
    queues: [{ name: spec.queue, role: 'replica', durable: true, arguments: queueTypeArguments(queueType) }],
    bindings: replicaBindingKeys(spec).map((routingKey) => ({ queue: spec.queue, exchange, routingKey })),
  }
  const delays = [...new Set(spec.retryDelaysMs)].sort((a, b) => a - b).map((ms) => delayQueuePlan(spec.queue, ms, exchange, queueType))
  return mergePlans([exchangePlan(exchange), replica, ...delays, deadLetterPlan(spec.queue, exchange, queueType)])
}

/** Plans concatenated, keeping the order exchanges, queues, bindings. */
export function mergePlans(plans: TopologyPlan[]): TopologyPlan {
  return {
    exchanges: plans.flatMap((p) => p.exchanges),
    queues: plans.flatMap((p) => p.queues),
    bindings: plans.flatMap((p) => p.bindings),
  }
}

/**
 * Where a retry goes: the delay exchange, with the key it must come back with (`cqrs.<Q>.<cqrs_id>`)
 * and the headers that pick the delay queue.
 */
export function retryRoute(queue: string, cqrsId: string, delayMs: number, exchange: string, headers: Record<string, string | number> = {}): PublishRoute {
  return {
    exchange: delayExchangeName(exchange),
    routingKey: directRoutingKey(queue, cqrsId),
    headers: delayHeaders(queue, delayMs, headers),
  }
}

/** Where a dead letter goes: `cqrs.dead_letter_<Q>.<cqrs_id>` on the exchange, expiring only if asked. */
export function deadLetterRoute(queue: string, cqrsId: string, exchange: string, headers: Record<string, string | number> = {}, expirationMs?: number): PublishRoute {
  const route: PublishRoute = { exchange, routingKey: deadLetterRoutingKey(queue, cqrsId), headers: { ...headers } }
  if (expirationMs !== undefined) route.expiration = String(expirationMs)
  return route
}

/** A text rendering of the plan for `--dry-run`. */
export function describeTopology(spec: QueueSpec, options: { exchange?: string; queueType?: QueueType } = {}): string {
  const plan = topologyPlan(spec, options.exchange, options.queueType)
  const lines: string[] = []
  for (const e of plan.exchanges) lines.push(`exchange ${e.name} (${e.type}, durable)`)
  for (const q of plan.queues) {
    const args = Object.entries(q.arguments).map(([k, v]) => `, ${k}=${v}`).join('')
    lines.push(`queue ${q.name} (${q.role}, durable${args})`)
    for (const b of plan.bindings.filter((b) => b.queue === q.name)) {
      const match = b.arguments ? `headers ${Object.entries(b.arguments).map(([k, v]) => `${k}=${v}`).join(' ')}` : `key ${b.routingKey}`
      lines.push(`  bound to ${b.exchange} by ${match}`)
    }
  }
  return `${lines.join('\n')}\n`
}

function delayHeaders(queue: string, delayMs: number, base: Record<string, string | number>): Record<string, string | number> {
  // Strings on both sides: a headers exchange compares types too, and 1000 is not '1000'.
  // No `x-` prefix: with x-match=all RabbitMQ ignores x- headers, so every binding would match
  // every retry and each would be copied into every delay queue.
  return { ...base, 'cqrs-delay-queue': queue, 'cqrs-delay-ms': String(delayMs) }
}
