import { describe, expect, it } from 'vitest'
import type { ApplyOp } from '../../src/replica/apply-op.js'
import { newest } from '../../src/replica/version-gate.js'
import { decideRetry } from '../../src/replica/retry-policy.js'
import { NonRetryableError } from '../../src/core/errors.js'

const op = (signal: ApplyOp['signal'], revision: number, force = false): ApplyOp => ({ signal, revision, force, pk: 1, pkKey: '1', updated: null, values: new Map() })

describe('newest op per pk', () => {
  it('takes the highest revision, whatever the order', () => {
    expect(newest(op('SAVE', 3), op('SAVE', 1)).revision).toBe(3)
    expect(newest(op('SAVE', 1), op('SAVE', 3)).revision).toBe(3)
  })
  it('at equal revision the DELETE wins (it follows its SAVE)', () => {
    expect(newest(op('SAVE', 2), op('DELETE', 2)).signal).toBe('DELETE')
    expect(newest(op('DELETE', 2), op('SAVE', 2)).signal).toBe('DELETE')
  })
  it('a forced SYNC wins outright', () => {
    expect(newest(op('SAVE', 9), op('SYNC', 1, true)).force).toBe(true)
  })
})

describe('retry policy', () => {
  const delays = [100, 1000]
  it('retries with the configured backoff, the last delay repeating', () => {
    expect(decideRetry(new Error('x'), 0, 5, delays)).toEqual({ kind: 'retry', delayMs: 100, reason: 'x' })
    expect(decideRetry(new Error('x'), 3, 5, delays)).toMatchObject({ kind: 'retry', delayMs: 1000 })
  })
  it('dead-letters after the last retry and at once for permanent errors', () => {
    expect(decideRetry(new Error('x'), 5, 5, delays)).toEqual({ kind: 'deadLetter', delayMs: 0, reason: 'gave up after 6 attempts: x' })
    expect(decideRetry(new NonRetryableError('bad'), 0, 5, delays)).toMatchObject({ kind: 'deadLetter', reason: 'CQRS_NON_RETRYABLE bad' })
  })
})
