import { z } from 'zod'
import type { Logger } from '../core/logger.js'
import type { CqrsMessage } from '../core/message.js'
import type { Transport } from '../transport/types.js'
import { ConfigError } from '../core/errors.js'
import { DEFAULTS } from './defaults.js'
import { formatZodError } from './master-options.js'
import type { HandlerContext } from '../core/handler-context.js'

export type { HandlerContext } from '../core/handler-context.js'

const fn = <T extends (...a: any[]) => any>() => z.custom<T>((v) => typeof v === 'function', { message: 'must be a function' })

const tableHandler = z.strictObject({
  /** The replica model (client property `accountRef` or model name `AccountRef`). */
  model: z.string(),
  /** Master key -> replica field, where the names differ. Unmapped keys match a field or column of the same name. */
  fields: z.record(z.string(), z.string()).optional(),
  /** Replaces the insert of a new row (django-cqrs's cqrs_create); `data` is keyed by replica field. */
  create: fn<(data: Record<string, unknown>, ctx: HandlerContext) => Promise<unknown>>().optional(),
  /** Replaces the update of an existing row (django-cqrs's cqrs_update). */
  update: fn<(data: Record<string, unknown>, ctx: HandlerContext) => Promise<unknown>>().optional(),
  /** Replaces the delete. */
  delete: fn<(pk: unknown, ctx: HandlerContext) => Promise<unknown>>().optional(),
})

const customHandler = z.strictObject({
  /** A replica that is not a table (a cache, a search index): called once per message; you own idempotency. */
  handle: fn<(message: CqrsMessage, ctx: Omit<HandlerContext, 'tx'>) => Promise<unknown>>(),
})

export const replicaOptionsSchema = z.strictObject({
  prisma: z.custom<any>((v) => !!v && typeof (v as any).$transaction === 'function', { message: 'must be a PrismaClient (the replica database)' }),
  transport: z.custom<Transport>((v) => !!v && typeof (v as Transport).consume === 'function', { message: 'must be a transport, e.g. rabbitmq({ url }) from cqrs-sync/rabbitmq' }),
  queue: z.string().min(1).regex(/^[\w.-]+$/, 'may hold letters, digits, _, . and -'),
  handlers: z.record(z.string(), z.union([tableHandler, customHandler])).refine((h) => Object.keys(h).length > 0, 'name at least one cqrs_id, e.g. { account: { model: "accountRef" } }'),
  prefetch: z.number().int().positive().default(DEFAULTS.replica.prefetch),
  batchSize: z.number().int().positive().max(5000).default(DEFAULTS.replica.batchSize),
  /** Start a NEW queue at this time of the transport's retention (nats only; `cqrs consume --from`). */
  from: z.date().optional(),
  retry: z
    .strictObject({
      /** Attempts after the first; then the message is dead-lettered. */
      maxRetries: z.number().int().min(0).default(5),
      /** Broker-side waits before each retry (the last repeats). */
      delaysMs: z.array(z.number().int().positive()).min(1).default([1000, 5000, 30_000, 120_000, 600_000]),
    })
    .prefault({}),
  /** Dead-letter messages whose `expires` passed (the protocol's rule). */
  honorExpires: z.boolean().default(true),
  /** How long tombstones of deleted rows are kept. */
  tombstoneRetentionMs: z.number().int().positive().default(7 * 24 * 3600 * 1000),
  revisionField: z.string().default('cqrsRevision'),
  updatedField: z.string().default('cqrsUpdated'),
  logger: z.custom<Logger>((v) => !!v && typeof (v as Logger).error === 'function').optional(),
})

export type ReplicaOptions = z.input<typeof replicaOptionsSchema>
export type ResolvedReplicaOptions = z.output<typeof replicaOptionsSchema>
export type TableHandlerOptions = z.output<typeof tableHandler>
export type CustomHandlerOptions = z.output<typeof customHandler>

export function resolveReplicaOptions(input: unknown): ResolvedReplicaOptions {
  const r = replicaOptionsSchema.safeParse(input)
  if (r.success) return r.data
  throw new ConfigError(formatZodError(r.error, 'cqrsReplica'))
}
