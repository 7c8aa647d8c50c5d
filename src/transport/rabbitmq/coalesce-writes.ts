import type { ChannelModel } from 'amqplib'

/** Arms {@link coalesceWrites}: the messages queued next leave in as few writes as the socket takes. */
export interface WriteCoalescer {
  arm(): void
}

/**
 * Let a connection's big batches of messages leave in one write. amqplib queues each message (its
 * method, header and body frames) as one chunk and its multiplexer writes the chunks to the socket
 * one by one, each a system call and, with Nagle's algorithm off (as the transport runs), a TCP
 * segment of its own that the broker reads on its own: a relay's batch of 1,000 events cost 1,000 of
 * each. Once armed, the socket is corked around the multiplexer's loop, so they go in one `writev` of
 * up to 16 KB at a time (the loop stops at the socket's buffer limit and goes on at 'drain'), until a
 * round leaves nothing queued. Only when armed (or `always`): for a handful of messages the corked
 * path cost the in-process relay's writer more than it saved (BENCHMARKS.md). Null, and nothing
 * changed, where amqplib's internals are not as expected: messages then leave as before.
 */
export function coalesceWrites(model: ChannelModel, options: { always?: boolean } = {}): WriteCoalescer | null {
  type Mux = { _readIncoming?: () => void; blocked?: boolean }
  const connection = (model as unknown as { connection?: { muxer?: Mux; stream?: { cork?: () => void; uncork?: () => void } } }).connection
  const mux = connection?.muxer
  const socket = connection?.stream
  const read = mux?._readIncoming
  if (!mux || typeof read !== 'function' || typeof socket?.cork !== 'function' || typeof socket.uncork !== 'function') return null
  let armed = options.always === true
  mux._readIncoming = function (this: unknown) {
    if (!armed) return read.call(this)
    socket.cork!()
    try {
      read.call(this)
    } finally {
      socket.uncork!()
    }
    // Blocked at the buffer limit: the rest comes at 'drain', corked too.
    if (!mux.blocked && !options.always) armed = false
  }
  return { arm: () => void (armed = true) }
}
