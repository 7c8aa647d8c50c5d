import type { ChannelModel } from 'amqplib'

/**
 * Make a connection's messages of one turn leave in one write. amqplib queues each message (its
 * method, header and body frames) as one chunk and its multiplexer writes the chunks to the socket
 * one by one, each a system call and, with Nagle's algorithm off (as the transport runs), a TCP
 * segment of its own that the broker reads on its own: a relay's batch of 1,000 events cost 1,000 of
 * each. Corked around the multiplexer's loop, the socket sends them in one `writev`, in 16 KB parts
 * (the loop stops at the socket's buffer limit and goes on at 'drain', as before). Returns false,
 * and changes nothing, where amqplib's internals are not as expected: messages then leave as before.
 */
export function coalesceWrites(model: ChannelModel): boolean {
  const connection = (model as unknown as { connection?: { muxer?: { _readIncoming?: () => void }; stream?: { cork?: () => void; uncork?: () => void } } }).connection
  const mux = connection?.muxer
  const socket = connection?.stream
  const read = mux?._readIncoming
  if (!mux || typeof read !== 'function' || typeof socket?.cork !== 'function' || typeof socket.uncork !== 'function') return false
  mux._readIncoming = function (this: unknown) {
    socket.cork!()
    try {
      read.call(this)
    } finally {
      socket.uncork!()
    }
  }
  return true
}
