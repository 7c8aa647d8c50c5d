import { CqrsError } from '../core/errors.js'
import { duration } from '../core/duration.js'
import type { Logger } from '../core/logger.js'
import { metricsHub } from '../metrics/metrics-hub.js'
import { tracePublish } from '../tracing/tracing.js'
import type { RuntimeTransport } from '../transport/runtime-transport.js'
import type { OutgoingMessage } from '../transport/types.js'
import type { ClaimOptions, OutboxRow, OutboxSleeper, OutboxStore, RelayRole } from './outbox-store.js'

export interface RelayOptions {
  store: OutboxStore
  transport: RuntimeTransport
  batchSize: number
  pollIntervalMs: number
  logger: Logger
  /**
   * Turns a row image (format 1, written by a capture trigger) into the message to publish, or null
   * when there is nothing to send (a created row outside the model's filter). Without it, row images
   * cannot be published and the relay reports an error.
   */
  render?: (row: OutboxRow) => Promise<{ routingKey: string; body: string } | null>
  /**
   * When commits arrived while a batch was out, the next batch starts no sooner than this long after
   * that one started, so that it takes more events at once: fewer claims, publishes and confirm waits
   * per event at a steady moderate rate, where a batch would otherwise carry one or two. No wait for
   * the first commit after an idle spell, nor while batches come back full, nor in `drain()`. 0: none.
   */
  gatherMs?: number
  /**
   * True for a relay that the commits it publishes kick (`kick()`): the in-process relay, kicked by
   * its own process's commits. One that is not (`cqrs relay`: woken at most by a NOTIFY, or polling)
   * cannot tell that commits came while a batch was out, so after a batch that found rows it looks
   * again (gathered), and waits for a wake-up or its poll only once a look finds none.
   */
  seesCommits?: boolean
  /**
   * Longest wait for the broker's confirms of one batch. The claim holds row locks (and on SQLite the
   * only write lock) meanwhile, so a broker that hangs instead of refusing must not hold them long.
   */
  publishTimeoutMs?: number
  /**
   * A claim slower than this (ms; default 100, about a hundred times the usual) makes the relay ask the
   * store for a transaction that has held its snapshot for `snapshotAgeMs` (default 30 s) and, if there
   * is one, name it in a warning (at most once a minute): while it runs, the database keeps every
   * outbox row deleted since, and each claim walks past them.
   */
  slowClaimMs?: number
  snapshotAgeMs?: number
}

export interface DrainOptions {
  /** Give up after this long (default: wait until the outbox is empty, however long the broker is away). */
  timeoutMs?: number
}

export interface RelayStats {
  published: number
  /** Of `published`, rows this relay published from their notification as they committed (the leader; see RelayRole). */
  notified: number
  batches: number
  errors: number
  lastError: string | null
}

/** Batches one relay has in flight at once when it pipelines (claimed and sent, awaiting confirms). */
const PIPELINE_DEPTH = 2
/** The leader takes rows from notifications while fewer than this many wait or are in flight; past it they wait for a claim. */
const NOTIFIED_CAP = 20_000
/** How long the leader remembers the ids it claimed, so that a late notification of one is not published again. */
const CLAIMED_MEMORY_MS = 60_000
/**
 * How soon a relay that nothing wakes (`cqrs relay` polling) looks again after a look found nothing
 * following a batch that found rows; each further empty look doubles it, up to the poll interval.
 */
const FOLLOW_UP_MS = 10
/** How long the leader gathers confirmed notified rows into one DELETE. */
const DELETE_GATHER_MS = 5

/**
 * Moves events from the outbox to the broker: claim the oldest rows, publish them with confirms,
 * delete them, repeat. Woken by `kick()` after a commit it saw, by the store's `watch` for rows
 * other processes committed (PostgreSQL NOTIFY), and by a poll, the safety net. Under steady traffic it
 * gathers (`gatherMs`): commits that came while a batch was out leave together in the next one. The
 * loop never throws: errors are logged and retried with backoff, and the events wait in the outbox
 * meanwhile.
 */
