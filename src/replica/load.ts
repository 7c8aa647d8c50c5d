import { LineError, parseDumpLine, type Line } from '../core/dump-format.js'
import type { CqrsMessage } from '../core/message.js'
import type { TableTarget } from './apply-op.js'
import type { Applier, ApplyItem } from './applier.js'
import { toApplyOp } from './decode-op.js'

/** One applied batch of a load. */
export interface LoadBatch {
  /** Row lines in this batch, good or bad. */
  lines: number
  applied: number
  /** Older than (or as old as a tombstone for) what the replica has, or an older duplicate in the batch. */
  skipped: number
  failed: number
}

/** A dump line read as JSON: a SAVE's `instance_data`. */
export interface DumpRow {
  line: number
  data: Record<string, unknown>
}

/** Which of `keys` ({@link pkKeys}) carries a dump row's pk: the first one set; a {@link LineError} when none is. */
export function pkKeyOf(keys: string[], row: DumpRow): string {
  const key = keys.find((k) => row.data[k] !== undefined && row.data[k] !== null)
  if (!key) throw new LineError(row.line, `the row has no primary key: none of ${keys.map((k) => `'${k}'`).join(', ')} is set`)
  return key
}

/** The dump keys that carry the pk: every key the replica maps to its pk column, then `id`. */
export function pkKeys(target: TableTarget): string[] {
  const keys = [...target.byKey].filter(([, c]) => c === target.pk).map(([k]) => k)
  return [...new Set([...keys, 'id'])]
}

/**
 * `cqrs bulk-load`: apply dump rows (the lines after the cqrs_id) in batches, each row as a SYNC of its
 * `instance_data`, through the replica's version-gated apply: a missing row is inserted, a row at a
 * lower or equal revision is overwritten, a newer row or a tombstone at least as new is kept. A line
 * that cannot be read or applied is yielded as a {@link LineError} (with its line number) and the rest
 * goes on. Up to `inflight` batches (default 2) are under way at once, each in its own transaction:
 * the bulk path's batches overlap until their upserts; the item-by-item path reads a batch while the
 * one before is applied.
 */
export async function* loadDump(o: {
  target: TableTarget
  applier: Applier
  /** The rows: one by one, or (`blocks`) some at a time, which spares an await per line. */
  lines?: AsyncIterable<Line>
  blocks?: AsyncIterable<Line[]>
  batchSize: number
  inflight?: number
  /** The bulk path refused a batch (the database's error); the batch then goes item by item. */
  onBulkError?: (e: Error, lines: Line[]) => void
}): AsyncIterable<LoadBatch | LineError> {
  const keys = pkKeys(o.target)
  const limit = o.inflight ?? 2
  const queue: Array<Promise<Array<LoadBatch | LineError>>> = []
  let previous: Promise<unknown> = Promise.resolve()
  const start = (lines: Line[]) => {
    const p = apply(o.target, keys, o.applier, lines, previous, o.onBulkError)
    p.catch(() => {}) // surfaced when awaited
    queue.push(p)
    previous = p.catch(() => {})
  }
  let batch: Line[] = []
  for await (const block of o.blocks ?? oneByOne(o.lines!))
    for (const l of block) {
      batch.push(l)
      if (batch.length < o.batchSize) continue
      if (queue.length >= limit) yield* await queue.shift()!
      start(batch)
      batch = []
    }
  if (batch.length) start(batch)
  while (queue.length) yield* await queue.shift()!
}

async function* oneByOne(lines: AsyncIterable<Line>): AsyncIterable<Line[]> {
  for await (const l of lines) yield [l]
}

/**
 * Read a batch of lines and apply it: the bulk path when there is one (its batches may overlap), else
 * (or if it is refused) item by item, after the batch before: the consumer's path takes per-pk locks,
 * and on MySQL two such batches could deadlock on gap locks. Either way the lines are read at once,
 * while the batch before is in the database.
 */
async function apply(target: TableTarget, keys: string[], applier: Applier, lines: Line[], previous: Promise<unknown>, onBulkError?: (e: Error, lines: Line[]) => void): Promise<Array<LoadBatch | LineError>> {
  const out: LoadBatch = { lines: lines.length, applied: 0, skipped: 0, failed: 0 }
  const errors: LineError[] = []
  const bulk = applier.loadRows
    ? await applier.loadRows(lines).catch((e: Error) => {
        onBulkError?.(e, lines)
        return null
      })
    : null
  if (bulk) {
    out.applied = bulk.applied
    out.skipped = bulk.skipped
    errors.push(...bulk.errors)
  } else {
    const rows: DumpRow[] = []
    for (const l of lines) {
      try {
        rows.push({ line: l.line, data: parseDumpLine(l) })
      } catch (e) {
        errors.push(e as LineError)
      }
    }
    const { items, lineOf } = toItems(target, keys, rows, errors)
    await previous
    // One statement per batch, or halves of it down to single pks where that fails: the rows that fail are named.
    const results = items.length ? await applier.apply(items) : []
    results.forEach((r, i) => {
      if (r instanceof Error) errors.push(new LineError(lineOf[i], `not applied: ${r.message}`))
      else out[r]++
    })
  }
  out.failed = errors.length
  return [...errors, out]
}

/** Dump rows as SYNC messages and their ops; rows that cannot be decoded become errors. */
function toItems(target: TableTarget, keys: string[], rows: DumpRow[], errors: LineError[]): { items: ApplyItem[]; lineOf: number[] } {
  const items: ApplyItem[] = []
  const lineOf: number[] = []
  for (const row of rows) {
    const { line, data } = row
    try {
      const pkKey = pkKeyOf(keys, row)
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
      items.push({ message, op: toApplyOp(target, message) })
      lineOf.push(line)
    } catch (e) {
      errors.push(e instanceof LineError ? e : new LineError(line, (e as Error).message))
    }
  }
  return { items, lineOf }
}
