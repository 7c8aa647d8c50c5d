import { normalizeDateTime, type CqrsMessage } from '../core/message.js'

/** Counters and a lag sample (apply time minus the master's cqrs_updated) for metrics and benchmarks. */
export class ReplicaStats {
  applied = 0
  skipped = 0
  retried = 0
  deadLettered = 0
  private lags: number[] = []
  private next = 0

  count(kind: 'applied' | 'skipped' | 'retried' | 'deadLettered', n = 1): void {
    this[kind] += n
  }

  observeLag(m: CqrsMessage): void {
    const u = m.instance_data.cqrs_updated
    if (typeof u !== 'string') return
    const lag = Date.now() - Date.parse(normalizeDateTime(u))
    if (Number.isNaN(lag)) return
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
