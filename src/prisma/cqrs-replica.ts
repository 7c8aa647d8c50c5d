import { resolveReplicaOptions, type ReplicaOptions, type ResolvedReplicaOptions, type TableHandlerOptions } from '../config/replica-options.js'
import { JsonNull } from '@prisma/client/runtime/client'
import type { ExactDateTime } from '../core/datetime.js'
import { ConfigError, didYouMean } from '../core/errors.js'
import { RawJson } from '../core/json.js'
import { stderrLogger, type Logger } from '../core/logger.js'
import { metricsHub } from '../metrics/metrics-hub.js'
import { traceApply } from '../tracing/tracing.js'
import type { ApplyOp, TableTarget, TargetColumn } from '../replica/apply-op.js'
import { JSON_NULL } from '../replica/decode-op.js'
import { ReplicaConsumer, type Route, type RowHooks } from '../replica/replica-consumer.js'
import { runtime, type RuntimeTransport } from '../transport/runtime-transport.js'
import type { QueueSpec, Subscription } from '../transport/types.js'
import { modelsOf, providerOf, type ModelMeta } from './internals.js'
import { findModel } from './model-plans.js'
import { PrismaReplicaStore } from './prisma-replica-store.js'

/**
 * The replica side: `cqrsReplica({ prisma, transport, queue, handlers })`, then `start()` (or
 * `cqrs consume`). Each cqrs_id lands in a replica table (version-gated upserts, tombstoned deletes),
 * through row hooks, or in a fully custom handler.
 */
export class Replica {
  readonly options: ResolvedReplicaOptions
  readonly store: PrismaReplicaStore
  readonly routes: Map<string, Route>
  readonly consumer: ReplicaConsumer
  readonly transport: RuntimeTransport
  readonly logger: Logger
  private subscription: Subscription | null = null
  private pruneTimer: NodeJS.Timeout | null = null
  private unregisterQueue: (() => void) | null = null

  constructor(input: ReplicaOptions) {
    const o = (this.options = resolveReplicaOptions(input))
    this.logger = o.logger ?? stderrLogger()
    const metas = modelsOf(o.prisma)
    this.store = new PrismaReplicaStore(o.prisma, providerOf(o.prisma))
    this.routes = new Map()
    for (const [cqrsId, h] of Object.entries(o.handlers)) {
      if ('handle' in h) this.routes.set(cqrsId, { kind: 'custom', handle: h.handle })
      else {
        const meta = resolveModel(metas, cqrsId, h.model)
        const target = buildTarget(cqrsId, meta, h, o)
        const custom = h.create || h.update || h.delete
        this.routes.set(cqrsId, { kind: 'table', target, hooks: custom ? rowHooks(meta, target, h, this.store) : undefined })
      }
    }
    this.transport = runtime(o.transport)
    this.consumer = new ReplicaConsumer({ queue: o.queue, routes: this.routes, store: this.store, maxRetries: o.retry.maxRetries, delaysMs: o.retry.delaysMs, honorExpires: o.honorExpires, logger: this.logger })
  }

  /** The queue, its bindings and its retry delays. */
  get spec(): QueueSpec {
    return { queue: this.options.queue, cqrsIds: [...this.routes.keys()], retryDelaysMs: [...new Set(this.options.retry.delaysMs)] }
  }

  get stats() {
    return this.consumer.stats
  }

  /** Declare the queue and consume it until `stop()`. */
  async start(): Promise<void> {
    if (this.subscription) return
    const { prefetch, batchSize, from } = this.options
    // inFlight 2: the consumer decodes the next batch while it applies one (it applies them in turn).
    this.subscription = await this.transport.consume({ ...this.spec, prefetch, batchSize, inFlight: 2, ...(from && { from }) }, traceApply(this.options.queue, this.consumer.handle))
    const { queueStats } = this.transport
    if (queueStats) this.unregisterQueue = metricsHub.add(metricsHub.queues, { spec: this.spec, queueStats })
    const prune = () => void this.pruneTombstones().catch((e) => this.logger.warn('cqrs replica: pruning tombstones failed', { error: e as Error }))
    this.pruneTimer = setInterval(prune, Math.min(3600_000, this.options.tombstoneRetentionMs))
    this.pruneTimer.unref()
  }

  /** Stop taking messages, finish the batch in flight (its acks included), close the transport. */
  async stop(): Promise<void> {
    if (this.pruneTimer) clearInterval(this.pruneTimer)
    this.unregisterQueue?.()
    this.consumer.stop()
    await this.subscription?.stop()
    this.subscription = null
    await this.transport.close()
    await this.store.close()
  }

  /** Remove tombstones older than the retention. */
  pruneTombstones(now = Date.now()): Promise<number> {
    return this.store.pruneTombstones(new Date(now - this.options.tombstoneRetentionMs))
  }
}

export function cqrsReplica(options: ReplicaOptions): Replica {
  return new Replica(options)
}

