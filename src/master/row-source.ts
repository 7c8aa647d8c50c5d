import type { Row } from '../config/master-options.js'

/** How to read a table page by page. */
export interface PageOptions {
  /** Rows per page. */
  batchSize: number
  /** A Prisma `where` object (validated by the adapter against the model); absent: every row. */
  where?: Record<string, unknown>
  /** Only the pk and revision fields (diff tools), not the whole row. */
  keysOnly?: boolean
}

/**
 * The master's read seam for the operating tools (dump, sync, diffs), ORM-agnostic. Rows are keyed by
 * model field name with the ORM's types (what `instanceData()` takes). Pages come in pk order by keyset
 * pagination (`pk > last ORDER BY pk LIMIT n`, never OFFSET), so memory does not grow with the table.
 */
export interface RowSource {
  pages(options: PageOptions): AsyncIterable<Row[]>
  /** The rows with these pks (already decoded to the pk's type), in no particular order; absent pks are left out. */
  byPks(pks: unknown[], options?: { keysOnly?: boolean }): Promise<Row[]>
  /** How many rows match, for progress and time-left estimates. */
  count(where?: Record<string, unknown>): Promise<number>
}

/**
 * Optional: the dump's lines rendered by the database itself (the same JSON a SAVE's `instance_data`
 * holds), in pk order, as chunks of text (together: the lines, each ending in a newline) with the
 * number of newlines in each; much faster than building each row in JS. Returns null when it cannot render this plan
 * exactly (a serializer, a filter, a `where`, an unsupported dialect); the caller then formats rows
 * itself.
 */
export interface RenderedDumpSource {
  dumpLineChunks?(plan: import('./model-plan.js').ModelPlan, batchSize: number): AsyncIterable<{ text: string | Buffer; rows: number }> | null
}
