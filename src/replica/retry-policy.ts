import { NonRetryableError } from '../core/errors.js'
import { classifyDbError, permanentReason, type OpValues } from './classify-db-error.js'

/**
 * The database (not the message) is the problem: it is down, restarting, full of connections or
 * read-only. Wait and try again, holding the batch; do not spend retries. See classify-db-error.ts.
 */
export function isConnectionError(e: unknown): boolean {
  return classifyDbError(e).class === 'unavailable'
}

export interface RetryDecision {
  kind: 'retry' | 'deadLetter'
  delayMs: number
  reason: string
}

/**
 * After a failed attempt number `retries` (0 = first delivery): wait in the broker, or give up. A
 * `NonRetryableError` and a permanent database error (a value the column can never hold) give up at
 * once; the reason of the latter names the column and, given the op's `values`, the value.
 */
export function decideRetry(e: unknown, retries: number, maxRetries: number, delaysMs: number[], values?: OpValues): RetryDecision {
  if (e instanceof NonRetryableError) return { kind: 'deadLetter', delayMs: 0, reason: errorText(e) }
  const info = classifyDbError(e)
  if (info.class === 'permanent') return { kind: 'deadLetter', delayMs: 0, reason: permanentReason(info, values).slice(0, 1000) }
  const message = errorText(e)
  if (retries >= maxRetries) return { kind: 'deadLetter', delayMs: 0, reason: `gave up after ${retries + 1} attempts: ${message}` }
  return { kind: 'retry', delayMs: delaysMs[Math.min(retries, delaysMs.length - 1)], reason: message }
}

export function errorText(e: unknown): string {
  const err = e as { name?: string; message?: string; code?: string }
  const text = `${err?.code ? `${err.code} ` : ''}${err?.message ?? String(e)}`
  return text.replace(/\s+/g, ' ').slice(0, 1000)
}
