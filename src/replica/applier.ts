import { encodeMessage, type CqrsMessage } from '../core/message.js'
import { newest, type ApplyOp, type ApplyResult, type TableTarget } from './apply-op.js'
import type { ReplicaConsumer } from './replica-consumer.js'
import type { Line } from '../core/dump-format.js'
import type { LoadCount, ReplicaStore } from './replica-store.js'

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

/** The op that decides each pk's final state, in first-seen order. */
function winners(items: ApplyItem[]): ApplyOp[] {
  const byPk = new Map<string, ApplyOp>()
  for (const { op } of items) {
    const prev = byPk.get(op.pkKey)
    byPk.set(op.pkKey, prev ? newest(prev, op) : op)
  }
  return [...byPk.values()]
}

/**
 * A replica table without row hooks: one version-gated statement per batch through the store (newest
 * op per pk; older duplicates count as skipped). If the batch fails, each pk is applied on its own so
 * only the bad rows fail.
 */
export function tableApplier(store: ReplicaStore, target: TableTarget): Applier {
  return {
    loadRows: store.loadRows ? (lines) => store.loadRows!(target, lines) : undefined,
    async apply(items) {
      const ops = winners(items)
      const byOp = new Map<ApplyOp, ApplyResult | Error>()
      try {
        const results = await store.applyBatch(target, ops)
        ops.forEach((op, i) => byOp.set(op, results[i]))
      } catch {
        for (const op of ops) {
          try {
            byOp.set(op, (await store.applyBatch(target, [op]))[0])
          } catch (e) {
            byOp.set(op, e as Error)
          }
        }
      }
      return items.map(({ op }) => byOp.get(op) ?? 'skipped')
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
