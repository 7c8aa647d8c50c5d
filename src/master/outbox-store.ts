import type { Logger } from '../core/logger.js'

/** One outbox row as the relay sees it. */
export interface OutboxRow {
  id: bigint | number
  cqrsId: string
  routingKey: string
  /** 0: `body` is the message; 1: `body` is a row image from a capture trigger, rendered by the relay. */
  format: number
  body: string
  /** W3C `traceparent` of the write that made the event, when the outbox has the column and a trace was active. */
  traceContext?: string | null
}

/** A session holding an old snapshot (see {@link OutboxStore.oldestSnapshot}). */
export interface SnapshotHolder {
  pid: number
  /** How long its transaction has been open. */
  ageMs: number
  /** `active`, `idle in transaction`, ... */
  state: string
  user: string | null
  application: string | null
  /** Its current or last statement, shortened. */
  query: string
}

export interface ClaimOptions {
  /**
   * Ids (integers, or their decimal text) of rows this relay has in flight: claimed in transactions
   * still open, or published from notifications and not yet deleted. Skipped instead of waited for.
   * Rows other relays hold are still waited for, so one row's events never leave out of order.
   */
  exclude?: ReadonlyArray<bigint | number | string>
  /**
   * Look from the oldest row, past any floor the store keeps to skip the rows it deleted (PostgreSQL):
   * for a drain that found rows left after a claim that took none.
   */
  fromStart?: boolean
  /**
   * Only rows committed at least this long ago (by their `created_at`): a follower's claims leave the
   * rows the leading relay publishes as they commit alone (see {@link OutboxEvents}).
   */
  olderThanMs?: number
  /**
   * The longest the claim may wait for its publish (the relay's publish timeout). Where the store
   * can (PostgreSQL), a claim's transaction left idle well past it is ended by the database, so that
   * a relay frozen or cut off mid-claim does not keep its rows locked from every other relay.
   */
  publishWithinMs?: number
}

/**
 * A relay's part among the relays of one outbox (PostgreSQL with the row-level NOTIFY trigger):
 * - `leader`: the one relay that gets each committed row by notification and publishes it at once;
 * - `follower`: another relay leads, so this one claims only rows left in the outbox for a while;
 * - `alone`: no election (another database, no LISTEN, or the trigger of earlier versions): it claims
 *   every row, woken by commits or its poll.
 */
export type RelayRole = 'alone' | 'leader' | 'follower'

/**
 * How a relay that commits wake sleeps (PostgreSQL with the outbox's wake-up trigger; one relay per
 * outbox, the others poll): it arms before it sleeps, looks once more, and disarms once woken.
 */
export interface OutboxSleeper {
  /**
   * From now on, commits wake this relay. Resolves true once every commit made before is visible (the
   * relay then looks once more, and sleeps if it finds nothing), false when it could not arm (it polls).
   */
  arm(): Promise<boolean>
  /** Commits need not wake this relay: it is at work. */
  disarm(): void
  /** Between an `arm()` that resolved true and the next `disarm()`. */
  readonly armed: boolean
}

/** What a store's watch tells the relay (see {@link OutboxStore.watch}). */
export interface OutboxEvents {
  /** Rows may have been committed: claim them. */
  wake(): void
  /** A committed row, sent with its notification (the leader only). */
  row?(row: OutboxRow): void
  /** This relay's part changed. */
  role?(role: RelayRole): void
  /** Commits wake this relay while it sleeps, armed with this (null: no longer; it polls). */
  sleeper?(sleeper: OutboxSleeper | null): void
  /**
   * Whether this relay may lead now (default: yes). A relay that lost its broker does not take the
   * lead, and a leader that lost it gives the lead up, to a relay that can publish.
   */
  canLead?(): boolean
}

/**
 * The master's database seam (ORM-agnostic): the relay claims rows, publishes them, and the store
 * deletes them in the same database transaction, so two relays never publish one row twice.
 */
export interface OutboxStore {
  /**
   * Lock up to `limit` of the oldest rows (in id order), call `publish` with them, delete them once it
   * resolves, commit. If `publish` rejects, nothing is deleted. Returns how many rows were published.
   */
  claim(limit: number, publish: (rows: OutboxRow[]) => Promise<void>, options?: ClaimOptions): Promise<number>
  /**
   * True when claims may overlap: a claim with `exclude` does not wait for the rows of this relay's
   * earlier claims still open (PostgreSQL; not MySQL, whose locking read waits for rows it then
   * filters out, nor SQLite's single writer). The relay then pipelines its batches.
   */
  readonly pipelines?: boolean
  /** Rows waiting and the age of the oldest, for `cqrs status` and metrics. */
  backlog(): Promise<{ count: number; oldestAt: Date | null }>
  /**
   * Tell the relay when another process added rows (PostgreSQL: LISTEN for the outbox triggers'
   * NOTIFY: `wake` while this relay sleeps, or each row itself while this relay leads), until the returned function is
   * called. Optional: without it the relay finds rows by polling; with it the relay still polls, as a
   * safety net.
   */
  watch?(events: OutboxEvents, logger: Logger): Promise<() => Promise<void>>
  /**
   * Delete rows the relay published outside a claim (the leader's rows from notifications), once the
   * broker confirmed them. Rows already gone are no error.
   */
  deletePublished?(ids: ReadonlyArray<bigint | number>): Promise<void>
  /**
   * The oldest session whose transaction has held its snapshot for at least `minAgeMs` (PostgreSQL),
   * or null. While it runs, the database keeps every outbox row deleted since it began, and each claim
   * walks past them in the outbox's index: the relay names it when claims turn slow.
   */
  oldestSnapshot?(minAgeMs: number): Promise<SnapshotHolder | null>
  /** Release connections the store opened (the relay calls it on stop). */
  close?(): Promise<void>
}