export class Relay {
  readonly stats: RelayStats = { published: 0, notified: 0, batches: 0, errors: 0, lastError: null }
  /** This relay's part among the relays of its outbox (see RelayRole). */
  private currentRole: RelayRole = 'alone'
  /** The leader's rows from notifications, waiting to be sent. */
  private fresh: OutboxRow[] = []
  private pumpScheduled = false
  /** A batch of notified rows is being written to the transport (the next waits: one row's events leave in order). */
  private pumping = false
  /** Notified batches sent and not yet confirmed and handed to the deletion. */
  private readonly freshBatches = new Set<Promise<void>>()
  /** Ids published from notifications and not yet deleted: claims leave them alone. */
  private readonly unsettled = new Set<string>()
  /** Ids the leader claimed lately, and when: their notifications are not published again. */
  private readonly claimedLately = new Map<string, number>()
  /** Claims whose rows are not yet written to the transport: notified rows wait for them, to keep each row's order. */
  private claiming = 0
  private toDelete: Array<bigint | number> = []
  private deleting: Promise<void> | null = null
  private running = false
  private loop: Promise<void> | null = null
  /** The loop's wait in progress: stop() ends it, and a kick too when `byKick` (not while gathering). */
  private pause: { end: () => void; byKick: boolean } | null = null
  private kicked = false
  /** How commits wake this relay while it sleeps (see OutboxSleeper), when they do. */
  private sleeper: OutboxSleeper | null = null
  private unregister: (() => void) | null = null
  private unwatch: Promise<(() => Promise<void>) | null> | null = null
  /** A slow claim's explanation under way (stop() waits for it), and when the last warning went out. */
  private explaining: Promise<void> | null = null
  private explainedAt = -Infinity

  constructor(private readonly opts: RelayOptions) {}

  /** How long a batch may wait for the broker's confirms before it fails (its rows stay in the outbox). */
  private get publishTimeoutMs(): number {
    return this.opts.publishTimeoutMs ?? 5000
  }

  /** Start the background loop (idempotent). */
  start(): void {
    if (this.running) return
    this.running = true
    const unregisterOutbox = metricsHub.add(metricsHub.outboxes, this.opts.store)
    const unregisterRelay = metricsHub.add(metricsHub.relays, this)
    this.unregister = () => {
      unregisterOutbox()
      unregisterRelay()
    }
    const { store, logger } = this.opts
    // A failed watch leaves the poll, which finds every row anyway.
    this.unwatch = store.watch
      ? store.watch({ wake: () => this.kick(), row: (r) => this.takeNotified(r), role: (r) => this.setRole(r), sleeper: (s) => this.setSleeper(s), canLead: () => this.canLead() }, logger).catch((e) => {
          logger.warn('cqrs relay: cannot watch the outbox for commits; polling only', { error: e as Error })
          return null
        })
      : null
    this.loop = this.run()
  }

  /**
   * Whether this relay may lead: not once its broker is lost (its transport, which connects on the
   * first publish, says it is not connected after that first try), so that the lead goes to a relay
   * that can publish the rows as they commit.
   */
  private canLead(): boolean {
    const tried = this.stats.batches + this.stats.errors > 0
    return !tried || this.opts.transport.isConnected?.() !== false
  }

  /** Wake the loop now: a commit just added rows. */
  kick(): void {
    this.kicked = true
    if (this.pause?.byKick) this.pause.end()
  }

  /** This relay's part among the relays of its outbox: `leader`, `follower` or `alone` (see RelayRole). */
  get role(): RelayRole {
    return this.currentRole
  }

  /** True while commits wake this relay when it sleeps (PostgreSQL, the wake-up trigger: one relay per outbox). */
  get wokenByCommits(): boolean {
    return this.sleeper !== null
  }