function resolveModel(metas: Map<string, ModelMeta>, cqrsId: string, model: string): ModelMeta {
  const meta = findModel(metas, model)
  if (meta) return meta
  const known = [...metas.values()].map((m) => m.prop)
  throw new ConfigError(`Unknown model '${model}' in cqrsReplica({ handlers: { ${cqrsId}: { model } } }); known: ${known.join(', ')}.${didYouMean(model, known)}`)
}

function buildTarget(cqrsId: string, meta: ModelMeta, h: TableHandlerOptions, o: ResolvedReplicaOptions): TableTarget {
  // One object per field: the consumer compares columns by identity.
  const columns = new Map<string, TargetColumn>(meta.fields.map((f) => [f.name, { column: f.column, field: f.name, kind: f.kind, required: f.isRequired }]))
  const col = (name: string) => columns.get(name)
  const revision = col(o.revisionField)
  if (!revision)
    throw new ConfigError(`Replica model ${meta.name} (cqrs_id '${cqrsId}') has no revision field '${o.revisionField}'. Add \`${o.revisionField} Int @map("cqrs_revision")\` (and \`${o.updatedField} DateTime @map("cqrs_updated")\`) to it and migrate.`)
  if (meta.idFields.length !== 1) throw new ConfigError(`Replica model ${meta.name} needs a single-field @id (composite keys are not supported)`)
  const pk = col(meta.idFields[0])!
  const byKey = new Map<string, TargetColumn>()
  for (const f of meta.fields) {
    const c = col(f.name)!
    byKey.set(f.column, c)
    byKey.set(f.name, c)
  }
  for (const [key, field] of Object.entries(h.fields ?? {})) {
    const c = col(field)
    if (!c) {
      const names = meta.fields.map((f) => f.name)
      throw new ConfigError(`Unknown field '${field}' in cqrsReplica({ handlers: { ${cqrsId}: { fields: { ${key}: '${field}' } } } }); ${meta.name} has: ${names.join(', ')}.${didYouMean(field, names)}`)
    }
    byKey.set(key, c)
  }
  return { cqrsId, table: meta.table, pk, revision, updated: col(o.updatedField) ?? null, byKey }
}

/**
 * Hooks for a handler with create/update/delete: the given ones get the row keyed by replica field
 * ({@link prismaData}); the others write as the batch path does (exact, through the store's SQL in
 * the hook transaction), not through Prisma, which keeps datetimes to the millisecond.
 */
function rowHooks(meta: ModelMeta, target: TableTarget, h: TableHandlerOptions, store: PrismaReplicaStore): RowHooks {
  const where = (pk: unknown) => ({ [target.pk.field]: pk })
  const write = (op: ApplyOp, ctx: { tx: unknown }) => store.writeRow(ctx.tx, target, op)
  return {
    create: h.create ? (op, ctx) => h.create!(prismaData(target, op), ctx) : write,
    update: h.update ? (op, ctx) => h.update!(prismaData(target, op), ctx) : write,
    delete: h.delete ?? ((pk, ctx) => ctx.tx[meta.prop].deleteMany({ where: where(pk) })),
    async revisionOf(tx: any, pk) {
      const row = await tx[meta.prop].findUnique({ where: where(pk), select: { [target.revision.field]: true } })
      return row ? Number(row[target.revision.field]) : null
    },
  }
}

/**
 * An op's row keyed by replica field, in the types Prisma takes, for a user's create/update hook:
 * datetimes as Date (Prisma's precision: milliseconds), dates as Date at UTC midnight, decimals as
 * their exact text, JSON with its numbers as JavaScript numbers (`33.0` becomes `33`) and a JSON null
 * in a NOT NULL column as Prisma's JsonNull.
 */
export function prismaData(target: TableTarget, op: ApplyOp): Record<string, unknown> {
  const data: Record<string, unknown> = { [target.pk.field]: op.pk, [target.revision.field]: op.revision }
  if (target.updated) data[target.updated.field] = op.updated?.toDate() ?? null
  for (const col of new Set(target.byKey.values())) if (op.values.has(col.column)) data[col.field] = prismaValue(col, op.values.get(col.column))
  return data
}

function prismaValue(col: TargetColumn, v: unknown): unknown {
  if (v === null || v === undefined) return null
  switch (col.kind) {
    case 'DateTime':
      return (v as ExactDateTime).toDate()
    case 'Date':
      return new Date(`${v as string}T00:00:00Z`)
    case 'Json':
      return v === JSON_NULL ? JsonNull : plainJson(v)
    default:
      return v
  }
}

/** A JSON value with its numbers as JavaScript numbers: Prisma's Json input takes nothing else. */
function plainJson(v: unknown): unknown {
  if (v instanceof RawJson) return Number(v.text)
  if (typeof v === 'bigint') return Number(v)
  if (Array.isArray(v)) return v.map(plainJson)
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plainJson(x)]))
  return v
}
