/** One logger hook for every background loop. Fields are structured; secrets are redacted by callers. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
}

const LEVELS = ['debug', 'info', 'warn', 'error'] as const
type Level = (typeof LEVELS)[number]

/** JSON lines on stderr at `level` and above (env CQRS_LOG_LEVEL, default warn). */
export function stderrLogger(level: Level = (process.env.CQRS_LOG_LEVEL as Level) || 'warn'): Logger {
  const min = Math.max(0, LEVELS.indexOf(level))
  const log = (l: Level) => (msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS.indexOf(l) < min) return
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: l, msg, ...redact(fields) })}\n`)
  }
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }

/** Passwords in URLs (`amqp://user:secret@host`) become `***`; Error objects become their message. */
export function redact(fields?: Record<string, unknown>): Record<string, unknown> | undefined {
  if (!fields) return fields
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(fields)) {
    if (v instanceof Error) out[k] = redactUrl(v.message)
    else if (typeof v === 'string') out[k] = redactUrl(v)
    else if (typeof v === 'bigint') out[k] = v.toString()
    else out[k] = v
  }
  return out
}

export const redactUrl = (s: string): string => s.replace(/(\w+:\/\/[^:/@\s]*:)[^@\s]*@/g, '$1***@')
