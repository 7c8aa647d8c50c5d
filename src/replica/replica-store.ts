import type { ApplyOp, ApplyResult, TableTarget } from './apply-op.ts'

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
  /** For hook handlers: run `fn` in a transaction with the pks locked and their tombstones read. */
  withLocked<T>(cqrsId: string, pkKeys: string[], fn: (tx: unknown, tombstones: Map<string, Tombstone>) => Promise<T>): Promise<T>
  /** Record DELETEs' tombstones inside a `withLocked` transaction. */
  writeTombstones(tx: unknown, cqrsId: string, ops: ApplyOp[]): Promise<void>
  /** Remove tombstones older than `before`; returns how many. */
  pruneTombstones(before: Date): Promise<number>
}
