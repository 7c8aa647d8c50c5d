/** Small statistics helpers for the benchmarks: percentiles, min/median/max, rates. */

/** Nearest-rank percentile (q in 0..1) of unsorted samples; NaN when there are none. */
export function percentile(samples: ArrayLike<number>, q: number): number {
  const n = samples.length
  if (n === 0) return Number.NaN
  const s = Float64Array.from(samples as ArrayLike<number>).sort()
  const rank = Math.ceil(q * n)
  return s[Math.min(n - 1, Math.max(0, rank - 1))]
}

export interface Spread {
  min: number
  median: number
  max: number
}

/** min / median / max of the finite values (NaN everywhere when none). */
export function spread(values: number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return { min: Number.NaN, median: Number.NaN, max: Number.NaN }
  const mid = v.length >> 1
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2
  return { min: v[0], median, max: v[v.length - 1] }
}

/** Events (or rows, or ops) per second. */
export const rate = (count: number, ms: number): number => (ms > 0 ? (count * 1000) / ms : Number.NaN)

/** Milliseconds since an origin, as a float (performance.now is monotonic). */
export const now = (): number => performance.now()

/** Latency recorder: `time(fn)` records how long fn took in ms. */
export class Latencies {
  private readonly samples: number[] = []
  async time<T>(fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now()
    const r = await fn()
    this.samples.push(performance.now() - t0)
    return r
  }
  push(ms: number): void {
    this.samples.push(ms)
  }
  get count(): number {
    return this.samples.length
  }
  p(q: number): number {
    return percentile(this.samples, q)
  }
}
