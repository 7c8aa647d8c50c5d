import { TransportError } from '../core/errors.js'
import type {
  BatchHandler,
  ConsumeOptions,
  DeadLetter,
  OutgoingMessage,
  QueueSpec,
  QueueStats,
  Subscription,
  Transport,
} from './types.js'

/**
 * Wraps any {@link Transport} so that it is connected once and closed once, whoever calls
 * (kysely's runtime-driver). Transports stay simple: they never see a second `connect()`, a
 * `publish()` before `connect()`, or anything after `close()`.
 *
 * - `connect()` runs the inner connect once, even when called concurrently; if it fails, a later
 *   call tries again.
 * - `publish()` and `consume()` connect first; after `close()` they throw a {@link TransportError}.
 * - `close()` stops the subscriptions still running (waiting for their batches in flight), then
 *   closes the inner transport, once.
 * - The optional methods exist only when the inner transport has them.
 */
export class RuntimeTransport implements Transport {
  readonly name: string
  /** The wrapped transport. */
  readonly inner: Transport
  readonly listDeadLetters?: (spec: QueueSpec, limit: number) => Promise<DeadLetter[]>
  readonly drainDeadLetters?: (
    spec: QueueSpec,
    select: (d: DeadLetter) => boolean,
    fn: (d: DeadLetter) => Promise<void>,
  ) => Promise<number>
  readonly queueStats?: (spec: QueueSpec) => Promise<QueueStats>
  readonly send?: (messages: OutgoingMessage[]) => Promise<{ confirmed: Promise<void> }>

  #connecting: Promise<void> | undefined
  #connected = false
  #closing: Promise<void> | undefined
  readonly #subscriptions = new Set<Subscription>()

  constructor(inner: Transport) {
    this.inner = inner
    this.name = inner.name
    // Bound only when present, so `if (transport.listDeadLetters)` keeps telling the truth.
    const { listDeadLetters, drainDeadLetters, queueStats, send } = inner
    if (send) this.send = async (messages) => {
      await this.#ready('send')
      return send.call(inner, messages)
    }
    if (listDeadLetters) this.listDeadLetters = async (spec, limit) => {
      await this.#ready('listDeadLetters')
      return listDeadLetters.call(inner, spec, limit)
    }
    if (drainDeadLetters) this.drainDeadLetters = async (spec, select, fn) => {
      await this.#ready('drainDeadLetters')
      return drainDeadLetters.call(inner, spec, select, fn)
    }
    if (queueStats) this.queueStats = async (spec) => {
      await this.#ready('queueStats')
      return queueStats.call(inner, spec)
    }
  }

  /** Connect the inner transport once; concurrent callers share the attempt, a failed one can be retried. */
  connect(): Promise<void> {
    if (this.#closing) return Promise.reject(this.#closedError('connect'))
    this.#connecting ??= this.inner.connect().then(
      () => {
        this.#connected = true
      },
      (err: unknown) => {
        this.#connecting = undefined
        throw err
      },
    )
    return this.#connecting
  }

  /** Connect if needed, then publish. */
  async publish(messages: OutgoingMessage[]): Promise<void> {
    await this.#ready('publish')
    return this.inner.publish(messages)
  }

  /** Connect if needed, then consume; the subscription is stopped by `close()` if still running. */
  async consume(options: ConsumeOptions, handler: BatchHandler): Promise<Subscription> {
    await this.#ready('consume')
    const inner = await this.inner.consume(options, handler)
    let stopping: Promise<void> | undefined
    const subscription: Subscription = {
      stop: () =>
        (stopping ??= inner.stop().finally(() => {
          this.#subscriptions.delete(subscription)
        })),
    }
    this.#subscriptions.add(subscription)
    return subscription
  }

  /** Stop running subscriptions, then close the inner transport; runs once. */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  /** Connected, not closed, and the inner transport (if it can tell) is connected right now. */
  isConnected(): boolean {
    return this.#connected && !this.#closing && (this.inner.isConnected?.() ?? true)
  }

  async #close(): Promise<void> {
    await Promise.allSettled([...this.#subscriptions].map((s) => s.stop()))
    // Wait for a connect in flight so it cannot finish after we closed; its failure does not matter now.
    if (this.#connecting) await this.#connecting.catch(() => {})
    if (this.#connecting) await this.inner.close()
    this.#connected = false
  }

  async #ready(operation: string): Promise<void> {
    if (this.#closing) throw this.#closedError(operation)
    await this.connect()
  }

  #closedError(operation: string): TransportError {
    return new TransportError(
      `${operation}() on the ${this.name} transport after close(); it cannot be reopened. Create a new transport instead.`,
      { transport: this.name, operation },
    )
  }
}

// One wrapper per transport object: when a master and a replica are given the same transport, it
// is still connected once (and closing either side closes it for both, as it would anyway).
const wrappers = new WeakMap<Transport, RuntimeTransport>()

/**
 * Wrap `t` in a {@link RuntimeTransport}: `t` itself when it is one already, and the same wrapper
 * every time for the same `t`.
 */
export function runtime(t: Transport): RuntimeTransport {
  if (t instanceof RuntimeTransport) return t
  let wrapper = wrappers.get(t)
  if (!wrapper) wrappers.set(t, (wrapper = new RuntimeTransport(t)))
  return wrapper
}
