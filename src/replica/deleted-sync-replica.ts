import { ExactDateTime } from '../core/datetime.js'
import { LineError } from '../core/dump-format.js'
import { decodedBatches, type Parsed, type WirePk } from '../core/diff-format.js'
import type { CqrsMessage } from '../core/message.js'
import type { ApplyOp, TableTarget } from './apply-op.js'
import type { Applier } from './applier.js'
import { decodeReplicaPks } from './diff-replica.js'
import type { TableReader } from './table-reader.js'

/** One batch of deleted-sync-replica. */
export interface DeleteBatch {
  line: number
  deleted: number
  /** Pks already gone from the replica (deleted meanwhile, or listed twice). */
  absent: number
  /** Rows kept because a newer revision arrived between the read and the delete. */
  kept: number
  errors: Array<{ pk: WirePk; error: Error }>
}

/**
 * Stage 3 of the deleted-diff pipe: delete the listed rows from the replica. Each is deleted as a
 * DELETE at the revision the replica holds, through the same version-gated path as a DELETE from the
 * broker: the row goes, a tombstone at that revision stops a late SAVE of the old row from bringing it
 * back, and a SAVE newer than what we read (the master has the row again) is neither deleted nor
 * blocked. A forced delete at an "infinite" revision would block a re-created row until the tombstone
 * is pruned; a delete without a tombstone would let an in-flight SAVE resurrect the row.
 */
export async function* deleteOnReplica(o: { reader: TableReader; target: TableTarget; applier: Applier; batches: AsyncIterable<Parsed<WirePk[]>> }): AsyncIterable<DeleteBatch | LineError> {
  const { target } = o
  for await (const b of decodedBatches(o.batches, (line, items) => decodeReplicaPks(target, line, items))) {
    if (b instanceof LineError) {
      yield b
      continue
    }
    const { pks } = b
    const stored = pks.length ? await o.reader.revisions(pks) : new Map<string, number>()
    const out: DeleteBatch = { line: b.line, deleted: 0, absent: 0, kept: 0, errors: [] }
    const items: Array<{ message: CqrsMessage; op: ApplyOp; pk: WirePk }> = []
    const seen = new Set<string>()
    pks.forEach((pk, i) => {
      const key = String(pk)
      const revision = stored.get(key)
      if (revision === undefined || seen.has(key)) return void out.absent++
      seen.add(key)
      const updated = ExactDateTime.fromDate(new Date())
      const message: CqrsMessage = {
        signal_type: 'DELETE',
        cqrs_id: target.cqrsId,
        instance_data: { id: b.items[i], cqrs_revision: revision, cqrs_updated: updated.toWire() },
        previous_data: null,
        instance_pk: b.items[i],
        correlation_id: null,
        retries: 0,
        expires: null,
        meta: { source: 'deleted-sync-replica' },
      }
      items.push({ message, pk: b.items[i], op: { signal: 'DELETE', force: false, pk, pkKey: key, revision, updated, values: new Map() } })
    })
    if (items.length) {
      const results = await o.applier.apply(items)
      results.forEach((r, i) => {
        if (r instanceof Error) out.errors.push({ pk: items[i].pk, error: r })
        else if (r === 'applied') out.deleted++
        else out.kept++
      })
      // The store's delete is conditional; count what the statement actually left in place.
      if (out.deleted) {
        const left = await o.reader.revisions(items.map((it) => it.op.pk))
        out.kept += left.size
        out.deleted -= left.size
      }
    }
    yield out
  }
}
