import { activeTraceparent } from '../tracing/tracing.js'
import type { ModelMeta } from './internals.js'

/**
 * The outbox rows of one write, with the `traceparent` of the span active around the write when the
 * outbox model has `traceContext` (added with traces; outboxes migrated before still work, untraced).
 */
export async function withTraceContext<T extends object>(events: T[], outbox: ModelMeta): Promise<T[]> {
  if (!outbox.fields.some((f) => f.name === 'traceContext')) return events
  const traceContext = await activeTraceparent()
  return traceContext ? events.map((e) => ({ ...e, traceContext })) : events
}
