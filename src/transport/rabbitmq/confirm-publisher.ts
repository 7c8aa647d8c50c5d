import type { ConfirmChannel, Options } from 'amqplib'
import { TransportError } from '../../core/errors.js'

/** A message handed to the publisher; `confirmed` settles when the broker confirms or refuses it. */
export interface Sent {
  confirmed: Promise<void>
}

/**
 * Publishes on a confirm channel with a bounded window: at most `window` messages await their
 * confirm at once, and none is written while the socket buffer asks us to wait for 'drain'.
 * Every message gets its own confirm callback, so one refused message fails its own promise.
 */
export class ConfirmPublisher {
  readonly #channel: ConfirmChannel
  readonly #window: number
  #outstanding = 0
  #mustDrain = false
  #closed = false
  #waiters: Array<() => void> = []

  constructor(channel: ConfirmChannel, window: number) {
    this.#channel = channel
    this.#window = window
    channel.on('close', () => {
      this.#closed = true
      this.#wake()
    })
    channel.on('drain', () => {
      this.#mustDrain = false
      this.#wake()
    })
  }

  /** False once the channel closed; a new publisher is needed then. */
  get open(): boolean {
    return !this.#closed
  }

  /**
   * Wait for room in the window, then write the message. Resolves once written (keep publishing in
   * order); `confirmed` of the result settles with the broker's answer.
   */
  async send(exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<Sent> {
    while (!this.#closed && (this.#outstanding >= this.#window || this.#mustDrain)) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve))
    }
    const what = describe(exchange, routingKey, options.messageId)
    if (this.#closed) {
      throw new TransportError(`the RabbitMQ channel closed before ${what} was sent; it was not published, publish it again`, { exchange, routingKey, messageId: options.messageId })
    }
    this.#outstanding++
    const confirmed = new Promise<void>((resolve, reject) => {
      const settle = (err: unknown) => {
        this.#outstanding--
        this.#wake()
        if (err) reject(confirmError(what, err, exchange, routingKey, options.messageId))
        else resolve()
      }
      try {
        if (!this.#channel.publish(exchange, routingKey, content, options, settle)) this.#mustDrain = true
      } catch (err) {
        // amqplib throws synchronously on a closed channel, before it registers the callback.
        settle(err)
      }
    })
    // The caller awaits `confirmed` later; until then a refusal must not count as unhandled.
    confirmed.catch(() => {})
    return { confirmed }
  }

  /** Wait for outstanding confirms (best effort), then close the channel. */
  async close(): Promise<void> {
    if (this.#closed) return
    await this.#channel.waitForConfirms().catch(() => {})
    await this.#channel.close().catch(() => {})
  }

  #wake(): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w()
  }
}

function describe(exchange: string, routingKey: string, messageId: unknown): string {
  return `message ${messageId === undefined ? '' : `${String(messageId)} `}to '${exchange}' with key '${routingKey}'`
}

function confirmError(what: string, err: unknown, exchange: string, routingKey: string, messageId: unknown): TransportError {
  const reason = err instanceof Error ? err.message : String(err)
  const details = { exchange, routingKey, messageId }
  if (err instanceof TypeError || err instanceof RangeError) {
    return new TransportError(`cannot encode ${what}: ${reason}; headers must be a small flat object of strings and numbers`, details, { cause: err })
  }
  if (/nack/i.test(reason)) {
    return new TransportError(`RabbitMQ refused ${what} (nack); it was not stored, publish it again`, details, { cause: err })
  }
  return new TransportError(`RabbitMQ did not confirm ${what} (${reason}): the connection or channel closed; publish it again`, details, { cause: err })
}
