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
  // Read and decode batch k+1 while the database applies batch k.
  let inflight: Promise<Array<LoadBatch | LineError>> | null = null
  let batch: Line[] = []
  for await (const l of o.lines) {
    batch.push(l)
    if (batch.length < o.batchSize) continue
    const next = prepare(o.target, keys, batch)
    batch = []
    if (inflight) yield* await inflight
    inflight = apply(o.applier, next)
    inflight.catch(() => {}) // surfaced when awaited
  }
  if (inflight) yield* await inflight
  if (batch.length) yield* await apply(o.applier, prepare(o.target, keys, batch))
}

interface Prepared {
  items: ApplyItem[]
  lineOf: number[]
  errors: LineError[]
  out: LoadBatch
}

/** Parse and decode a batch of dump lines; bad ones become errors with their line number. */
function prepare(target: TableTarget, keys: string[], lines: Line[]): Prepared {
  const p: Prepared = { items: [], lineOf: [], errors: [], out: { lines: lines.length, applied: 0, skipped: 0, failed: 0 } }
  for (const l of lines) {
    try {
      const data = parseDumpLine(l)
      const pkKey = keys.find((k) => data[k] !== undefined && data[k] !== null)
      if (!pkKey) throw new LineError(l.line, `the row has no primary key: none of ${keys.map((k) => `'${k}'`).join(', ')} is set`)
      const message: CqrsMessage = {
        signal_type: 'SYNC',
        cqrs_id: target.cqrsId,
        instance_data: data,
        previous_data: null,
        instance_pk: data[pkKey] as CqrsMessage['instance_pk'],
        correlation_id: null,
        retries: 0,
        expires: null,
        meta: {},
      }
      p.items.push({ message, op: toApplyOp(target, message) })
      p.lineOf.push(l.line)
    } catch (e) {
      p.out.failed++
      p.errors.push(e instanceof LineError ? e : new LineError(l.line, (e as Error).message))
    }
  }
  return p
}

async function apply(applier: Applier, p: Prepared): Promise<Array<LoadBatch | LineError>> {
  const events: Array<LoadBatch | LineError> = [...p.errors]
  if (p.items.length) {
    const results = await applier.apply(p.items)
    results.forEach((r, i) => {
      if (r instanceof Error) {
        p.out.failed++
        events.push(new LineError(p.lineOf[i], `not applied: ${r.message}`))
      } else p.out[r]++
    })
  }
  events.push(p.out)
  return events
}
