import { normalizeDateTime, type CqrsMessage } from '../core/message.js'
import type { MessageOutcome } from '../metrics/metric-catalogue.js'
import { metricsHub } from '../metrics/metrics-hub.js'
import type { Delivery } from '../transport/types.js'
import type { ApplyOp, ApplyResult } from './apply-op.js'

type Kind = 'applied' | 'skipped' | 'retried' | 'deadLettered'
const OUTCOME: Record<Exclude<Kind, 'skipped'>, MessageOutcome> = { applied: 'applied', retried: 'retried', deadLettered: 'dead_lettered' }

/**
 * Counters and a lag sample (apply time minus the master's cqrs_updated) for benchmarks and the
 * stats log line; each count is also reported to the metrics hub, per queue and cqrs_id.
 */
export class ReplicaStats {
  applied = 0
  skipped = 0
  retried = 0
  deadLettered = 0
  private lags: number[] = []
  private next = 0

  constructor(private readonly queue = '') {}

  count(kind: Kind, n = 1, cqrsId = '_unknown'): void {
    this[kind] += n
    if (kind !== 'skipped') metricsHub.inc('messages', { queue: this.queue, cqrs_id: cqrsId, outcome: OUTCOME[kind] }, n)
  }

  /**
   * Count how one table batch ended, from each op's result (the version gate's `applyGated`). A
   * message that did not change the table is a `duplicate` when the broker redelivered it or its batch
   * held the same revision of the pk twice, and `stale` otherwise (the gate kept a newer or equal
   * replica row, or a newer message of the batch won). Failed ops are counted by their outcome.
   */
  countBatch(cqrsId: string, items: Array<{ op?: ApplyOp; delivery: Delivery }>, results: ReadonlyMap<ApplyOp, ApplyResult | Error>): void {
    const key = (op: ApplyOp) => `${op.pkKey}\u0000${op.revision}\u0000${op.signal}`
    // How often each (pk, revision, signal) came in the batch; counted only when an op was skipped.
    let seen: Map<string, number> | undefined
    const timesSeen = (op: ApplyOp) => {
      if (!seen) {
        seen = new Map()
        for (const it of items) if (it.op) seen.set(key(it.op), (seen.get(key(it.op)) ?? 0) + 1)
      }
      return seen.get(key(op))!
    }
    const by: Record<'applied' | 'duplicate' | 'stale', number> = { applied: 0, duplicate: 0, stale: 0 }
    for (const { op, delivery } of items) {
      const r = op && results.get(op)
      if (!op || r === undefined || r instanceof Error) continue
      by[r === 'applied' ? 'applied' : delivery.redelivered || timesSeen(op) > 1 ? 'duplicate' : 'stale']++
    }
    this.applied += by.applied
    this.skipped += by.duplicate + by.stale
    for (const outcome of ['applied', 'duplicate', 'stale'] as const) metricsHub.inc('messages', { queue: this.queue, cqrs_id: cqrsId, outcome }, by[outcome])
  }

  observeLag(m: CqrsMessage): void {
    const u = m.instance_data.cqrs_updated
    if (typeof u !== 'string') return
    const lag = Date.now() - Date.parse(normalizeDateTime(u))
    if (Number.isNaN(lag)) return
    metricsHub.observe('applyLag', { queue: this.queue, cqrs_id: m.cqrs_id }, Math.max(0, lag) / 1000)
    // A ring of the last 10k samples keeps memory flat.
    if (this.lags.length < 10_000) this.lags.push(lag)
    else this.lags[this.next++ % 10_000] = lag
  }

  /** Lag percentiles in ms over the recent samples. */
  lag(): { p50: number; p99: number; samples: number } {
    const s = [...this.lags].sort((a, b) => a - b)
    const at = (q: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : 0)
    return { p50: at(0.5), p99: at(0.99), samples: s.length }
  }

  snapshot() {
    return { applied: this.applied, skipped: this.skipped, retried: this.retried, deadLettered: this.deadLettered, lagMs: this.lag() }
  }
}
