import { z } from 'zod'
import { ConfigError } from '../../core/errors.js'
import { type Logger, redactUrl, stderrLogger } from '../../core/logger.js'

/** Used when neither `nats({ servers })` nor env `NATS_URL` is set. */
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222'

const isLogger = (v: unknown): v is Logger =>
  typeof v === 'object' && v !== null && ['error', 'warn', 'info', 'debug'].every((k) => typeof (v as Record<string, unknown>)[k] === 'function')

// A stream name and a subject token: no dots, wildcards or whitespace.
const token = z.string().regex(/^[A-Za-z0-9_-]+$/, 'may hold letters, digits, _ and -')

const schema = z.strictObject({
  servers: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  stream: token.default('CQRS'),
  subjectPrefix: token.default('cqrs'),
  replicas: z.number().int().min(1).max(5).default(1),
  maxAgeMs: z.number().int().min(0).default(7 * 24 * 3600 * 1000),
  deadLetterMaxAgeMs: z.number().int().min(0).default(0),
  duplicateWindowMs: z.number().int().min(100).default(120_000),
  ackWaitMs: z.number().int().min(100).default(30_000),
  maxAckPending: z.number().int().min(1).default(20_000),
  publishWindow: z.number().int().min(1).default(1000),
  connectionName: z.string().min(1).default('cqrs-sync'),
  user: z.string().optional(),
  pass: z.string().optional(),
  token: z.string().optional(),
  logger: z.custom<Logger>(isLogger, 'must be an object with error, warn, info and debug methods').optional(),
})

/** Options of `nats()`. */
export interface NatsOptions {
  /** `nats://host:port`, or several for a cluster. Default: env `NATS_URL` (comma-separated), else `nats://127.0.0.1:4222`. */
  servers?: string | string[]
  /** The events stream. Default `CQRS`; retries wait in `<stream>_RETRY`, dead letters in `<stream>_DLQ`. */
  stream?: string
  /** First subject token: events go to `<prefix>.<cqrs_id>` and `<prefix>.<queue>.<cqrs_id>`. Default `cqrs`. */
  subjectPrefix?: string
  /** Copies of each stream in a cluster (JetStream `num_replicas`, 1..5). Default 1; use 3 on a three-node cluster. */
  replicas?: number
  /** How long the events stream keeps events, which bounds `cqrs consume --from`. Default 7 days; 0 = forever. */
  maxAgeMs?: number
  /** How long dead letters are kept. Default 0: until `cqrs dead-letters purge`. */
  deadLetterMaxAgeMs?: number
  /** The server drops a second publish with the same message id within this window. Default 2 minutes. */
  duplicateWindowMs?: number
  /** A delivery not acked within this time goes to another worker; held messages are kept alive meanwhile. Default 30 s. */
  ackWaitMs?: number
  /** Unacked messages per durable consumer, over all workers (retries waiting count too). Default 20,000. */
  maxAckPending?: number
  /** Most publishes awaiting the server's ack at once. Default 1000. */
  publishWindow?: number
  /** Shown by the server (`nats server report connections`). Default `cqrs-sync`. */
  connectionName?: string
  /** Credentials, unless given in the URL. */
  user?: string
  pass?: string
  token?: string
  /** Where reconnects and background failures are reported. Default: warnings and errors as JSON lines on stderr. */
  logger?: Logger
}

/** Options after validation and defaults. */
export interface ResolvedNatsOptions {
  servers: string[]
  /** `servers` with passwords replaced by `***`, for messages and logs. */
  safeServers: string
  stream: string
  retryStream: string
  deadLetterStream: string
  subjectPrefix: string
  replicas: number
  maxAgeMs: number
  deadLetterMaxAgeMs: number
  duplicateWindowMs: number
  ackWaitMs: number
  maxAckPending: number
  publishWindow: number
  connectionName: string
  user?: string
  pass?: string
  token?: string
  logger: Logger
}

/** Validate `nats()` options once; throws a {@link ConfigError} naming every bad option. */
export function resolveNatsOptions(input: NatsOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedNatsOptions {
  const parsed = schema.safeParse(input)
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`)
    throw new ConfigError(`invalid nats() options: ${problems.join('; ')}`, { issues: parsed.error.issues })
  }
  const o = parsed.data
  const given = o.servers ?? env.NATS_URL?.split(',').map((s) => s.trim()).filter(Boolean) ?? DEFAULT_NATS_URL
  const servers = Array.isArray(given) ? given : [given]
  const bad = servers.filter((s) => /^[a-z]+:\/\//i.test(s) && !/^(nats|tls|wss?):\/\//i.test(s))
  if (bad.length) throw new ConfigError(`NATS servers must be nats://, tls:// or host:port; got ${bad.map(redactUrl).join(', ')}`)
  return {
    ...o,
    servers,
    safeServers: servers.map(redactUrl).join(','),
    retryStream: `${o.stream}_RETRY`,
    deadLetterStream: `${o.stream}_DLQ`,
    logger: o.logger ?? stderrLogger(),
  }
}
