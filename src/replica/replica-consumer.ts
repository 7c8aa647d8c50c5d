import type { HandlerContext } from '../config/replica-options.js'
import { MessageValidationError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import { decodeMessage, encodeMessage, normalizeDateTime, type CqrsMessage } from '../core/message.js'
import type { Delivery, Outcome } from '../transport/types.js'
import { newest, type ApplyOp, type TableTarget } from './apply-op.js'
import { toApplyOp } from './decode-op.js'
import type { ReplicaStore } from './replica-store.js'
import { decideRetry, errorText, isConnectionError } from './retry-policy.js'
import { ReplicaStats } from './replica-stats.js'

/** Row-level hooks for a table replica (django-cqrs's cqrs_create / cqrs_update), run in the apply transaction. */
export interface RowHooks {
  create(data: Record<string, unknown>, ctx: HandlerContext): Promise<unknown>
  update(data: Record<string, unknown>, ctx: HandlerContext): Promise<unknown>
  delete(pk: unknown, ctx: HandlerContext): Promise<unknown>
  /** The stored revision of a row, or null when there is none. */
  revisionOf(tx: unknown, pk: unknown): Promise<number | null>
}

export type Route =
  | { kind: 'table'; target: TableTarget; hooks?: RowHooks }
  | { kind: 'custom'; handle: (m: CqrsMessage, ctx: Omit<HandlerContext, 'tx'>) => Promise<unknown> }

export interface ConsumerOptions {
  queue: string
  routes: Map<string, Route>
  store: ReplicaStore
  maxRetries: number
  delaysMs: number[]
  honorExpires: boolean
  logger: Logger
}

interface Item {
  index: number
  delivery: Delivery
  message: CqrsMessage
  route: Route
  op?: ApplyOp
}

/**
 * Turns a batch of deliveries into outcomes. Bad JSON, unknown cqrs_ids, invalid payloads and expired
 * messages are dead-lettered at once with their reason; table replicas are applied in one version-gated
 * statement per cqrs_id (newest op per pk), falling back to one op at a time to isolate a poison message;
 * failures are retried through the broker, then dead-lettered. A lost database is waited for, not retried.
 */
export class ReplicaConsumer {
  readonly stats: ReplicaStats
  private stopping = false

  constructor(private readonly opts: ConsumerOptions) {
    this.stats = new ReplicaStats(opts.queue)
  }

  /** Ask in-flight waits for the database to give up (the batch is then requeued by the transport). */
  stop(): void {
    this.stopping = true
  }

  readonly handle = async (batch: Delivery[]): Promise<Outcome[]> => {
    const outcomes: Outcome[] = new Array(batch.length)
    const byTable = new Map<string, Item[]>()
    const single: Item[] = []
    batch.forEach((delivery, index) => {
      let message: CqrsMessage | undefined
      try {
        message = decodeMessage(delivery.body)
        const route = this.opts.routes.get(message.cqrs_id)
        if (!route) throw new MessageValidationError(`no handler for cqrs_id '${message.cqrs_id}' on queue '${this.opts.queue}'; known: ${[...this.opts.routes.keys()].join(', ')}. Add it to cqrsReplica({ handlers })`)
        if (this.opts.honorExpires && message.expires && Date.parse(normalizeDateTime(message.expires)) < Date.now())
          throw new MessageValidationError(`message expired at ${message.expires} (the master's 'expires'); re-send it with 'cqrs sync' or 'cqrs dead-letters retry'`)
        const item: Item = { index, delivery, message, route }
        if (route.kind === 'table') {
          item.op = toApplyOp(route.target, message, message.signal_type === 'SYNC' && isForced(delivery, message))
          if (!route.hooks) {
            const list = byTable.get(message.cqrs_id)
            if (list) list.push(item)
            else byTable.set(message.cqrs_id, [item])
            return
          }
        }
        single.push(item)
      } catch (e) {
        outcomes[index] = this.failure(delivery, message, e, true)
      }
    })
    for (const items of byTable.values()) await this.applyTable(items, outcomes)
    for (const item of single) await this.applySingle(item, outcomes)
    return outcomes
  }

  private async applyTable(items: Item[], outcomes: Outcome[]): Promise<void> {
    const target = (items[0].route as { target: TableTarget }).target
    const winners = new Map<string, ApplyOp>()
    for (const it of items) {
      const prev = winners.get(it.op!.pkKey)
      winners.set(it.op!.pkKey, prev ? newest(prev, it.op!) : it.op!)
    }
    const ops = [...winners.values()]
    try {
      const results = await this.whileDatabaseDown(() => this.opts.store.applyBatch(target, ops))
      this.stats.countBatch(target.cqrsId, items, ops, results)
      for (const it of items) outcomes[it.index] = this.ack(it.message)
    } catch (batchError) {
      if (this.stopping && isConnectionError(batchError)) throw batchError
      // Find the poison: apply each pk's ops on their own.
      for (const op of ops) {
        const mine = items.filter((it) => it.op!.pkKey === op.pkKey)
        try {
          const [r] = await this.whileDatabaseDown(() => this.opts.store.applyBatch(target, [op]))
          this.stats.countBatch(target.cqrsId, mine, [op], [r])
          for (const it of mine) outcomes[it.index] = this.ack(it.message)
        } catch (e) {
          if (this.stopping && isConnectionError(e)) throw e
          for (const it of mine) outcomes[it.index] = this.failure(it.delivery, it.message, e, false, it.op?.values)
        }
      }
    }
  }

  private async applySingle(item: Item, outcomes: Outcome[]): Promise<void> {
    const m = item.message
    const ctxBase = { message: m, cqrsId: m.cqrs_id, pk: m.instance_pk, revision: (m.instance_data.cqrs_revision as number) ?? 0, previousData: m.previous_data, meta: m.meta }
    try {
      await this.whileDatabaseDown(async () => {
        if (item.route.kind === 'custom') return void (await item.route.handle(m, ctxBase))
        const { target, hooks } = item.route
        const op = item.op!
        await this.opts.store.withLocked(target.cqrsId, [op.pkKey], async (tx, tombs) => {
          const ctx: HandlerContext = { ...ctxBase, tx, pk: op.pk }
          const stored = await hooks!.revisionOf(tx, op.pk)
          if (op.signal === 'DELETE') {
            if (stored !== null && stored <= op.revision) await hooks!.delete(op.pk, ctx)
            await this.opts.store.writeTombstones(tx, target.cqrsId, [op])
            return
          }
          const tomb = tombs.get(op.pkKey)
          if (tomb && tomb.revision >= op.revision && !op.force) return
          const data = dataByField(target, op)
          if (stored === null) await hooks!.create(data, ctx)
          else if (op.force || stored < op.revision || (op.signal === 'SYNC' && stored === op.revision)) await hooks!.update(data, ctx)
        })
      })
      this.stats.count('applied', 1, m.cqrs_id)
      outcomes[item.index] = this.ack(m)
    } catch (e) {
      if (this.stopping && isConnectionError(e)) throw e
      outcomes[item.index] = this.failure(item.delivery, m, e, false, item.op?.values)
    }
  }

  /** Retry `fn` with backoff while the database is unreachable; other errors pass through. */
  private async whileDatabaseDown<T>(fn: () => Promise<T>): Promise<T> {
    let wait = 200
    for (;;) {
      try {
        return await fn()
      } catch (e) {
        if (!isConnectionError(e) || this.stopping) throw e
        this.opts.logger.warn('cqrs consume: database unreachable; holding the batch and retrying', { queue: this.opts.queue, error: errorText(e), retryInMs: wait })
        await new Promise((r) => setTimeout(r, wait))
        wait = Math.min(wait * 2, 10_000)
      }
    }
  }

  private ack(m: CqrsMessage): Outcome {
    this.stats.observeLag(m)
    return { kind: 'ack' }
  }

  /** `values`: the op's columns, so a permanent database error can name the value it refused. */
  private failure(d: Delivery, m: CqrsMessage | undefined, e: unknown, permanent: boolean, values?: ReadonlyMap<string, unknown>): Outcome {
    const retries = m?.retries ?? 0
    const decision = permanent ? { kind: 'deadLetter' as const, delayMs: 0, reason: errorText(e) } : decideRetry(e, retries, this.opts.maxRetries, this.opts.delaysMs, values)
    const now = new Date().toISOString()
    const headers: Record<string, string | number> = {
      'x-cqrs-attempts': retries + 1,
      'x-cqrs-first-error': String(d.headers['x-cqrs-first-error'] ?? decision.reason),
      'x-cqrs-first-failed-at': String(d.headers['x-cqrs-first-failed-at'] ?? now),
      'x-cqrs-last-error': decision.reason,
      'x-cqrs-last-failed-at': now,
    }
    const cqrsId = m?.cqrs_id ?? '_invalid'
    if (decision.kind === 'retry') {
      this.stats.count('retried', 1, cqrsId)
      this.opts.logger.info('cqrs consume: retrying in the broker', { queue: this.opts.queue, cqrs_id: cqrsId, pk: m?.instance_pk, attempt: retries + 1, delayMs: decision.delayMs, error: decision.reason })
      return { kind: 'retry', delayMs: decision.delayMs, cqrsId, headers, body: encodeMessage({ ...m!, retries: retries + 1 }) }
    }
    this.stats.count('deadLettered', 1, cqrsId)
    this.opts.logger.warn('cqrs consume: dead-lettered', { queue: this.opts.queue, cqrs_id: cqrsId, pk: m?.instance_pk, attempts: retries + 1, reason: decision.reason })
    return { kind: 'deadLetter', cqrsId, headers: { ...headers, 'x-cqrs-reason': decision.reason }, body: m ? encodeMessage(m) : d.body.toString('utf8') }
  }
}

/** A SYNC is forced by our `cqrs sync --force` (header) or a peer's `meta.cqrs_force`. */
function isForced(d: Delivery, m: CqrsMessage): boolean {
  return d.headers['x-cqrs-force'] === 1 || d.headers['x-cqrs-force'] === '1' || m.meta?.cqrs_force === true
}

function dataByField(target: TableTarget, op: ApplyOp): Record<string, unknown> {
  const data: Record<string, unknown> = { [target.pk.field]: op.pk, [target.revision.field]: op.revision }
  if (target.updated) data[target.updated.field] = op.updated
  for (const col of new Set(target.byKey.values())) if (op.values.has(col.column)) data[col.field] = op.values.get(col.column)
  return data
}
