import { describe, expect, it } from 'vitest'
import { formatTraceparent, parseTraceparent } from '../../src/tracing/traceparent.js'

describe('traceparent', () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const spanId = '00f067aa0ba902b7'

  it('round-trips the W3C example', () => {
    const value = `00-${traceId}-${spanId}-01`
    expect(parseTraceparent(value)).toEqual({ traceId, spanId, traceFlags: 1 })
    expect(formatTraceparent({ traceId, spanId, traceFlags: 1 })).toBe(value)
    expect(parseTraceparent(Buffer.from(value))).toEqual({ traceId, spanId, traceFlags: 1 })
  })

  it('refuses what a peer may send that is not a valid version-00 context', () => {
    for (const bad of [undefined, 42, '', `01-${traceId}-${spanId}-01`, `00-${'0'.repeat(32)}-${spanId}-01`, `00-${traceId}-${'0'.repeat(16)}-01`, `00-${traceId}-${spanId}`, `00-${traceId.slice(1)}-${spanId}-01`])
      expect(parseTraceparent(bad), String(bad)).toBeNull()
    expect(formatTraceparent({ traceId: '0'.repeat(32), spanId, traceFlags: 0 })).toBeNull()
  })
})
