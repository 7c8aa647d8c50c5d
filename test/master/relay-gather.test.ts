import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import type { OutboxRow, OutboxStore } from '../../src/master/outbox-store.js'
import { Relay } from '../../src/master/relay.js'
import { runtime } from '../../src/transport/runtime-transport.js'
import type { OutgoingMessage } from '../../src/transport/types.js'

/**
 * The relay's gathering (relay.gatherMs) on fake timers: when commits arrived while a batch was out,
 * the next batch starts no sooner than gatherMs after that batch started; after an idle spell a
 * commit is claimed at once, and full batches follow each other at once. Time moves only when the
 * test moves it, so "at once" means "before any time passed", whatever the machine's speed.
 */
describe('the relay gathers commits that arrive while a batch is out', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  /** An outbox in memory that records when each claim started; `during` runs inside a batch's publish. */
  function outbox() {
    const rows: OutboxRow[] = []
    const claims: Array<{ at: number; ids: number[] }> = []
    let nextId = 1
    let during: (() => void) | null = null
    const store: OutboxStore = {
      async claim(limit, publish) {
        const batch = rows.slice(0, limit)
        claims.push({ at: performance.now(), ids: batch.map((r) => Number(r.id)) })
        if (!batch.length) return 0
        const hook = during
        during = null
        hook?.()
        await publish(batch)
        rows.splice(0, batch.length)
        return batch.length
      },
      async backlog() {
        return { count: rows.length, oldestAt: null }
      },
    }
    const commit = (n = 1) => {
      for (let i = 0; i < n; i++) {
        const id = nextId++
        rows.push({ id, cqrsId: 'account', routingKey: 'account', format: 0, body: `{"n":${id}}` })
      }
    }
    return { store, rows, claims, commit, duringNextBatch: (fn: () => void) => (during = fn) }
  }

  const published: OutgoingMessage[] = []
  const transport = runtime({
    name: 'recording',
    connect: async () => {},
    close: async () => {},
    consume: async () => ({ stop: async () => {} }),
    publish: async (messages: OutgoingMessage[]) => void published.push(...messages),
  })

  /** Let the relay's loop run as far as it can without time passing. */
  const settle = () => vi.advanceTimersByTimeAsync(0)

  /** A started relay over an empty in-memory outbox, past its first (empty) claim. */
  async function startRelay(gatherMs: number, batchSize = 100) {
    const box = outbox()
    // The in-process relay: commits kick it.
    const relay = new Relay({ store: box.store, transport, batchSize, pollIntervalMs: 60_000, gatherMs, seesCommits: true, logger: silentLogger })
    relay.start()
    await settle()
    /** One commit wakes the relay, and `during` more land (and kick it) while that batch is out. */
    const busyBatch = async (during: number) => {
      box.commit()
      box.duringNextBatch(() => {
        box.commit(during)
        relay.kick()
      })
      relay.kick()
      await settle()
    }
    return { ...box, relay, busyBatch, first: box.claims.length }
  }

  it('starts the next batch gatherMs after the last one started, with every commit of the meantime in it', async () => {
    const { relay, claims, commit, busyBatch, first } = await startRelay(50)
    try {
      // A commit wakes the idle relay: claimed at once; two more land while that batch is out.
      const t0 = performance.now()
      await busyBatch(2)
      expect(claims.slice(first)).toEqual([{ at: t0, ids: [1] }])
      // Not before gatherMs has passed since the batch started...
      await vi.advanceTimersByTimeAsync(49)
      commit()
      relay.kick()
      await settle()
      expect(claims.length - first).toBe(1)
      // ...then one batch takes all three.
      await vi.advanceTimersByTimeAsync(1)
      expect(claims.slice(first + 1)).toEqual([{ at: t0 + 50, ids: [2, 3, 4] }])
      expect(relay.stats.published).toBe(4)
    } finally {
      await relay.stop()
    }
  })

  it('claims at once after an idle spell, and while batches come back full', async () => {
    const { relay, claims, commit, rows } = await startRelay(1000, 2)
    try {
      // Idle: each commit is claimed without any time passing, however long gatherMs is.
      for (let id = 1; id <= 3; id++) {
        await vi.advanceTimersByTimeAsync(5000)
        const at = performance.now()
        commit()
        relay.kick()
        await settle()
        expect(claims.at(-1)).toEqual({ at, ids: [id] })
        expect(rows).toHaveLength(0)
      }
      // A backlog of five: full batches back to back, the last (short) one too, with no time passing.
      const at = performance.now()
      const from = claims.length
      commit(5)
      relay.kick()
      await settle()
      expect(rows).toHaveLength(0)
      expect(claims.slice(from)).toEqual([
        { at, ids: [4, 5] },
        { at, ids: [6, 7] },
        { at, ids: [8] },
      ])
    } finally {
      await relay.stop()
    }
  })

  it('stops at once while it waits to gather', async () => {
    const { relay, claims, busyBatch } = await startRelay(60_000)
    await busyBatch(1)
    const claimed = claims.length
    // Waiting to gather the second commit: stop() ends the loop without that wait, and without a claim.
    let stopped = false
    const stopping = relay.stop().then(() => (stopped = true))
    await settle()
    expect(stopped).toBe(true)
    await stopping
    expect(claims.length).toBe(claimed)
  })

  it('does not wait with gatherMs 0', async () => {
    const { relay, claims, busyBatch, first } = await startRelay(0)
    try {
      await busyBatch(1)
      expect(claims.slice(first).map((c) => c.ids)).toEqual([[1], [2]])
    } finally {
      await relay.stop()
    }
  })
})
