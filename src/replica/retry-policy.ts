import { NonRetryableError } from '../core/errors.js'

/** Errors that mean the database (not the message) is the problem: wait and try again, do not spend retries. */
const CONNECTION_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', '57P01', '08006', '08001', '08003'])
const CONNECTION_TEXT = /ECONNREFUSED|ECONNRESET|EPIPE|Connection terminated|connection (is )?closed|server closed the connection|Can't reach database|terminating connection|socket has been ended|pool timeout|Timed out fetching a new connection|DatabaseNotReachable|ConnectionClosed|SocketTimeout|getaddrinfo/i

export function isConnectionError(e: unknown): boolean {
  for (let err: any = e, depth = 0; err && depth < 5; err = err.cause, depth++) {
    if (CONNECTION_CODES.has(String(err.code)) || CONNECTION_TEXT.test(String(err.message ?? '')) || CONNECTION_TEXT.test(String(err.kind ?? ''))) return true
  }
  return false
}

export const isPermanent = (e: unknown): boolean => e instanceof NonRetryableError

export interface RetryDecision {
  kind: 'retry' | 'deadLetter'
  delayMs: number
  reason: string
}

/** After a failed attempt number `retries` (0 = first delivery): wait in the broker, or give up. */
export function decideRetry(e: unknown, retries: number, maxRetries: number, delaysMs: number[]): RetryDecision {
  const message = errorText(e)
  if (isPermanent(e)) return { kind: 'deadLetter', delayMs: 0, reason: message }
  if (retries >= maxRetries) return { kind: 'deadLetter', delayMs: 0, reason: `gave up after ${retries + 1} attempts: ${message}` }
  return { kind: 'retry', delayMs: delaysMs[Math.min(retries, delaysMs.length - 1)], reason: message }
}

export function errorText(e: unknown): string {
  const err = e as { name?: string; message?: string; code?: string }
  const text = `${err?.code ? `${err.code} ` : ''}${err?.message ?? String(e)}`
  return text.replace(/\s+/g, ' ').slice(0, 1000)
}