  private setSleeper(sleeper: OutboxSleeper | null): void {
    this.sleeper = sleeper
    // Asleep until the next poll: look now, and arm with the new sleeper.
    this.kick()
  }

  /** Arm (see OutboxSleeper): true when the relay should look once more before it sleeps. */
  private async arm(): Promise<boolean> {
    const sleeper = this.sleeper
    if (!sleeper || sleeper.armed) return false
    return (await sleeper.arm()) && this.sleeper === sleeper
  }

  private disarm(): void {
    this.sleeper?.disarm()
  }

  /**
   * This process committed rows: claim them now, unless a notification brings them (this relay
   * leads) or another relay leads (this one follows).
   */
  committed(): void {
    if (this.currentRole === 'alone') this.kick()
  }

  private setRole(role: RelayRole): void {
    this.currentRole = role
    // Rows not yet sent stay in the outbox, for a claim (ours or the new leader's).
    if (role !== 'leader') this.fresh = []
  }

  /**
   * How old a row must be for this claim to take it. A follower leaves the rows younger than 2 s (or
   * five poll intervals) to the leader, which has published the rows it was sent by then; the
   * leader's poll (`leftBehind`) looks for rows older than 1 s. A flush (`all`) takes every row.
   */
  private ageLimit(options: { all?: boolean; leftBehind?: boolean }): Pick<ClaimOptions, 'olderThanMs'> {
    if (options.all) return {}
    if (this.currentRole === 'follower') return { olderThanMs: Math.max(2000, 5 * this.opts.pollIntervalMs) }
    if (this.currentRole === 'leader' && options.leftBehind) return { olderThanMs: 1000 }
    return {}
  }

  /** The leader got a committed row by notification: publish it soon, with those that arrive with it. */
  private takeNotified(row: OutboxRow): void {
    if (this.currentRole !== 'leader' || !this.running || !this.opts.store.deletePublished) return this.kick()
    // Too many waiting (the broker is slow or away): the row waits in the outbox for a claim.
    if (this.fresh.length + this.unsettled.size >= NOTIFIED_CAP) return this.kick()
    this.fresh.push(row)
    if (this.pumpScheduled) return
    this.pumpScheduled = true
    // The notifications of one read from the LISTEN connection arrive in one go: one batch for them.
    queueMicrotask(() => {
      this.pumpScheduled = false
      this.pump()
    })
  }

  /**
   * Send the waiting notified rows as one batch, unless a batch or a claim is being written (the
   * next round comes when it is), or PIPELINE_DEPTH batches await their confirms. Rows this relay
   * claimed lately are dropped: their claim published them. Confirmed rows go to the deletion; on
   * a failure they stay in the outbox and the loop claims them (with its backoff).
   */
  private pump(): void {
    // Rows wait here only while this relay leads: setRole() drops them when it stops leading (or stops).
    if (this.pumping || this.claiming > 0 || this.fresh.length === 0 || this.freshBatches.size >= PIPELINE_DEPTH || !this.running) return
    const taken = this.fresh.length <= this.opts.batchSize ? this.fresh : this.fresh.slice(0, this.opts.batchSize)
    this.fresh = taken === this.fresh ? [] : this.fresh.slice(taken.length)
    const rows = this.claimedLately.size === 0 ? taken : taken.filter((r) => !this.claimedLately.has(String(r.id)))
    if (rows.length === 0) return this.pump()
    for (const r of rows) this.unsettled.add(String(r.id))
    this.pumping = true
    let written = false
    const sent = () => {
      if (written) return
      written = true
      this.pumping = false
      this.pump()
    }
    const batch: Promise<void> = this.publish(rows, sent)
      .then(
        () => {
          this.stats.notified += rows.length
          this.deleteLater(rows)
        },
        (e) => {
          for (const r of rows) this.unsettled.delete(String(r.id))
          this.stats.errors++
          metricsHub.inc('relayErrors')
          this.stats.lastError = (e as Error).message
          this.opts.logger.warn('cqrs relay: publish failed; events stay in the outbox and will be retried', { error: e as Error })
          this.kick()
        },
      )
      .finally(() => {
        this.freshBatches.delete(batch)
        if (!written) sent()
        else this.pump() // one fewer awaiting confirms: room for the next
      })
    this.freshBatches.add(batch)
  }

