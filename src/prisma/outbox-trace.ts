import { activeTraceparent } from '../tracing/tracing.js'
import type { ModelMeta } from './internals.js'

/** The outbox's trace-context column, or null in an outbox migrated before traces (it works, untraced). */
export function traceColumnOf(outbox: ModelMeta): string | null {
  return outbox.fields.find((f) => f.name === 'traceContext')?.column ?? null
}

/**
 * The outbox rows of one write, with the `traceparent` of the span active around the write when the
 * outbox model has `traceContext` (added with traces; outboxes migrated before still work, untraced).
 */
export async function withTraceContext<T extends object>(events: T[], outbox: ModelMeta): Promise<T[]> {
  if (!traceColumnOf(outbox)) return events
  const traceContext = await activeTraceparent()
  return traceContext ? events.map((e) => ({ ...e, traceContext })) : events
}
