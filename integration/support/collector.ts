import type { OutgoingMessage, Transport } from '../../src/transport/types.js'

/**
 * A transport that records what the relay published, for tests of capture (which events a write
 * produces). Delivery guarantees are proven against RabbitMQ, not with this.
 */
export class CollectorTransport implements Transport {
  readonly name = 'collector'
  readonly published: OutgoingMessage[] = []
  failing = false
  private waiters: Array<{ n: number; resolve: () => void }> = []

  async connect() {}
  async close() {}
  isConnected() {
    return !this.failing
  }
  async publish(messages: OutgoingMessage[]) {
    if (this.failing) throw new Error('collector: broker down')
    this.published.push(...messages)
    this.waiters = this.waiters.filter((w) => (this.published.length >= w.n ? (w.resolve(), false) : true))
  }
  async consume(): Promise<never> {
    throw new Error('collector transport does not consume')
  }
  /** Parsed bodies of everything published so far. */
  bodies(): any[] {
    return this.published.map((m) => JSON.parse(m.body))
  }
  /** Resolves once at least `n` messages were published. */
  waitFor(n: number): Promise<void> {
    if (this.published.length >= n) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push({ n, resolve }))
  }
  clear() {
    this.published.length = 0
  }
}