  /** Delete confirmed notified rows, in one statement for those confirmed meanwhile; retried (backoff) while the database is away. */
  private deleteLater(rows: OutboxRow[]): void {
    for (const r of rows) this.toDelete.push(r.id)
    this.deleting ??= (async () => {
      let backoff = 100
      while (this.toDelete.length > 0) {
        // Rows confirmed over the next few ms go in the same statement (the lag does not wait for it).
        if (this.running) await new Promise((r) => setTimeout(r, DELETE_GATHER_MS))
        const ids = this.toDelete.splice(0, 10_000)
        try {
          await this.opts.store.deletePublished!(ids)
          backoff = 100
          for (const id of ids) this.unsettled.delete(String(id))
        } catch (e) {
          if (!this.running) {
            // Left in the outbox: published again by the next relay (at least once).
            for (const id of ids) this.unsettled.delete(String(id))
            continue
          }
          this.toDelete.unshift(...ids)
          this.opts.logger.warn('cqrs relay: cannot delete published rows from the outbox; retrying (they are not published again meanwhile)', { error: e as Error, retryInMs: backoff })
          await new Promise((r) => setTimeout(r, backoff))
          backoff = Math.min(backoff * 2, 2000)
        }
      }
    })().finally(() => (this.deleting = null))
  }

  /** Until the notified rows taken so far are published and deleted (or failed). */
  private async settleNotified(): Promise<void> {
    while (this.freshBatches.size > 0 || this.deleting) {
      await Promise.all([...this.freshBatches, this.deleting])
    }
  }

  /**
   * Publish the oldest rows, `limit` per batch; returns how many left the outbox. Throws on broker or
   * database errors, once the batches in flight settled. One batch, unless the store and the
   * transport can pipeline (PostgreSQL, RabbitMQ): then, while batches come back full, the next is
   * claimed and sent while the previous one's confirms are outstanding.
   */
  publishOnce(limit = this.opts.batchSize, options: Pick<ClaimOptions, 'fromStart'> & { all?: boolean; leftBehind?: boolean } = {}): Promise<number> {
    const { store, transport } = this.opts
    const claimOptions: ClaimOptions = { fromStart: options.fromStart, ...this.ageLimit(options) }
    if (!store.pipelines || !transport.send) return this.claim(limit, (rows, sent) => this.publish(rows, sent), claimOptions)
    return this.pipeline(limit, claimOptions)
  }

  /**
   * The store's claim, timed to the moment its rows arrive (see slowClaimMs). `publish` calls its
   * `sent` once the rows are written to the transport: notified rows wait until then, so that a row's
   * events leave in order. Rows published from notifications and not yet deleted are left out.
   */
  private claim(limit: number, publish: (rows: OutboxRow[], sent: () => void) => Promise<void>, options: ClaimOptions = {}): Promise<number> {
    const started = performance.now()
    this.claiming++
    let done = false
    const sent = () => {
      if (done) return
      done = true
      this.claiming--
      this.pump()
    }
    const exclude = this.unsettled.size === 0 ? options.exclude : [...(options.exclude ?? []), ...this.unsettled]
    return this.opts.store
      .claim(
        limit,
        (rows) => {
          const ms = performance.now() - started
          if (ms >= (this.opts.slowClaimMs ?? 100)) this.explainSlowClaim(ms)
          if (this.currentRole === 'leader') this.rememberClaimed(rows)
          return publish(rows, sent)
        },
        { ...options, exclude, publishWithinMs: this.publishTimeoutMs },
      )
      .finally(sent)
  }

