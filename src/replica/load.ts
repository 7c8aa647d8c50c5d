import { LineError, parseDumpLine, type Line } from '../core/dump-format.ts'
import type { CqrsMessage } from '../core/message.ts'
import type { TableTarget } from './apply-op.ts'
import type { Applier, ApplyItem } from './applier.ts'
import { toApplyOp } from './decode-op.ts'

/** One applied batch of a load. */
export interface LoadBatch {
  /** Row lines in this batch, good or bad. */
  lines: number
  applied: number
  /** Older than (or as old as a tombstone for) what the replica has, or an older duplicate in the batch. */
  skipped: number
  failed: number
}

/** The dump keys that carry the pk: every key the replica maps to its pk column, then `id`. */
function pkKeys(target: TableTarget): string[] {
  const keys = [...target.byKey].filter(([, c]) => c === target.pk).map(([k]) => k)
  return [...new Set([...keys, 'id'])]
}

/**
 * `cqrs bulk-load`: apply dump rows (the lines after the cqrs_id) in batches, each row as a SYNC of its
 * `instance_data`, through the replica's version-gated apply: a missing row is inserted, a row at a
 * lower or equal revision is overwritten, a newer row or a tombstone at least as new is kept. A line
 * that cannot be read or applied is yielded as a {@link LineError} (with its line number) and the rest
 * goes on.
 */
export async function* loadDump(o: { target: TableTarget; applier: Applier; lines: AsyncIterable<Line>; batchSize: number }): AsyncIterable<LoadBatch | LineError> {
  const keys = pkKeys(o.target)
  let batch: Line[] = []
  const flush = async function* (lines: Line[]): AsyncIterable<LoadBatch | LineError> {
    const items: ApplyItem[] = []
    const lineOf: number[] = []
    const out: LoadBatch = { lines: lines.length, applied: 0, skipped: 0, failed: 0 }
    for (const l of lines) {
      try {
        const data = parseDumpLine(l)
        const pkKey = keys.find((k) => data[k] !== undefined && data[k] !== null)
        if (!pkKey) throw new LineError(l.line, `the row has no primary key: none of ${keys.map((k) => `'${k}'`).join(', ')} is set`)
        const message: CqrsMessage = {
          signal_type: 'SYNC',
          cqrs_id: o.target.cqrsId,
          instance_data: data,
          previous_data: null,
          instance_pk: data[pkKey] as CqrsMessage['instance_pk'],
          correlation_id: null,
          retries: 0,
          expires: null,
          meta: {},
        }
        items.push({ message, op: toApplyOp(o.target, message) })
        lineOf.push(l.line)
      } catch (e) {
        out.failed++
        yield e instanceof LineError ? e : new LineError(l.line, (e as Error).message)
      }
    }
    if (items.length) {
      const results = await o.applier.apply(items)
      for (let i = 0; i < results.length; i++) {
        const r = results[i]
        if (r instanceof Error) {
          out.failed++
          yield new LineError(lineOf[i], `not applied: ${r.message}`)
        } else out[r]++
      }
    }
    yield out
  }
  for await (const l of o.lines) {
    batch.push(l)
    if (batch.length >= o.batchSize) {
      yield* flush(batch)
      batch = []
    }
  }
  if (batch.length) yield* flush(batch)
}
