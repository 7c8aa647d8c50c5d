import { decodeValue, encodeValue } from '../core/codec.js'
import { LineError } from '../core/dump-format.js'
import { decodedBatches, type Parsed, type WirePk } from '../core/diff-format.js'
import type { TableTarget } from './apply-op.js'
import type { TableReader } from './table-reader.js'

/** One batch of diff-replica: of `checked` master pks, those the replica lacks or holds at another revision. */
export interface DiffReplicaBatch {
  line: number
  checked: number
  /** Pks to re-sync, as they came from the master (their JSON type kept). */
  drifted: WirePk[]
  missing: number
  stale: number
}

/** Wire pks decoded to the replica pk's column type; a pk of the wrong type fails the whole line. */
export function decodeReplicaPks(target: TableTarget, line: number, pks: WirePk[]): unknown[] {
  try {
    return pks.map((pk) => decodeValue(target.pk.kind, pk, target.pk.field))
  } catch (e) {
    throw new LineError(line, `${(e as Error).message} (the primary key of ${target.table} is ${target.pk.kind}; is this the output for cqrs_id '${target.cqrsId}'?)`)
  }
}

/** A replica pk as it goes on the wire. */
export const replicaWirePk = (target: TableTarget, pk: unknown): WirePk => encodeValue(target.pk.kind, pk) as WirePk

/**
 * Stage 2 of the diff pipe: for each batch of master `[pk, revision]` pairs, look the pks up in the
 * replica table (one query per batch) and keep those missing or at a different revision.
 */
export async function* diffReplica(o: { reader: TableReader; target: TableTarget; batches: AsyncIterable<Parsed<Array<[WirePk, number]>>> }): AsyncIterable<DiffReplicaBatch | LineError> {
  for await (const b of decodedBatches(o.batches, (line, items) => decodeReplicaPks(o.target, line, items.map(([pk]) => pk)))) {
    if (b instanceof LineError) {
      yield b
      continue
    }
    const { pks } = b
    const stored = pks.length ? await o.reader.revisions(pks) : new Map<string, number>()
    const out: DiffReplicaBatch = { line: b.line, checked: pks.length, drifted: [], missing: 0, stale: 0 }
    b.items.forEach(([pk, revision], i) => {
      const have = stored.get(String(pks[i]))
      if (have === revision) return
      if (have === undefined) out.missing++
      else out.stale++
      out.drifted.push(pk)
    })
    yield out
  }
}

/** Stage 1 of the deleted-diff pipe: every replica pk, one array per page in pk order. */
export async function* replicaPks(o: { reader: TableReader; target: TableTarget; batchSize: number }): AsyncIterable<WirePk[]> {
  for await (const page of o.reader.keyPages(o.batchSize)) yield page.map((k) => replicaWirePk(o.target, k.pk))
}
