import { createHash } from 'node:crypto'
import { ConfigError } from '../../core/errors.js'
import type { QueueSpec } from '../types.js'

// The NATS layout as data: pure functions, no I/O. RabbitMQ routing keys (PROTOCOL.md) map to
// subjects of three streams, so the rest of the library keeps speaking routing keys:
//
//   <cqrs_id>                        -> <p>.<cqrs_id>          events stream (a SAVE, DELETE, SYNC to all)
//   cqrs.<Q>.<cqrs_id>               -> <p>.<Q>.<cqrs_id>      events stream (a SYNC to one replica)
//   cqrs.dead_letter_<Q>.<cqrs_id>   -> <p>_dlq.<Q>.<cqrs_id>  dead-letter stream
//   a retry of Q                     -> <p>_retry.<Q>.<cqrs_id> retry stream, back as cqrs.<Q>.<cqrs_id>
//
// NATS 2.9 gives a consumer one filter subject, so a replica queue is several durable consumers,
// all shared by its workers: one per cqrs_id (`<p>.<cqrs_id>`), one for what is sent to the queue
// itself (`<p>.<Q>.>`), one for its retries (`<p>_retry.<Q>.>`).

const DIRECT_PREFIX = 'cqrs.'
const DEAD_LETTER_PREFIX = 'cqrs.dead_letter_'

/** Stream names and subject prefixes of one transport. */
export interface NatsLayout {
  stream: string
  retryStream: string
  deadLetterStream: string
  subjectPrefix: string
}

/** What one durable consumer of a replica queue reads. */
export interface DurablePlan {
  kind: 'event' | 'direct' | 'retry'
  stream: string
  /** The durable name: the queue and what it reads, made safe for a name (no dots). */
  name: string
  filterSubject: string
  /** For `event` durables: the one cqrs_id it reads. */
  cqrsId?: string
}

/** Subjects each stream holds. */
export function streamSubjects(layout: NatsLayout): { events: string; retries: string; deadLetters: string } {
  const p = layout.subjectPrefix
  return { events: `${p}.>`, retries: `${p}_retry.>`, deadLetters: `${p}_dlq.>` }
}

/** Where a message published with `routingKey` goes: its stream and subject. */
export function subjectFor(layout: NatsLayout, routingKey: string): { stream: string; subject: string } {
  const p = layout.subjectPrefix
  assertSubjectText('routing key', routingKey)
  if (routingKey.startsWith(DEAD_LETTER_PREFIX)) return { stream: layout.deadLetterStream, subject: `${p}_dlq.${routingKey.slice(DEAD_LETTER_PREFIX.length)}` }
  if (routingKey.startsWith(DIRECT_PREFIX)) return { stream: layout.stream, subject: `${p}.${routingKey.slice(DIRECT_PREFIX.length)}` }
  return { stream: layout.stream, subject: `${p}.${routingKey}` }
}

/** The subject a retry of `queue` waits on. */
export const retrySubject = (layout: NatsLayout, queue: string, cqrsId: string): string => `${layout.subjectPrefix}_retry.${queue}.${cqrsId}`

/** A plain (not stored) subject the workers of `queue` answer on, so `cqrs status` can count them. */
export const presenceSubject = (layout: NatsLayout, queue: string): string => `${layout.subjectPrefix}_consumers.${queue}`

/** The subjects of `queue`'s retries (a filter). */
export const retryFilter = (layout: NatsLayout, queue: string): string => `${layout.subjectPrefix}_retry.${queue}.>`

/** The subjects of `queue`'s dead letters (a filter). */
export const deadLetterFilter = (layout: NatsLayout, queue: string): string => `${layout.subjectPrefix}_dlq.${queue}.>`

/** The routing key a consumer sees for a message read by `durable` on `subject` (as RabbitMQ would show it). */
export function routingKeyOf(layout: NatsLayout, durable: Pick<DurablePlan, 'kind' | 'cqrsId'>, subject: string, queue: string): string {
  if (durable.kind === 'event') return durable.cqrsId!
  return `${DIRECT_PREFIX}${queue}.${cqrsIdOf(layout, durable.kind, subject, queue)}`
}

/** The cqrs_id at the end of a direct or retry subject of `queue`. */
export function cqrsIdOf(layout: NatsLayout, kind: 'direct' | 'retry', subject: string, queue: string): string {
  const head = kind === 'retry' ? `${layout.subjectPrefix}_retry.${queue}.` : `${layout.subjectPrefix}.${queue}.`
  return subject.startsWith(head) ? subject.slice(head.length) : subject
}

/** The routing key of a dead letter stored on `subject`. */
export function deadLetterRoutingKeyOf(layout: NatsLayout, subject: string): string {
  const head = `${layout.subjectPrefix}_dlq.`
  return subject.startsWith(head) ? `${DEAD_LETTER_PREFIX}${subject.slice(head.length)}` : subject
}

/** The durable consumers of a replica queue: one per cqrs_id, one for direct messages, one for retries. */
export function durablePlans(layout: NatsLayout, spec: Pick<QueueSpec, 'queue' | 'cqrsIds'>): DurablePlan[] {
  if (!spec.queue) throw new ConfigError('a replica queue needs a name; got an empty string', { spec })
  assertSubjectText('queue name', spec.queue)
  const p = layout.subjectPrefix
  const events = [...new Set(spec.cqrsIds)].map((cqrsId): DurablePlan => {
    assertSubjectText('cqrs_id', cqrsId)
    return { kind: 'event', stream: layout.stream, name: durableName(`${spec.queue}__event__${cqrsId}`), filterSubject: `${p}.${cqrsId}`, cqrsId }
  })
  return [
    ...events,
    { kind: 'direct', stream: layout.stream, name: durableName(`${spec.queue}__direct`), filterSubject: `${p}.${spec.queue}.>` },
    { kind: 'retry', stream: layout.retryStream, name: durableName(`${spec.queue}__retry`), filterSubject: retryFilter(layout, spec.queue) },
  ]
}

/**
 * A durable name for `text`: as it is when it holds only letters, digits, `_` and `-`; otherwise
 * the other characters become `_` and a short hash of `text` keeps two such names apart.
 */
export function durableName(text: string): string {
  const safe = text.replace(/[^A-Za-z0-9_-]/g, '_')
  if (safe === text) return text
  return `${safe}-${createHash('sha1').update(text).digest('hex').slice(0, 8)}`
}

function assertSubjectText(what: string, text: string): void {
  if (!text || /[\s*>]/.test(text) || text.startsWith('.') || text.endsWith('.') || text.includes('..')) {
    throw new ConfigError(`a ${what} on NATS becomes part of a subject, so it must not be empty or hold spaces, '*', '>' or empty tokens (..); got '${text}'`, { [what]: text })
  }
}
