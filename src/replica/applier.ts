import { encodeMessage, type CqrsMessage } from '../core/message.js'
import type { ApplyOp, ApplyResult, TableTarget } from './apply-op.js'
import type { ReplicaConsumer } from './replica-consumer.js'
import type { Line } from '../core/dump-format.js'
import type { LoadCount, ReplicaStore } from './replica-store.js'
import { applyGated } from './version-gate.js'

/** A message for the replica and its decoded op. */
export interface ApplyItem {
  message: CqrsMessage
  op: ApplyOp
}

/**
 * Applies messages without a broker, with the replica's version-gated semantics (bulk-load,
 * deleted-sync-replica). One result per item, in order: an Error for an item that could not be applied,
 * so the caller can name its line and go on.
 */
export interface Applier {
  apply(items: ApplyItem[]): Promise<Array<ApplyResult | Error>>
  /** Optional, for bulk-load: {@link ReplicaStore.loadRows}. Without it, bulk-load uses `apply`. */
  loadRows?(lines: Line[]): Promise<LoadCount | null>
}

/**
 * A replica table without row hooks: the consumer's gated batch apply ({@link applyGated}) through
 * the store, so only the bad rows of a batch fail.
 */
export function tableApplier(store: ReplicaStore, target: TableTarget): Applier {
  return {
    loadRows: store.loadRows ? (lines) => store.loadRows!(target, lines) : undefined,
    async apply(items) {
      const results = await applyGated(
        items.map((it) => it.op),
        (ops) => store.applyBatch(target, ops),
      )
      return items.map(({ op }) => results.get(op)!)
    },
  }
}

/**
 * A replica whose handler has row hooks (create/update/delete): each message goes through the same
 * consumer code as one from the broker. A message the consumer would retry or dead-letter is an Error
 * here, with the consumer's reason.
 */
export function consumerApplier(consumer: ReplicaConsumer): Applier {
  return {
    async apply(items) {
      const outcomes = await consumer.handle(items.map(({ message }) => ({ body: Buffer.from(encodeMessage(message)), routingKey: message.cqrs_id, headers: {}, redelivered: false })))
      return outcomes.map((o) => (o.kind === 'ack' ? 'applied' : new Error(String(o.headers['x-cqrs-last-error'] ?? o.headers['x-cqrs-reason'] ?? o.kind))))
    },
  }
}
