/**
 * Where a PostgreSQL claim may start looking: above the outbox ids that can hold nothing to publish.
 *
 * Why: the relay deletes what it published, and while any session of the database keeps an older
 * snapshot (a report, a dump, a session left idle in its transaction) PostgreSQL keeps those rows,
 * and a claim that looks for the oldest rows from the start of the outbox's index walks past every
 * one of them. With a floor, it starts above them.
 *
 * When an id is safe to pass: a claim takes the lowest visible rows above its floor, so it took every
 * row up to its highest id that its snapshot could see (every one above its floor, if it took fewer
 * than its limit). A row below that highest id that it could not see got its id before that highest
 * row committed, so from a transaction already open when the claim's snapshot was taken (ids come
 * from a sequence, and the capture writes the model's row before its outbox row, so that transaction
 * had an xid by then): one below the xmax read right after the claim. Once every such transaction has
 * ended (the oldest xid still running is at or past that xmax), a later claim that sees that far sees
 * whatever they committed; after it commits, nothing at or below that highest id is left to publish,
 * and the floor moves there. A row's later events have higher ids (its next writer waits for the row
 * lock, so its nextval comes after the commit), so they still leave after it. A session holding a
 * snapshot without writing (a report, a dump) has no xid, so it does not hold the floor back; one
 * that writes and stays open does, and claims then walk as they did without a floor.
 *
 * What it does not trust: a failed claim puts its rows back, perhaps below the floor, so it drops the
 * floor (and a claim that started before the failure cannot raise it); an id taken out of the
 * sequence's order (an explicit id, a sequence cached per session, an outbox row written before any
 * other write of its transaction) could be passed, so a claim from the start still runs at least
 * every `fullScanMs` (and at most 1/20 of the time), and a drain that finds rows left after an empty
 * claim looks from the start (ClaimOptions.fromStart).
 */
export class ClaimFloor {
  private floor: bigint | null = null
  /** A claim's reach, waiting for the transactions open during it to end. */
  private pending: { upTo: bigint; xmax: bigint } | null = null
  /** Bumped by each failure: a claim started before it cannot move the floor. */
  private epoch = 0
  /** When the next claim from the start of the outbox is due. */
  private fullScanDue = -Infinity

  /**
   * `fullScanMs`: a claim from the start at least this often, and at most 1/`FULL_SCAN_SHARE` of the
   * time (one that walked past many deleted rows took long).
   */
  constructor(private readonly fullScanMs = 1000) {}

  /**
   * The floor the next claim starts above (null: from the start of the outbox, when a claim from there
   * is due or `fromStart` asks for one), and its ticket for {@link done}.
   */
  start(now = performance.now(), fromStart = false): { floor: bigint | null; ticket: Ticket } {
    const floor = fromStart || now >= this.fullScanDue ? null : this.floor
    return { floor, ticket: { epoch: this.epoch, from: floor, at: now } }
  }

  /**
   * A claim committed. `xminBefore`: the oldest xid running just before its SELECT; `xmaxAfter`: the
   * next xid just after it; `ids`: what it took; `complete`: fewer than its limit, so it took every
   * visible row above its floor (else every one up to its highest id).
   */
  done(ticket: Ticket, xminBefore: bigint, xmaxAfter: bigint, ids: ReadonlyArray<bigint | number>, complete: boolean, now = performance.now()): void {
    if (ticket.epoch !== this.epoch) return
    if (ticket.from === null) this.fullScanDue = Math.max(this.fullScanDue, now + Math.max(this.fullScanMs, FULL_SCAN_SHARE * (now - ticket.at)))
    const highest = ids.length ? ids.reduce<bigint>((m, id) => (BigInt(id) > m ? BigInt(id) : m), BigInt(ids[0])) : null
    const p = this.pending
    // The transactions open during that reach's claim had ended, and this claim saw every visible row
    // from its own floor (below which nothing is left: no failure since) up to that reach.
    if (p && xminBefore >= p.xmax && (complete || (highest !== null && highest >= p.upTo))) {
      if (this.floor === null || p.upTo > this.floor) this.floor = p.upTo
      this.pending = null
    }
    if (!this.pending && highest !== null && (this.floor === null || highest > this.floor)) this.pending = { upTo: highest, xmax: xmaxAfter }
  }

  /** A claim failed: its rows are back in the outbox, where the floor may have passed them. */
  reset(): void {
    this.epoch++
    this.floor = null
    this.pending = null
  }
}

export interface Ticket {
  epoch: number
  from: bigint | null
  at: number
}

/** A claim from the start of the outbox takes at most 1/20 of the relay's time. */
const FULL_SCAN_SHARE = 20
