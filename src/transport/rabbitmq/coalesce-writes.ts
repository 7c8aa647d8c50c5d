import type { ChannelModel } from 'amqplib'

/** Arms {@link coalesceWrites}: the messages queued next leave in as few writes as the socket takes. */
export interface WriteCoalescer {
  /**
   * Cork the rounds from now until `release` is called, and the round after it. A sender holds it
   * while it queues a batch: a batch bigger than the confirm window is queued a few messages at a time
   * as confirms make room, and each of those rounds must be corked too, not only the first.
   */
  arm(): () => void
}

/**
 * Let a connection's big batches of messages leave in one write. amqplib queues each message (its
 * method, header and body frames) as one chunk and its multiplexer writes the chunks to the socket
 * one by one, each a system call and, with Nagle's algorithm off (as the transport runs), a TCP
 * segment of its own that the broker reads on its own: a relay's batch of 1,000 events cost 1,000 of
 * each. Once armed, the socket is corked around the multiplexer's loop, so they go in one `writev` of
 * up to 16 KB at a time (the loop stops at the socket's buffer limit and goes on at 'drain'), until
 * no sender holds it and a round leaves nothing queued. Only when armed (or `always`): for a handful
 * of messages the corked path cost the in-process relay's writer more than it saved (BENCHMARKS.md).
 * Null, and nothing changed, where amqplib's internals are not as expected: messages then leave as
 * before.
 */
export function coalesceWrites(model: ChannelModel, options: { always?: boolean } = {}): WriteCoalescer | null {
  type Mux = { _readIncoming?: () => void; blocked?: boolean }
  const connection = (model as unknown as { connection?: { muxer?: Mux; stream?: { cork?: () => void; uncork?: () => void } } }).connection
  const mux = connection?.muxer
  const socket = connection?.stream
  const read = mux?._readIncoming
  if (!mux || typeof read !== 'function' || typeof socket?.cork !== 'function' || typeof socket.uncork !== 'function') return null
  let armed = options.always === true
  /** Senders queueing a batch now: until the last lets go, every round is corked. */
  let holders = 0
  mux._readIncoming = function (this: unknown) {
    if (!armed) return read.call(this)
    socket.cork!()
    try {
      read.call(this)
    } finally {
      socket.uncork!()
    }
    // Blocked at the buffer limit: the rest comes at 'drain', corked too.
    if (!mux.blocked && holders === 0 && !options.always) armed = false
  }
  return {
    arm: () => {
      armed = true
      holders++
      let held = true
      return () => {
        if (!held) return
        held = false
        holders--
      }
    },
  }
}
