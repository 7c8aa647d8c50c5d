import { Prisma } from '@prisma/client/extension'
import { resolveMasterOptions, type MasterOptions, type ResolvedMasterOptions } from '../config/master-options.js'
import { ConfigError } from '../core/errors.js'
import { stderrLogger, type Logger } from '../core/logger.js'
import type { ModelPlan } from '../master/model-plan.js'
import { Relay, type DrainOptions } from '../master/relay.js'
import { cqrsMetricsText } from '../metrics/cqrs-metrics.js'
import { runtime } from '../transport/runtime-transport.js'
import type { Transport } from '../transport/types.js'
import { applyCaptureTriggers, assertCaptureTriggers, captureTriggersScript, type TriggerTarget } from './capture-triggers.js'
import { Capture, WRITE_OPERATIONS } from './capture.js'
import { clientInTransaction, currentTransaction, modelsOf, providerOf, queryInTransaction, runPromiseInTransaction, transactionOf, type ModelMeta, type Provider, type TransactionDescriptor } from './internals.js'
import { buildPlans, findModel } from './model-plans.js'
import { outboxNotifySql, outboxWakeSql } from './outbox-notify.js'
import { outboxTargetOf, sessionContextSql, type OutboxTarget } from './trigger-sql.js'
import { activeTraceparent } from '../tracing/tracing.js'
import { PrismaOutboxStore } from './prisma-outbox-store.js'
import { rowImageRenderer } from './row-image-renderer.js'

/** What `prisma.$cqrs` offers on an extended client. */
export interface CqrsMasterHandle {
  relay: Relay
  /**
   * Publish everything in the outbox now; resolves with the count when it is empty. Waits for a
   * broker that is away; with `{ timeoutMs }` rejects (`CQRS_FLUSH_TIMEOUT`) after that long instead.
   */
  flush(options?: DrainOptions | number): Promise<number>
  /** Stop the in-process relay and close the transport. Call before `$disconnect()`. */
  close(): Promise<void>
  /** This process's cqrs-sync metrics in Prometheus's text format (loads the optional peer prom-client); see `cqrsMetrics()`. */
  metrics(): Promise<string>
}

/** Options and schema resolved once for a client: plans, metadata, the outbox. */
interface MasterSetup {
  opts: ResolvedMasterOptions
  metas: Map<string, ModelMeta>
  provider: Provider
  plans: Map<string, ModelPlan>
  outboxMeta: ModelMeta
  outbox: OutboxTarget
  triggerTargets: TriggerTarget[]
}

function setup(client: any, opts: ResolvedMasterOptions): MasterSetup {
  const metas = modelsOf(client)
  const provider = providerOf(client)
  const plans = Object.keys(opts.models).length ? buildPlans(metas, opts) : new Map<string, ModelPlan>()
  const outboxMeta = findModel(metas, opts.outboxModel)
  if (!outboxMeta)
    throw new ConfigError(
      `The outbox model '${opts.outboxModel}' is not in this Prisma schema. Copy node_modules/cqrs-sync/prisma/cqrs.${provider}.prisma into your schema folder, migrate, and run prisma generate.`,
    )
  const triggerTargets = [...plans.values()].map((plan) => ({ plan, meta: metas.get(plan.model)! }))
  if (opts.capture === 'trigger' && opts.correlationId && provider === 'sqlite')
    throw new ConfigError("correlationId with capture: 'trigger' needs PostgreSQL or MySQL (a SQLite trigger cannot see a value of the request's transaction); on SQLite set capture: 'extension'")
  return { opts, metas, provider, plans, outboxMeta, outbox: outboxTargetOf(outboxMeta), triggerTargets }
}

/** What `cqrs relay` (createRelay) may set apart from the master options' `relay`. */
interface RelayOverrides {
  batchSize?: number
  pollIntervalMs?: number
  gatherMs?: number
  /** `'row-trigger'`: the in-process relay, which its own process's commits kick (see RelayOptions.seesCommits). */
  listen?: boolean | 'row-trigger'
}

function makeRelay(client: any, s: MasterSetup, transport: Transport, logger: Logger, overrides: RelayOverrides = {}): Relay {
  // A follower tries to take the lead as often as it polls, within 0.1-1 s; every relay looks at the
  // outbox's NOTIFY trigger again five times less often (0.5-5 s), in case it was installed or dropped.
  const electEveryMs = Math.min(1000, Math.max(100, overrides.pollIntervalMs ?? s.opts.relay.pollIntervalMs))
  return new Relay({
    store: new PrismaOutboxStore(client, s.provider, s.outboxMeta, { listen: overrides.listen, electEveryMs, recheckEveryMs: 5 * electEveryMs }),
    transport: runtime(transport),
    batchSize: overrides.batchSize ?? s.opts.relay.batchSize,
    pollIntervalMs: overrides.pollIntervalMs ?? s.opts.relay.pollIntervalMs,
    gatherMs: overrides.gatherMs ?? s.opts.relay.gatherMs,
    seesCommits: overrides.listen === 'row-trigger',
    logger,
    render: rowImageRenderer(client, s.metas, s.plans, s.opts),
  })
}

