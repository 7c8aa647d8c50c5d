import type { CaptureContext, Row } from '../config/master-options.js'
import { instanceData } from './event-builder.js'
import type { ModelPlan } from './model-plan.js'
import { formatDumpLine } from '../core/dump-format.js'
import type { RenderedDumpSource, RowSource } from './row-source.js'

export interface DumpOptions {
  source: RowSource
  plan: ModelPlan
  /** Handed to a serializer (its `tx` reads relations). */
  ctx: CaptureContext
  batchSize: number
  /** A Prisma `where` object; absent: every row. */
  where?: Record<string, unknown>
}

/** One page of a dump: the rows' `instance_data`, and how many rows were read for it. */
export interface DumpPage {
  rows: Array<Record<string, unknown>>
  /** Rows read, including those the model's `filter` left out. */
  scanned: number
}

/** Whether a master row is replicated at all: rows failing the model's `filter` are absent for every tool. */
export const replicated = (plan: ModelPlan, row: Row): boolean => !plan.filter || plan.filter(row)

/**
 * The rows of a master model as a SAVE's `instance_data` (the same encoder), page by page in pk order,
 * in constant memory: what `cqrs bulk-dump` writes one per line after the cqrs_id.
 */
export async function* dumpRows(o: DumpOptions): AsyncIterable<DumpPage> {
  for await (const page of o.source.pages({ batchSize: o.batchSize, where: o.where })) {
    const rows: Array<Record<string, unknown>> = []
    for (const row of page) if (replicated(o.plan, row)) rows.push(await instanceData(o.plan, row, o.ctx))
    yield { rows, scanned: page.length }
  }
}

/**
 * The dump as text, page by page: rendered by the database when the source can (PostgreSQL, a plan
 * without serializer or filter, no `where`), else each row through `instanceData()` and
 * `formatDumpLine()`. Both give the same JSON values.
 */
export async function* dumpText(o: DumpOptions & { source: RowSource & RenderedDumpSource }): AsyncIterable<{ text: string | Buffer; rows: number; scanned: number }> {
  const fast = !o.where && !o.plan.serializer && !o.plan.filter ? o.source.dumpLineChunks?.(o.plan, o.batchSize) : null
  if (fast) {
    for await (const chunk of fast) yield { ...chunk, scanned: chunk.rows }
    return
  }
  for await (const page of dumpRows(o)) {
    let text = ''
    for (const data of page.rows) text += `${formatDumpLine(data)}\n`
    yield { text, rows: page.rows.length, scanned: page.scanned }
  }
}