  /** The leader remembers what it claimed for a while (see claimedLately), and forgets the oldest. */
  private rememberClaimed(rows: OutboxRow[]): void {
    const now = performance.now()
    for (const r of rows) this.claimedLately.set(String(r.id), now)
    for (const [id, at] of this.claimedLately) {
      if (now - at < CLAIMED_MEMORY_MS && this.claimedLately.size <= 200_000) break
      this.claimedLately.delete(id)
    }
  }

  /**
   * A claim took `ms`: if a transaction has held its snapshot for long, name it in a warning, at most
   * once a minute. Claims walk past every row deleted since that snapshot began, which the database
   * must keep for it, so they slow down the longer it stays open. In the background; never throws.
   */
  private explainSlowClaim(ms: number): void {
    const { store, logger } = this.opts
    if (!store.oldestSnapshot || this.explaining || performance.now() - this.explainedAt < 60_000) return
    this.explaining = store
      .oldestSnapshot(this.opts.snapshotAgeMs ?? 30_000)
      .then((h) => {
        if (!h) return
        this.explainedAt = performance.now()
        const who = [`pid ${h.pid}`, h.state, h.user && `user ${h.user}`, h.application && `application '${h.application}'`].filter(Boolean).join(', ')
        logger.warn(
          `cqrs relay: claiming outbox rows took ${Math.round(ms)} ms: a transaction open for ${duration(h.ageMs)} (${who}) makes the database keep every outbox row deleted since it began, and each claim walks past them, more of them the longer it stays open. End it (run long reports and dumps on a standby); events keep flowing meanwhile, more slowly`,
          { claimMs: Math.round(ms), pid: h.pid, transactionAgeMs: h.ageMs, state: h.state, query: h.query },
        )
      })
      .catch(() => {})
      .finally(() => (this.explaining = null))
  }

  /**
   * Up to PIPELINE_DEPTH batches in flight. Per-row order holds: a batch is claimed only after the
   * previous one was written to the channel (which keeps order), and the claim skips only this
   * relay's open batches, so an older row committed late leaves in this claim, before any younger
   * one. G1 holds as for one batch: each batch deletes its rows only after its own confirms.
   */
  private async pipeline(limit: number, first: Pick<ClaimOptions, 'fromStart' | 'olderThanMs'> = {}): Promise<number> {
    const open = new Map<Promise<void>, { ids: Array<bigint | number> }>()
    let total = 0
    let failed = false
    let error: unknown
    for (;;) {
      while (open.size >= PIPELINE_DEPTH) await Promise.race(open.keys())
      if (failed) break
      const exclude = [...open.values()].flatMap((b) => b.ids)
      const entry = { ids: [] as Array<bigint | number> }
      let written!: (n: number) => void
      const sent = new Promise<number>((resolve) => (written = resolve))
      const claimed = this.claim(
        limit,
        (rows, claimSent) => {
          entry.ids = rows.map((r) => r.id)
          return this.publish(rows, () => {
            claimSent()
            written(rows.length)
          })
        },
        // Only the first claim looks from the start: the ones after it continue from where it got.
        { exclude, fromStart: first.fromStart && open.size === 0 && total === 0, olderThanMs: first.olderThanMs },
      )
      const batch: Promise<void> = claimed
        .then(
          (n) => {
            total += n
            written(n) // nothing claimed: publish was never called
          },
          (e) => {
            if (!failed) [failed, error] = [true, e]
            written(0)
          },
        )
        .finally(() => open.delete(batch))
      open.set(batch, entry)
      const n = await sent
      if (n < limit || failed) break
    }
    await Promise.all(open.keys())
    if (failed) throw error
    return total
  }

