import type { Line, LineError } from '../core/dump-format.js'
import type { ApplyOp, ApplyResult, TableTarget } from './apply-op.js'

/** How a batch of a load ended; `skipped`: older than the replica (or a tombstone), or an older duplicate. */
export interface LoadCount {
  applied: number
  skipped: number
  errors: LineError[]
}

export interface Tombstone {
  revision: number
}

/**
 * The replica's database seam (ORM-agnostic). Every method runs in one transaction with the pks
 * locked, so two workers applying the same pk serialise and a late SAVE cannot slip past a DELETE.
 */
export interface ReplicaStore {
  /**
   * Apply ops (at most one per pk) version-gated: SAVE only with a higher revision, SYNC unless older
   * (or always when forced), DELETE removes the row if not newer and keeps a tombstone; a tombstone
   * with a revision at least as high blocks a SAVE or SYNC. Returns one result per op.
   */
  applyBatch(target: TableTarget, ops: ApplyOp[]): Promise<ApplyResult[]>
  /**
   * Whether two `applyBatch` calls may run at once (each in its own transaction). The gate makes the
   * final state independent of the order the batches commit in, and the pk locks keep them off each
   * other's pks, so a consumer lets the next batch start while one commits. False where two
   * transactions would only queue (SQLite's one writer) or could deadlock on gap locks (MySQL).
   */
  readonly concurrentBatches?: boolean
  /** For hook handlers: run `fn` in a transaction with the pks locked and their tombstones read. */
  withLocked<T>(cqrsId: string, pkKeys: string[], fn: (tx: unknown, tombstones: Map<string, Tombstone>) => Promise<T>): Promise<T>
  /** Record DELETEs' tombstones inside a `withLocked` transaction. */
  writeTombstones(tx: unknown, cqrsId: string, ops: ApplyOp[]): Promise<void>
  /**
   * Optional, for bulk-load: apply dump lines (each a SAVE's `instance_data`) as SYNCs, with the gate of {@link applyBatch} (not over a
   * newer row, not over a tombstone at least as new; the newest row per pk), in one transaction.
   * Rows that cannot be read are returned as errors and the rest is applied; it throws if the
   * database refuses the batch (nothing applied), and returns null where it has no bulk path. In
   * both cases bulk-load applies the batch through `applyBatch`, which names the rows that fail.
   */
  loadRows?(target: TableTarget, lines: Line[]): Promise<LoadCount | null>
  /** Remove tombstones older than `before`; returns how many. */
  pruneTombstones(before: Date): Promise<number>
}
