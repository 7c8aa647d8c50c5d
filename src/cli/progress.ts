/**
 * Progress of long CLI work on stderr (never stdout, which carries data): at most one line a second,
 * only when stderr is a terminal or `--progress` was given, with rows done, rate and time left when it
 * can be told. The summary line at the end is always written.
 */
import { duration } from '../core/duration.js'

export interface ProgressOptions {
  /** `cqrs bulk-dump`: the prefix of every line. */
  label: string
  enabled: boolean
  /** Rows expected, when known up front (a COUNT). */
  total?: number
  /** Share of the work done (0..1) when rows are not known but bytes are (a file being loaded). */
  fraction?: () => number | undefined
  intervalMs?: number
  write?: (line: string) => void
  now?: () => number
}

/** `123k`, `1.2M`: rates and counts at a glance. */
export function shortNumber(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`
  if (n >= 1e4) return `${Math.round(n / 1e3)}k`
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`
  return String(Math.round(n))
}


export class Progress {
  done = 0
  private readonly started: number
  private last: number
  private readonly now: () => number
  private readonly write: (line: string) => void

  constructor(private readonly o: ProgressOptions) {
    this.now = o.now ?? (() => performance.now())
    this.write = o.write ?? ((line) => void process.stderr.write(`${line}\n`))
    this.started = this.last = this.now()
  }

  /** Elapsed time in ms. */
  get elapsedMs(): number {
    return this.now() - this.started
  }

  /** Rows per second so far. */
  get rate(): number {
    const s = this.elapsedMs / 1000
    return s > 0 ? this.done / s : 0
  }

  /** Count `n` more rows; prints a line when due. */
  add(n: number): void {
    this.done += n
    if (!this.o.enabled) return
    const t = this.now()
    if (t - this.last < (this.o.intervalMs ?? 1000)) return
    this.last = t
    this.write(this.line())
  }

  /** The progress line as it would print now. */
  line(): string {
    const { total } = this.o
    const rate = this.rate
    let text = `${this.o.label}: ${this.done.toLocaleString('en-US')}${total !== undefined ? ` of ${total.toLocaleString('en-US')}` : ''} rows`
    const share = total ? this.done / total : this.o.fraction?.()
    if (share !== undefined && share > 0) text += ` (${Math.min(100, Math.floor(share * 100))}%)`
    text += `, ${shortNumber(rate)} rows/s`
    if (share !== undefined && share > 0 && share < 1) text += `, about ${duration((this.elapsedMs * (1 - share)) / share)} left`
    return text
  }

  /** `<label>: <what> in 8.1 s (123k rows/s)`: always printed. */
  summary(what: string): string {
    const line = `${this.o.label}: ${what} in ${duration(this.elapsedMs)} (${shortNumber(this.rate)} rows/s)`
    this.write(line)
    return line
  }
}