  /**
   * Publish until the outbox is empty; returns how many rows were published. A broker (or database)
   * that is away is waited for, with backoff; with `timeoutMs` the wait ends there with a
   * `CQRS_FLUSH_TIMEOUT` error (the events stay in the outbox). A number is taken as `timeoutMs`.
   */
  async drain(options: DrainOptions | number = {}): Promise<number> {
    const timeoutMs = typeof options === 'number' ? options : options.timeoutMs
    const until = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs
    let total = 0
    let backoff = 100
    let lastError: unknown = null
    let fromStart = false
    for (;;) {
      try {
        const n = await beforeDeadline(this.publishOnce(undefined, { fromStart, all: true }), until)
        total += n
        backoff = 100
        lastError = null
        fromStart = false
        if (n === 0) {
          // Rows published from notifications stay in the outbox until their deletion.
          await beforeDeadline(this.settleNotified(), until)
          const { count } = await beforeDeadline(this.opts.store.backlog(), until)
          if (count === 0) return total
          // Rows held by another relay's transaction (wait for it to commit), or left below the
          // store's floor: the next claim looks from the start.
          fromStart = true
        }
      } catch (e) {
        if (e !== DEADLINE) {
          lastError = e
          this.stats.errors++
          this.stats.lastError = (e as Error).message
          this.opts.logger.warn('cqrs relay: flush is waiting: publish failed; events stay in the outbox and will be retried', { error: e as Error, retryInMs: backoff })
        }
      }
      const left = until - Date.now()
      if (left <= 0) {
        const why = lastError ? `; last error: ${(lastError as Error).message ?? String(lastError)}` : '; is the broker reachable?'
        throw new CqrsError('CQRS_FLUSH_TIMEOUT', `flush gave up after ${timeoutMs} ms with events still in the outbox (${total} published meanwhile)${why}. They stay in the outbox for the relay; call flush() without timeoutMs to wait for as long as it takes`, { timeoutMs, published: total }, { cause: lastError ?? undefined })
      }
      if (lastError) {
        await new Promise((r) => setTimeout(r, Math.min(backoff, left)))
        backoff = Math.min(backoff * 2, 2000)
      }
    }
  }

  /** Stop the loop after the batch in flight. */
  async stop(): Promise<void> {
    this.running = false
    this.pause?.end()
    await this.loop
    this.loop = null
    // A leader hands the lead on only once the rows it published from notifications are confirmed and
    // deleted: the next leader claims every row when it takes the lead, and would publish those again.
    // (Rows notified from now on stay in the outbox for it.)
    await this.settleNotified()
    const unwatch = await this.unwatch
    this.unwatch = null
    await unwatch?.()
    // Started again, it leads or follows only once its watch says so.
    this.setRole('alone')
    await this.explaining
    this.unregister?.()
    await this.opts.store.close?.()
  }