/**
 * The master side as a Prisma client extension:
 * `new PrismaClient({ adapter }).$extends(cqrsMaster({ transport, models: { account: { cqrsId: 'account' } } }))`.
 * Every write to a configured model writes its event to the outbox in the same transaction (by this
 * extension, or by capture triggers with `capture: 'trigger'`); a relay publishes the outbox (in this
 * process unless `relay.enabled` is false).
 */
export function cqrsMaster(options: MasterOptions) {
  const opts = resolveMasterOptions(options)
  const logger = opts.logger ?? stderrLogger()
  return Prisma.defineExtension((typedClient) => {
    const client = typedClient as any
    const s = setup(client, opts)
    const { plans, provider } = s
    const transport = runtime(opts.transport)
    // Kicked by this process's commits; on PostgreSQL with the outbox's row-level NOTIFY trigger it
    // also LISTENs, to lead (publish rows as they commit, this process's or others') or follow.
    const relay = makeRelay(client, s, transport, logger, { listen: 'row-trigger' })
    const capture = new Capture(client, provider, s.metas, plans, s.outboxMeta, opts)
    const byTrigger = opts.capture === 'trigger'
    /** What the capture triggers should record of this write's request, or null when nothing (the usual case). */
    const writeContext = async (a: any): Promise<{ correlationId: string | null; traceContext: string | null } | null> => {
      if (provider === 'sqlite') return null
      const correlationId = opts.correlationId?.({ tx: client, model: a.model, operation: a.operation }) ?? null
      const traceContext = s.outbox.traceColumn ? await activeTraceparent() : null
      return correlationId || traceContext ? { correlationId, traceContext } : null
    }
    // Checked once, on the first write: a missing trigger would silently lose events.
    let triggersChecked: Promise<void> | null = null
    const ensureTriggers = () => (triggersChecked ??= assertCaptureTriggers(client, provider, s.triggerTargets, s.outbox).catch((e) => {
      triggersChecked = null
      throw e
    }))
    const afterCommit = () => {
      if (!opts.relay.enabled) return
      relay.start()
      relay.committed()
    }
    const handle: CqrsMasterHandle = {
      relay,
      flush: (options) => relay.drain(options),
      metrics: cqrsMetricsText,
      async close() {
        await relay.stop()
        await transport.close()
      },
    }
    if (opts.relay.enabled) relay.start()

    // Interactive transactions run as usual; a batch `$transaction([...])` runs its queries one by
    // one in an interactive transaction, so each write can add its outbox row (same atomicity).
    // Declared apart so the override keeps Prisma's own typing of $transaction for users.
    const transactionOverride = {
      async $transaction(this: any, arg: any, txOptions?: any) {
        const self: any = Prisma.getExtensionContext(this)
        const result =
          typeof arg === 'function'
            ? await client.$transaction(async (tx0: any) => arg(clientInTransaction(self, await transactionOf(tx0))), txOptions)
            : await client.$transaction(async (tx0: any) => {
                const t = await transactionOf(tx0)
                const out: unknown[] = []
                for (const p of arg) out.push(await runPromiseInTransaction(p, t))
                return out
              }, txOptions)
        afterCommit()
        return result
      },
    } as {}

    return typedClient.$extends({
      name: 'cqrs-sync-master',
      client: { $cqrs: handle, ...transactionOverride },
      query: {
        $allModels: {
          async $allOperations(a: any) {
            const plan = plans.get(a.model)
            if (!plan || !WRITE_OPERATIONS.has(a.operation)) return a.query(a.args)
            const t = currentTransaction(a)
            if (byTrigger) {
              // The triggers write the outbox; the revision still rises in the statement itself, so
              // the row Prisma returns carries it.
              await ensureTriggers()
              const args = capture.triggerArgs(a, plan)
              const context = await writeContext(a)
              // The write in transaction `td` (the hook's query must be told so explicitly), with the
              // correlation id or trace context set for the trigger when there is one.
              const run = async (td: TransactionDescriptor) => {
                if (!context) return queryInTransaction(a, args, td)
                const tx = clientInTransaction(client, td)
                const setContext = async (values: typeof context) => {
                  for (const st of sessionContextSql(provider, values)) await tx.$executeRawUnsafe(st.sql, ...st.args)
                }
                await setContext(context)
                try {
                  return await queryInTransaction(a, args, td)
                } finally {
                  // MySQL's user variables outlive the transaction on a pooled connection: clear them.
                  if (provider === 'mysql') await setContext({ correlationId: null, traceContext: null }).catch(() => {})
                }
              }
              if (t) {
                if (context && t.kind !== 'itx') throw new ConfigError(`cqrs-sync: ${a.model}.${a.operation} runs in a '${t.kind}' transaction where it cannot set the correlation id or trace context; call $transaction on the client extended with cqrsMaster()`)
                return run(t)
              }
              // Nothing to hand the trigger: the write alone, one round trip (the fast path). Not on
              // SQLite: Prisma's SQLite adapter runs a query outside a transaction on the one
              // connection, inside whatever transaction is open there (the relay's), and a rollback
              // of that one would take the write with it; an interactive transaction waits its turn.
              const result = !context && provider !== 'sqlite' ? await a.query(args) : await client.$transaction(async (tx0: any) => run(await transactionOf(tx0)), { maxWait: 15_000, timeout: 30_000 })
              afterCommit()
              return result
            }
            if (t?.kind === 'itx') return capture.run(a, plan, t)
            if (t) throw new ConfigError(`cqrs-sync: ${a.model}.${a.operation} runs in a '${t.kind}' transaction it cannot capture; call $transaction on the client extended with cqrsMaster()`)
            // maxWait: on SQLite a relay may hold the one write lock for up to its publish timeout.
            const result = await client.$transaction(async (tx0: any) => capture.run(a, plan, await transactionOf(tx0)), { maxWait: 15_000, timeout: 30_000 })
            afterCommit()
            return result
          },
        },
      },
    })
  })
}

