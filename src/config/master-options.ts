import { z } from 'zod'
import { ConfigError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import type { Transport } from '../transport/types.js'
import { DEFAULTS } from './defaults.js'

/** Context handed to serializer, meta and correlation-id functions. */
export interface CaptureContext {
  /** A Prisma client bound to the transaction of the write: read relations through it. */
  tx: any
  /** The Prisma model name (`Author`). */
  model: string
  operation: string
}

export type { Row } from '../core/row.js'
import type { Row } from '../core/row.js'

const fn = <T extends (...a: any[]) => any>() => z.custom<T>((v) => typeof v === 'function', { message: 'must be a function' })

const modelSchema = z.strictObject({
  cqrsId: z.string().min(1).regex(/^[\w.-]+$/, 'may hold letters, digits, _, . and - (it is a routing key)'),
  fields: z.union([z.array(z.string()).min(1), z.record(z.string(), z.string())]).optional(),
  serializer: fn<(row: Row, ctx: CaptureContext) => Row | Promise<Row>>().optional(),
  trackedFields: z.array(z.string()).optional(),
  filter: fn<(row: Row) => boolean>().optional(),
  meta: z.union([z.record(z.string(), z.unknown()), fn<(row: Row, ctx: CaptureContext) => Record<string, unknown>>()]).optional(),
  produce: z.boolean().default(true),
  pk: z.string().optional(),
  /**
   * Wire keys: Prisma field names (`'field'`), `@map` column names (`'column'`), or `'django'`: every
   * event reads as a django-cqrs master's (column names, a foreign key under its relation's name,
   * `previous_data` by attribute name with only the changed tracked fields).
   */
  keys: z.enum(['field', 'column', 'django']).default('field'),
})

export const masterOptionsSchema = z.strictObject({
  transport: z.custom<Transport>((v) => !!v && typeof (v as Transport).publish === 'function', { message: 'must be a transport, e.g. rabbitmq({ url }) from cqrs-sync/rabbitmq or memory() from cqrs-sync/memory' }),
  models: z.record(z.string(), modelSchema).refine((m) => Object.keys(m).length > 0, 'name at least one model, e.g. { account: { cqrsId: "account" } }'),
  /**
   * How events are captured. 'trigger' (default): database triggers write a row image to the outbox
   * in the statement that changes the row (a write costs what plain Prisma costs; raw SQL and nested
   * writes are captured too); install them with your migrations (`cqrs triggers --migration`).
   * 'extension': this extension writes each event in a transaction around the write (no triggers,
   * about a third of plain Prisma's write rate; the serializer sees the write's transaction).
   */
  capture: z.enum(['extension', 'trigger']).default('trigger'),
  /**
   * The `correlation_id` of every event (e.g. from AsyncLocalStorage). With trigger capture a write
   * that has one runs in a transaction that hands it to the trigger (PostgreSQL and MySQL).
   */
  correlationId: fn<(ctx: CaptureContext) => string | null | undefined>().optional(),
  /** Time-to-live of events, as django-cqrs's `expires`; null = never (default). */
  expiresInMs: z.number().int().positive().nullable().default(null),
  revisionField: z.string().default('cqrsRevision'),
  updatedField: z.string().default('cqrsUpdated'),
  outboxModel: z.string().default('CqrsOutbox'),
  relay: z
    .strictObject({
      /** Run the relay in this process (default). Set false when `cqrs relay` runs elsewhere. */
      enabled: z.boolean().default(true),
      batchSize: z.number().int().positive().max(10_000).default(DEFAULTS.relay.batchSize),
      /** How often an idle relay looks at the outbox for rows other processes wrote. */
      pollIntervalMs: z.number().int().positive().default(DEFAULTS.relay.pollIntervalMs),
      /**
       * When commits arrive while a batch is out, the next batch starts at least this long after it
       * started, so it takes more events at once (less CPU per event); 0 claims again at once.
       */
      gatherMs: z.number().int().nonnegative().max(1000).default(DEFAULTS.relay.gatherMs),
    })
    .prefault({}),
  logger: z.custom<Logger>((v) => !!v && typeof (v as Logger).error === 'function').optional(),
})

export type MasterOptions = z.input<typeof masterOptionsSchema>
export type ResolvedMasterOptions = z.output<typeof masterOptionsSchema>
export type MasterModelOptions = z.input<typeof modelSchema>
export type ResolvedModelOptions = z.output<typeof modelSchema>

/** Validate once at the boundary; the message names the key, what is allowed and what was given. */
export function resolveMasterOptions(input: unknown, where = 'cqrsMaster'): ResolvedMasterOptions {
  const r = masterOptionsSchema.safeParse(input)
  if (r.success) {
    return r.data
  }
  throw new ConfigError(formatZodError(r.error, where))
}

export function formatZodError(err: z.ZodError, where: string): string {
  const lines = err.issues.map((i) => {
    const path = i.path.map(String).join('.') || '(options)'
    if (i.code === 'unrecognized_keys') return `- ${path === '(options)' ? '' : `${path}: `}unknown key(s) ${i.keys.map((k) => `'${k}'`).join(', ')}; check the spelling against the README's options table`
    return `- ${path}: ${i.message}`
  })
  return `Invalid options for ${where}():\n${lines.join('\n')}`
}