  /** Publish `rows` and wait for their confirms; `onSent` is called once they are all written (before the confirms, where the transport can tell). */
  private async publish(rows: OutboxRow[], onSent?: () => void): Promise<void> {
    const timeoutMs = this.publishTimeoutMs
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the broker did not confirm ${rows.length} event(s) within ${timeoutMs} ms; they stay in the outbox`)), timeoutMs)
    })
    try {
      await Promise.race([this.publishRows(rows, onSent), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  private async publishRows(rows: OutboxRow[], onSent?: () => void): Promise<void> {
    const messages: OutgoingMessage[] = []
    for (const r of rows) {
      if (r.format === 0) {
        messages.push({ routingKey: r.routingKey, body: r.body, messageId: String(r.id) })
        continue
      }
      if (!this.opts.render) throw new Error(`outbox row ${r.id} (cqrs_id '${r.cqrsId}') is a row image from a capture trigger, and this relay has no master models to render it with; run the relay with the master's config`)
      const m = await this.opts.render(r)
      if (m) messages.push({ ...m, messageId: String(r.id) })
    }
    const started = performance.now()
    const { transport } = this.opts
    await tracePublish(rows, messages, async () => {
      if (!onSent || !transport.send) return transport.publish(messages)
      const { confirmed } = await transport.send(messages)
      onSent()
      await confirmed
    })
    metricsHub.observe('publishDuration', {}, (performance.now() - started) / 1000)
    for (const r of rows) metricsHub.inc('eventsPublished', { cqrs_id: r.cqrsId })
    this.stats.published += rows.length
    this.stats.batches++
  }

  private async run(): Promise<void> {
    let backoff = 100
    // The leader's polls look only for rows left behind (its notifications bring the others); a wake,
    // an error or a full batch makes the next claim take every row.
    let everything = true
    // Looks that found nothing since the last batch that found rows (see FOLLOW_UP_MS).
    let quietLooks = 0
    while (this.running) {
      try {
        everything ||= this.kicked
        // Woken: commits need not notify while this relay works.
        if (this.kicked) this.disarm()
        this.kicked = false
        const started = performance.now()
        const n = await this.publishOnce(undefined, { leftBehind: !everything })
        backoff = 100
        if (n > 0) quietLooks = 0
        everything = n >= this.opts.batchSize
        if (everything) continue
        // A relay that commits do not kick (cqrs relay; woken, if at all, only while it sleeps) is not
        // told of the commits that come while it works: after a batch that found rows it looks again
        // (gathered), and sleeps only once a look finds none. So under steady traffic its events do
        // not wait for its poll, and commits notify only while it waits for them.
        if (this.kicked || (n > 0 && !this.opts.seesCommits)) {
          this.disarm()
          // Commits came while this batch was out: gather them (and those still coming) into the next.
          if (n > 0) await this.wait(started + (this.opts.gatherMs ?? 0) - performance.now(), false)
          continue
        }
        // Nothing left: commits from now on wake this relay, and it looks once more for those that
        // committed before it armed.
        if (await this.arm()) continue
        // A relay that nothing wakes (no trigger; MySQL, SQLite) looks again soon after traffic stopped,
        // then less and less often, up to its poll interval: a pause in steady traffic costs its
        // next events FOLLOW_UP_MS, not a poll interval.
        const polling = !this.opts.seesCommits && !this.sleeper?.armed
        await this.wait(polling ? Math.min(this.opts.pollIntervalMs, FOLLOW_UP_MS * 2 ** quietLooks++) : this.opts.pollIntervalMs, true)
      } catch (e) {
        this.stats.errors++
        metricsHub.inc('relayErrors')
        this.stats.lastError = (e as Error).message
        this.opts.logger.warn('cqrs relay: publish failed; events stay in the outbox and will be retried', { error: e as Error, retryInMs: backoff })
        everything = true
        await this.wait(backoff, true)
        // Capped at the poll interval: once the broker is back, the backlog leaves within one interval.
        backoff = Math.min(backoff * 2, Math.max(this.opts.pollIntervalMs, 100))
      }
    }
  }

  /**
   * Wait `ms` (nothing below 1 ms), unless the relay stops meanwhile, or with `byKick` a commit wakes it
   * (an idle or backoff wait; not a gathering one, which waits for commits). An idle wait does not keep
   * the process alive; a gathering one, a few ms with events to publish, does.
   */
  private wait(ms: number, byKick: boolean): Promise<void> {
    if (ms < 1 || !this.running || (byKick && this.kicked)) return Promise.resolve()
    return new Promise((resolve) => {
      const t = setTimeout(() => this.pause?.end(), ms)
      if (byKick) t.unref?.()
      this.pause = {
        byKick,
        end: () => {
          this.pause = null
          clearTimeout(t)
          resolve()
        },
      }
    })
  }
}

const DEADLINE = Symbol('deadline')

/**
 * `p`, or a rejection with DEADLINE at `until`. A claim left running goes on by itself: its publish
 * has its own timeout, and its transaction commits or rolls back, so no event is lost or doubled.
 */
function beforeDeadline<T>(p: Promise<T>, until: number): Promise<T> {
  if (until === Infinity) return p
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(DEADLINE), Math.max(0, until - Date.now()))
  })
  p.catch(() => {}) // a rejection after the deadline has nobody to tell
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer))
}
