/**
 * W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header), version 00:
 * `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`. Written and read here, without a
 * propagator, so the outbox row and the AMQP header always carry this one form.
 */
export interface TraceParent {
  traceId: string
  spanId: string
  traceFlags: number
}

const PATTERN = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** `traceparent` for a span context; null for the all-zero (invalid) ids. */
export function formatTraceparent(c: TraceParent): string | null {
  if (!/^[0-9a-f]{32}$/.test(c.traceId) || /^0+$/.test(c.traceId) || !/^[0-9a-f]{16}$/.test(c.spanId) || /^0+$/.test(c.spanId)) return null
  return `00-${c.traceId}-${c.spanId}-${(c.traceFlags & 0xff).toString(16).padStart(2, '0')}`
}

/** The span context in a `traceparent` value, or null when it is absent or malformed (a peer's header is never trusted). */
export function parseTraceparent(value: unknown): TraceParent | null {
  if (typeof value !== 'string' && !Buffer.isBuffer(value)) return null
  const m = PATTERN.exec(String(value).trim().toLowerCase())
  if (!m || /^0+$/.test(m[1]) || /^0+$/.test(m[2])) return null
  return { traceId: m[1], spanId: m[2], traceFlags: parseInt(m[3], 16) }
}
