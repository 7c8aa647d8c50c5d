import type { OutgoingMessage, Transport } from '../../src/transport/types.js'

/** A seeded PRNG (mulberry32): the same seed gives the same stream of writes and faults. */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Wraps a real transport on the publishing side: duplicates some messages, shuffles each batch,
 * and holds some back to send after later batches, so the replica sees duplicates and reordering.
 * `release()` sends what is still held.
 */
export class ChaosPublisher implements Transport {
  readonly name = 'chaos'
  private held: OutgoingMessage[] = []
  duplicated = 0
  reordered = 0

  constructor(
    private readonly inner: Transport,
    private readonly random: () => number,
    private readonly rates = { duplicate: 0.2, holdBack: 0.2 },
  ) {}

  connect() {
    return this.inner.connect()
  }
  close() {
    return this.inner.close()
  }
  consume(...a: Parameters<Transport['consume']>) {
    return this.inner.consume(...a)
  }

  async publish(messages: OutgoingMessage[]): Promise<void> {
    const out: OutgoingMessage[] = [...this.held.splice(0)]
    for (const m of messages) {
      if (this.random() < this.rates.holdBack) {
        this.held.push(m)
        this.reordered++
      } else out.push(m)
      if (this.random() < this.rates.duplicate) {
        out.push(m)
        this.duplicated++
      }
    }
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1))
      ;[out[i], out[j]] = [out[j], out[i]]
    }
    await this.inner.publish(out)
  }

  async release(): Promise<void> {
    await this.inner.publish(this.held.splice(0))
  }
}
