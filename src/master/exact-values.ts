import type { Row } from '../config/master-options.js'

/**
 * Where a master row carries values as its database holds them, beside the ORM's values: a symbol key
 * (not seen by `Object.keys`, so a serializer, filter or meta function still sees Prisma's row). Readers
 * that can see more than Prisma (a capture trigger's row image, raw SQL text) put here the datetimes with
 * microseconds (an `ExactDateTime`) and JSON with its number forms (`33.0`, as `parseJson` reads it);
 * the event builder prefers them.
 */
export const EXACT = Symbol.for('cqrs-sync.exact')

type WithExact = Row & { [EXACT]?: Record<string, unknown> }

/** Record the exact value of `field` on `row`. */
export function setExact(row: Row, field: string, value: unknown): void {
  const r = row as WithExact
  ;(r[EXACT] ??= {})[field] = value
}

/** The value of `field` to send: the exact one when a reader left it, else the row's own. */
export function valueOf(row: Row, field: string): unknown {
  const exact = (row as WithExact)[EXACT]
  return exact && field in exact ? exact[field] : row[field]
}
