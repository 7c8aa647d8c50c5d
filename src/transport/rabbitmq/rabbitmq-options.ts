import { z } from 'zod'
import { ConfigError } from '../../core/errors.js'
import { type Logger, redactUrl, stderrLogger } from '../../core/logger.js'

/** Used when neither `rabbitmq({ url })` nor env `AMQP_URL` is set. */
export const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672'

const isLogger = (v: unknown): v is Logger =>
  typeof v === 'object' && v !== null && ['error', 'warn', 'info', 'debug'].every((k) => typeof (v as Record<string, unknown>)[k] === 'function')

const schema = z.strictObject({
  url: z.string().regex(/^amqps?:\/\//, 'must start with amqp:// or amqps://').optional(),
  exchange: z.string().min(1).default('cqrs'),
  publishConfirmWindow: z.number().int().min(1).default(1000),
  reconnect: z
    .strictObject({
      initialMs: z.number().int().min(1).default(100),
      maxMs: z.number().int().min(1).default(10_000),
    })
    .prefault({}),
  heartbeat: z.number().int().min(0).optional(),
  deadLetterExpirationMs: z.number().int().min(1).optional(),
  connectionName: z.string().min(1).default('cqrs-sync'),
  queueType: z.enum(['classic', 'quorum']).default('classic'),
  logger: z.custom<Logger>(isLogger, 'must be an object with error, warn, info and debug methods').optional(),
})

/** Options of `rabbitmq()`. */
export interface RabbitmqOptions {
  /** `amqp://user:password@host:port/vhost`. Default: env `AMQP_URL`, else `amqp://guest:guest@127.0.0.1:5672`. */
  url?: string
  /** The topic exchange shared with django-cqrs peers. Default `cqrs`; retries use `<exchange>.delay`. */
  exchange?: string
  /** Most published messages awaiting the broker's confirm at once; publishing waits beyond it. Default 1000. */
  publishConfirmWindow?: number
  /** Backoff between reconnect attempts: doubles from `initialMs` up to `maxMs`, with jitter. Default 100 ms .. 10 s. */
  reconnect?: { initialMs?: number; maxMs?: number }
  /** AMQP heartbeat in seconds; 0 disables it. Default: what the broker proposes. */
  heartbeat?: number
  /** TTL of dead letters in ms (django-cqrs uses 10 days). Default: they never expire. */
  deadLetterExpirationMs?: number
  /** Shown by the broker (`rabbitmqctl list_connections client_properties`). Default `cqrs-sync`. */
  connectionName?: string
  /**
   * The type of the replica queue, its delay queues and its dead-letter queue. `quorum` replicates
   * them over a cluster's nodes (RabbitMQ >= 3.10). Default `classic`, as django-cqrs declares them;
   * both kinds can be bound to one exchange. Changing it for an existing queue needs the queue moved
   * (README, "Transports and clusters").
   */
  queueType?: 'classic' | 'quorum'
  /** Where reconnects and background failures are reported. Default: warnings and errors as JSON lines on stderr. */
  logger?: Logger
}

/** Options after validation and defaults; the transport sees only these. */
export interface ResolvedRabbitmqOptions {
  url: string
  /** `url` with the password replaced by `***`, for messages and logs. */
  safeUrl: string
  /** What amqplib connects to: `url` plus the heartbeat parameter if set. */
  connectUrl: string
  exchange: string
  publishConfirmWindow: number
  reconnect: { initialMs: number; maxMs: number }
  heartbeat?: number
  deadLetterExpirationMs?: number
  connectionName: string
  queueType: 'classic' | 'quorum'
  logger: Logger
}

/** Validate `rabbitmq()` options once; throws a {@link ConfigError} naming every bad option. */
export function resolveRabbitmqOptions(input: RabbitmqOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedRabbitmqOptions {
  const parsed = schema.safeParse(input)
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`)
    throw new ConfigError(`invalid rabbitmq() options: ${problems.join('; ')}`, { issues: parsed.error.issues })
  }
  const o = parsed.data
  if (o.reconnect.maxMs < o.reconnect.initialMs) {
    throw new ConfigError(`invalid rabbitmq() options: reconnect.maxMs (${o.reconnect.maxMs}) must be >= reconnect.initialMs (${o.reconnect.initialMs})`)
  }
  const url = o.url ?? env.AMQP_URL ?? DEFAULT_AMQP_URL
  if (!/^amqps?:\/\//.test(url)) {
    throw new ConfigError(`AMQP_URL must start with amqp:// or amqps://; got ${redactUrl(url)}`)
  }
  return {
    ...o,
    url,
    safeUrl: redactUrl(url),
    connectUrl: o.heartbeat === undefined ? url : withQuery(url, 'heartbeat', String(o.heartbeat)),
    logger: o.logger ?? stderrLogger(),
  }
}

function withQuery(url: string, key: string, value: string): string {
  const u = new URL(url)
  u.searchParams.set(key, value)
  return u.toString()
}