/**
 * A relay on its own (for `cqrs relay`): publishes the outbox of `prisma` through `transport`.
 * `master` (the cqrsMaster options without transport) renders row images from capture triggers.
 * On PostgreSQL it LISTENs for the outbox triggers' NOTIFY (`listen: false` to poll only): with the
 * wake-up trigger (installed with the capture triggers) it leads (commits wake it while it sleeps) or
 * claims on its poll; with the row-level NOTIFY trigger it leads (publishing each row as it commits)
 * or follows; with the statement-level trigger of earlier versions it wakes at commit. The poll stays
 * as a safety net.
 */
export function createRelay(
  prisma: any,
  transport: Transport,
  options: RelayOverrides & { logger?: Logger; master?: Omit<MasterOptions, 'transport'> } = {},
): Relay {
  // Without master models the relay still publishes ready messages; row images need the models.
  const opts = options.master
    ? resolveMasterOptions({ ...options.master, transport }, 'createRelay')
    : ({ ...resolveMasterOptions({ transport, models: { _: { cqrsId: '_' } } }, 'createRelay'), models: {} } as ResolvedMasterOptions)
  return makeRelay(prisma, setup(prisma, opts), transport, options.logger ?? stderrLogger(), { ...options, listen: options.listen ?? true })
}

/** The SQL that installs the capture triggers of the configured master models (for a migration). */
const NO_TRANSPORT = { name: 'none', publish: async () => {} } as unknown as Transport

export function captureTriggerStatements(prisma: any, options: Omit<MasterOptions, 'transport'>): Promise<string[]> {
  const s = setup(prisma, resolveMasterOptions({ ...options, transport: NO_TRANSPORT }, 'cqrs triggers'))
  return captureTriggersScript(prisma, s.provider, s.triggerTargets, s.outbox)
}

/** Install or refresh the capture triggers of the configured master models. Returns the model names. */
export function installCaptureTriggers(prisma: any, options: Omit<MasterOptions, 'transport'>): Promise<string[]> {
  const s = setup(prisma, resolveMasterOptions({ ...options, transport: NO_TRANSPORT }, 'installCaptureTriggers'))
  return applyCaptureTriggers(prisma, s.provider, s.triggerTargets, s.outbox)
}

/**
 * PostgreSQL: the statements that install the outbox's NOTIFY trigger, which hands each row to the
 * leading relay as it commits (see outbox-notify.ts); none on other databases (their relay polls).
 */
export function outboxNotifyStatements(prisma: any, options: Pick<MasterOptions, 'outboxModel'> = {}): string[] {
  return outboxTriggerStatements(prisma, options, outboxNotifySql)
}

/**
 * PostgreSQL: the statements that install the outbox's wake-up trigger alone (`capture: 'extension'`;
 * the capture triggers' statements include it), by which commits wake the leading relay while it
 * sleeps (see outbox-notify.ts); none on other databases (their relay polls).
 */
export function outboxWakeStatements(prisma: any, options: Pick<MasterOptions, 'outboxModel'> = {}): string[] {
  return outboxTriggerStatements(prisma, options, outboxWakeSql)
}

function outboxTriggerStatements(prisma: any, options: Pick<MasterOptions, 'outboxModel'>, sql: (table: string) => string[]): string[] {
  if (providerOf(prisma) !== 'postgresql') return []
  const outboxModel = options.outboxModel ?? 'CqrsOutbox'
  const meta = findModel(modelsOf(prisma), outboxModel)
  if (!meta) throw new ConfigError(`The outbox model '${outboxModel}' is not in this Prisma schema. Copy node_modules/cqrs-sync/prisma/cqrs.postgresql.prisma into your schema folder, migrate, and run prisma generate.`)
  return sql(meta.table)
}
