import { createHash } from 'node:crypto'
import type { QueueSpec } from './types.js'

// Names and routing keys of PROTOCOL.md ("RabbitMQ topology"), shared by every transport so the
// in-memory broker routes exactly like RabbitMQ does.

/** `cqrs.<Q>.<cqrs_id>`: a SYNC to one replica queue, and a retry by the replica owning `Q`. */
export const directRoutingKey = (queue: string, cqrsId: string): string => `cqrs.${queue}.${cqrsId}`

/** `dead_letter_<Q>`: where the replica owning `Q` parks messages it gave up on. */
export const deadLetterQueueName = (queue: string): string => `dead_letter_${queue}`

/** `cqrs.dead_letter_<Q>.<cqrs_id>`: the routing key of a dead letter of `Q`. */
export const deadLetterRoutingKey = (queue: string, cqrsId: string): string => `cqrs.dead_letter_${queue}.${cqrsId}`

/** `cqrs.dead_letter_<Q>.#`: what `dead_letter_<Q>` is bound to. */
export const deadLetterBindingKey = (queue: string): string => `cqrs.dead_letter_${queue}.#`

/** The binding keys of the replica queue: `<cqrs_id>` and `cqrs.<Q>.<cqrs_id>` for each cqrs_id. */
export function replicaBindingKeys(spec: Pick<QueueSpec, 'queue' | 'cqrsIds'>): string[] {
  return [...new Set(spec.cqrsIds)].flatMap((id) => [id, directRoutingKey(spec.queue, id)])
}

/**
 * The id of a dead letter: its message id, or (for peers such as django-cqrs that set none) a sha1
 * of the body, so the same message gets the same id on every listing.
 */
export function deadLetterId(messageId: unknown, body: Buffer | string): string {
  if (typeof messageId === 'string' && messageId !== '') return messageId
  return createHash('sha1').update(body).digest('hex')
}
