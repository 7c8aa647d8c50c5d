/** A replica row as the diff tools see it: its pk (column type) and stored revision. */
export interface StoredKey {
  pk: unknown
  revision: number
}

/**
 * The replica's read seam for the operating tools (diff-replica, deleted-diff-replica,
 * deleted-sync-replica, bulk-load --clear), ORM-agnostic. Writes go through the {@link ReplicaStore}'s
 * version-gated apply; this only reads, plus the one blunt `clear()`.
 */
export interface TableReader {
  /** Every row's pk and revision in pk order, page by page (keyset pagination, constant memory). */
  keyPages(batchSize: number): AsyncIterable<StoredKey[]>
  /** Stored revisions of these pks (decoded to the pk's type), keyed by `String(pk)`; absent pks are left out. */
  revisions(pks: unknown[]): Promise<Map<string, number>>
  /** Delete every row of the table; returns how many. */
  clear(): Promise<number>
  count(): Promise<number>
}
