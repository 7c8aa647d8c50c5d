import { ConfigError } from '../core/errors.js'
import type { ConsumeOptions, Outcome } from './types.js'

/**
 * Micro-batching for consumers: items are buffered, and whenever fewer than `maxInFlight` batches
 * run and items wait, the next batch takes up to `batchSize` of them at once. Batches start in the
 * order their items came. With one batch in flight (the default) its acks always cover the oldest
 * outstanding deliveries; a consumer that lets two run (so the next batch is decoded while one
 * commits) must settle them in order itself.
 */
export class BatchPump<T> {
  readonly #batchSize: number
  readonly #run: (batch: T[]) => Promise<void>
  readonly #maxInFlight: number
  #buffer: T[] = []
  readonly #inFlight = new Set<Promise<void>>()
  #scheduled = false
  #stopped = false

  /** `run` carries a batch out and reports its own errors; a rejection is ignored. */
  constructor(batchSize: number, run: (batch: T[]) => Promise<void>, maxInFlight = 1) {
    this.#batchSize = batchSize
    this.#run = run
    this.#maxInFlight = maxInFlight
  }

  /** Items waiting for a batch. */
  get buffered(): number {
    return this.#buffer.length
  }

  /** Buffer an item; a batch starts in a microtask so items arriving in the same tick share it. */
  push(item: T): void {
    this.#buffer.push(item)
    this.#schedule()
  }

  /** Start no new batch; resolves when the batches in flight (if any) have finished. */
  stop(): Promise<void> {
    this.#stopped = true
    return Promise.all(this.#inFlight).then(() => {})
  }

  /** Remove and return the buffered items (to hand them back to the broker). */
  take(): T[] {
    return this.#buffer.splice(0)
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight.size >= this.#maxInFlight || this.#stopped) return
    this.#scheduled = true
    queueMicrotask(() => {
      this.#scheduled = false
      this.#next()
    })
  }

  #next(): void {
    while (this.#inFlight.size < this.#maxInFlight && !this.#stopped && this.#buffer.length > 0) {
      const batch = this.#buffer.splice(0, this.#batchSize)
      const running: Promise<void> = Promise.resolve()
        .then(() => this.#run(batch))
        .catch(() => {})
        .finally(() => {
          this.#inFlight.delete(running)
          this.#schedule()
        })
      this.#inFlight.add(running)
    }
  }
}

/**
 * Throws a {@link ConfigError} unless prefetch and batchSize are positive integers and the queue is
 * named, or when `from` is given to a transport that keeps no history (`keepsHistory` false).
 */
export function assertConsumeOptions(transport: string, options: ConsumeOptions, keepsHistory = false): void {
  if (options.from !== undefined && !keepsHistory) {
    throw new ConfigError(`${transport}.consume(): from (--from) needs a transport that keeps the events' history, such as nats(); the ${transport} transport hands a new queue only what is published after it exists. Bootstrap with bulk-dump | bulk-load instead`, { queue: options.queue })
  }
  if (options.from !== undefined && Number.isNaN(options.from.getTime())) throw new ConfigError(`${transport}.consume(): from must be a valid date; got an invalid one`, { queue: options.queue })
  const bad = (['prefetch', 'batchSize', 'inFlight'] as const).filter((k) => (k !== 'inFlight' || options[k] !== undefined) && (!Number.isInteger(options[k]) || options[k]! < 1))
  if (!options.queue) throw new ConfigError(`${transport}.consume(): queue must be a non-empty name`, { queue: options.queue })
  if (bad.length > 0) {
    const given = bad.map((k) => `${k}=${String(options[k])}`).join(', ')
    throw new ConfigError(`${transport}.consume(): prefetch, batchSize and inFlight must be integers >= 1; got ${given}`, { queue: options.queue })
  }
}

/** Throws unless the handler returned one outcome per delivery (the transport then hands the batch back). */
export function assertOutcomes(outcomes: unknown, batchSize: number): asserts outcomes is Outcome[] {
  if (Array.isArray(outcomes) && outcomes.length === batchSize) return
  const got = Array.isArray(outcomes) ? `${outcomes.length} outcomes` : typeof outcomes
  throw new TypeError(`the batch handler returned ${got} for a batch of ${batchSize} deliveries; it must return one outcome per delivery, in order`)
}
