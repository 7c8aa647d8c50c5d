import { MessageValidationError } from '../core/errors.js'
import type { HandlerContext } from '../core/handler-context.js'
import type { Logger } from '../core/logger.js'
import { decodeMessage, encodeMessage, normalizeDateTime, type CqrsMessage } from '../core/message.js'
import type { Delivery, Outcome } from '../transport/types.js'
import type { ApplyOp, TableTarget } from './apply-op.js'
import { toApplyOp } from './decode-op.js'
import type { ReplicaStore } from './replica-store.js'
import { decideRetry, errorText, isConnectionError } from './retry-policy.js'
import { ReplicaStats } from './replica-stats.js'
import { applyGated, hookAction } from './version-gate.js'

/**
 * Row-level hooks for a table replica (django-cqrs's cqrs_create / cqrs_update), run in the apply
 * transaction after the version gate ({@link hookAction}) let the op through.
 */
export interface RowHooks {
  create(op: ApplyOp, ctx: HandlerContext): Promise<unknown>
  update(op: ApplyOp, ctx: HandlerContext): Promise<unknown>
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
 * statement per cqrs_id (newest op per pk), falling back to halves of it down to one op to isolate a poison message;
 * failures are retried through the broker, then dead-lettered. A lost database is waited for, not retried.
 */
export class ReplicaConsumer {
  readonly stats: ReplicaStats
  private stopping = false
  /** Resolves when the batch handed over last has been applied: batches decode at once, apply in turn. */
  private applying: Promise<void> = Promise.resolve()

  constructor(private readonly opts: ConsumerOptions) {
    this.stats = new ReplicaStats(opts.queue)
  }

  /** Ask in-flight waits for the database to give up (the batch is then requeued by the transport). */
  stop(): void {
    this.stopping = true
  }

  readonly handle = async (batch: Delivery[]): Promise<Outcome[]> => {
    // A transport may hand over the next batch while this one is applied (RabbitMQ does). Each batch
    // takes its place in the apply order now, before its decode (which yields to the event loop), so a
    // short later batch cannot overtake a long earlier one: a pk's messages apply in the order they
    // came (custom handlers and row hooks see them in that order).
    const before = this.applying
    let done!: () => void
    this.applying = new Promise((resolve) => (done = resolve))
    try {
      return await this.decodeAndApply(batch, before)
    } finally {
      done()
    }
  }

  private async decodeAndApply(batch: Delivery[], before: Promise<void>): Promise<Outcome[]> {
    const outcomes: Outcome[] = new Array(batch.length)
    const byTable = new Map<string, Item[]>()
    const single: Item[] = []
    for (let index = 0; index < batch.length; index++) {
      // Decoding is synchronous work of milliseconds per slice: let waiting I/O in between, so the batch
      // being applied meanwhile gets its database answers now, not after the whole batch is decoded.
      if (index > 0 && index % DECODE_SLICE === 0) await new Promise(setImmediate)
      const delivery = batch[index]
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
            continue
          }
        }
        single.push(item)
      } catch (e) {
        outcomes[index] = this.failure(delivery, message, e, true)
      }
    }
    // Decoded while the batch before it applied. Table replicas apply now where the store allows two
    // batches at once (their order does not change the outcome: see ReplicaStore.concurrentBatches),
    // else after it; row hooks and custom handlers always after it, in the order messages came.
    if (!this.opts.store.concurrentBatches) await before
    for (const items of byTable.values()) await this.applyTable(items, outcomes)
    await before
    for (const item of single) await this.applySingle(item, outcomes)
    return outcomes
  }

  private async applyTable(items: Item[], outcomes: Outcome[]): Promise<void> {
    const target = (items[0].route as { target: TableTarget }).target
    const results = await applyGated(
      items.map((it) => it.op!),
      (ops) => this.whileDatabaseDown(() => this.opts.store.applyBatch(target, ops)),
      (e) => this.stopping && isConnectionError(e),
    )
    for (const it of items) {
      const r = results.get(it.op!)!
      if (r instanceof Error) outcomes[it.index] = this.failure(it.delivery, it.message, r, false, it.op?.values)
      else outcomes[it.index] = this.ack(it.message)
    }
    this.stats.countBatch(target.cqrsId, items, results)
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
          const action = hookAction(op, await hooks!.revisionOf(tx, op.pk), tombs.get(op.pkKey))
          if (action === 'create') await hooks!.create(op, ctx)
          else if (action === 'update') await hooks!.update(op, ctx)
          else if (action === 'delete') await hooks!.delete(op.pk, ctx)
          if (op.signal === 'DELETE') await this.opts.store.writeTombstones(tx, target.cqrsId, [op])
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

/** Deliveries decoded between two turns of the event loop. */
const DECODE_SLICE = 50

/** A SYNC is forced by our `cqrs sync --force` (header) or a peer's `meta.cqrs_force`. */
function isForced(d: Delivery, m: CqrsMessage): boolean {
  return d.headers['x-cqrs-force'] === 1 || d.headers['x-cqrs-force'] === '1' || m.meta?.cqrs_force === true
}
