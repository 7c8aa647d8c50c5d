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

/**
 * Passwords in URLs (`amqp://user:secret@host`) and in `password=...` settings become `***`, in
 * nested objects too; Error objects become their message.
 */
export function redact(fields?: Record<string, unknown>): Record<string, unknown> | undefined {
  if (!fields) return fields
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(fields)) out[k] = redactValue(v, 0)
  return out
}

function redactValue(v: unknown, depth: number): unknown {
  if (v instanceof Error) return redactUrl(v.message)
  if (typeof v === 'string') return redactUrl(v)
  if (typeof v === 'bigint') return v.toString()
  if (depth < 4 && Array.isArray(v)) return v.map((x) => redactValue(x, depth + 1))
  if (depth < 4 && v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, /^(password|passwd|secret|token)$/i.test(k) ? '***' : redactValue(x, depth + 1)]))
  return v
}

export const redactUrl = (s: string): string => s.replace(/(\w+:\/\/[^:/@\s]*:)[^@\s]*@/g, '$1***@').replace(/\b(password|passwd)=("[^"]*"|'[^']*'|[^\s&;]+)/gi, '$1=***')
