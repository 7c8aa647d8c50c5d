/** Error hierarchy with stable codes. Every error carries evidence (cqrs_id, pk, queue ...) in `details`. */
export class CqrsError extends Error {
  readonly code: string
  readonly details: Record<string, unknown>
  constructor(code: string, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
    this.details = details
  }
}

/** Bad options passed to cqrsMaster(), cqrsReplica() or the CLI. */
export class ConfigError extends CqrsError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('CQRS_CONFIG', message, details)
  }
}

/**
 * Throw from a replica handler when retrying cannot help (bad data, a broken invariant):
 * the message goes to the dead-letter queue at once.
 */
export class NonRetryableError extends CqrsError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('CQRS_NON_RETRYABLE', message, details, options)
  }
}

/** A message that does not follow PROTOCOL.md. Never retried. */
export class MessageValidationError extends NonRetryableError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(message, details)
    ;(this as { code: string }).code = 'CQRS_INVALID_MESSAGE'
  }
}

/** The broker could not be reached or refused a publish. */
export class TransportError extends CqrsError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('CQRS_TRANSPORT', message, details, options)
  }
}

/** Levenshtein-based hint for "did you mean" messages. */
export function didYouMean(given: string, known: readonly string[]): string {
  let best = ''
  let bestScore = Infinity
  for (const k of known) {
    const d = distance(given.toLowerCase(), k.toLowerCase())
    if (d < bestScore) [best, bestScore] = [k, d]
  }
  return best && bestScore <= Math.max(2, Math.floor(given.length / 3)) ? ` Did you mean '${best}'?` : ''
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = tmp
    }
  }
  return row[b.length]
}
