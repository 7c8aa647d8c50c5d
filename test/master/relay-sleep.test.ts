import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import type { OutboxEvents, OutboxRow, OutboxSleeper, OutboxStore } from '../../src/master/outbox-store.js'
import { Relay } from '../../src/master/relay.js'
import { runtime } from '../../src/transport/runtime-transport.js'

/**
 * A relay that commits wake while it sleeps (PostgreSQL's wake-up trigger; the store hands it a
 * sleeper), on fake timers and an outbox in memory: it arms only once a look finds nothing, looks
 * once more after arming (for commits that were in flight), disarms as soon as it is woken, and after
 * a batch that found rows looks again (gathered) instead of sleeping; so does a relay without a
 * sleeper that commits do not kick (`cqrs relay` polling). The integration test
 * (integration/master/relay-wake.test.ts) runs the real trigger and lock.
 */
describe('a relay that commits wake while it sleeps', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  const transport = runtime({ name: 'recording', connect: async () => {}, close: async () => {}, consume: async () => ({ stop: async () => {} }), publish: async () => {} })
  const settle = () => vi.advanceTimersByTimeAsync(0)

  /** An outbox in memory whose watch hands the relay a sleeper; `log` records claims, arms and disarms in order. */
  async function setUp(opts: { armResult?: boolean } = {}) {
    const rows: OutboxRow[] = []
    const log: string[] = []
    let nextId = 1
    let events: OutboxEvents | null = null
    /** Runs inside the next arm, before it resolves: a commit that was in flight while the relay went to sleep. */
    let duringArm: (() => void) | null = null
    const commit = (n = 1) => {
      for (let i = 0; i < n; i++) rows.push({ id: nextId++, cqrsId: 'account', routingKey: 'account', format: 0, body: '{}' })
    }
    let armed = false
    const sleeper: OutboxSleeper = {
      get armed() {
        return armed
      },
      async arm() {
        log.push('arm')
        duringArm?.()
        duringArm = null
        armed = opts.armResult ?? true
        return armed
      },
      disarm() {
        if (!armed) return
        armed = false
        log.push('disarm')
      },
    }
    const store: OutboxStore = {
      async claim(limit, publish) {
        const batch = rows.splice(0, limit)
        log.push(`claim [${batch.map((r) => r.id).join(',')}]`)
        if (batch.length) await publish(batch)
        return batch.length
      },
      async backlog() {
        return { count: rows.length, oldestAt: null }
      },
      async watch(e) {
        events = e
        return async () => {}
      },
    }
    const relay = new Relay({ store, transport, batchSize: 100, pollIntervalMs: 60_000, gatherMs: 50, logger: silentLogger })
    relay.start()
    await settle()
    /** The listener leads: the relay gets its sleeper. */
    const lead = async () => {
      events!.sleeper!(sleeper)
      await settle()
    }
    /** A commit's notification (only an armed relay gets one). */
    const notify = async () => {
      events!.wake()
      await settle()
    }
    const take = () => log.splice(0)
    return { relay, log, take, commit, lead, notify, inArm: (fn: () => void) => (duringArm = fn), dropSleeper: () => events!.sleeper!(null) }
  }

  it('arms only once a look finds nothing, looks once more, and disarms as soon as a commit wakes it', async () => {
    const { relay, take, commit, lead, notify } = await setUp()
    try {
      take()
      await lead()
      expect(take(), 'given a sleeper: a look, nothing there, arm, one more look, sleep').toEqual(['claim []', 'arm', 'claim []'])
      commit()
      await notify()
      // Woken: disarmed before the claim, so that commits do not notify while it works. The batch
      // found a row: it looks again once gathered, and only then, finding nothing, arms and sleeps.
      expect(take()).toEqual(['disarm', 'claim [1]'])
      await vi.advanceTimersByTimeAsync(50)
      expect(take()).toEqual(['claim []', 'arm', 'claim []'])
      // Asleep: nothing happens until the next commit or the poll.
      await vi.advanceTimersByTimeAsync(30_000)
      expect(take()).toEqual([])
      expect(relay.wokenByCommits).toBe(true)
    } finally {
      await relay.stop()
    }
  })

  it("finds in its look after arming a commit that was in flight while it armed (no notification for it)", async () => {
    const { relay, take, commit, lead, inArm } = await setUp()
    try {
      take()
      inArm(() => commit())
      await lead()
      // It found a row: it disarms and looks again (gathered), then arms and sleeps.
      expect(take()).toEqual(['claim []', 'arm', 'claim [1]', 'disarm'])
      await vi.advanceTimersByTimeAsync(50)
      expect(take()).toEqual(['claim []', 'arm', 'claim []'])
      expect(relay.stats.published).toBe(1)
    } finally {
      await relay.stop()
    }
  })

  it('without a sleeper (no trigger, MySQL, SQLite) it looks again after a batch that found rows, then after 10, 20, 40 ms... up to its poll interval', async () => {
    const { relay, take, commit } = await setUp()
    try {
      // Idle since it started: by now it looks once a poll interval.
      await vi.advanceTimersByTimeAsync(300_000)
      take()
      // Nothing tells it of commits: its poll finds the first.
      commit()
      await vi.advanceTimersToNextTimerAsync()
      expect(take()).toEqual(['claim [1]'])
      // Two more commit meanwhile: gathered, they leave without waiting for the next poll.
      commit(2)
      await vi.advanceTimersByTimeAsync(50)
      expect(take()).toEqual(['claim [2,3]'])
      await vi.advanceTimersByTimeAsync(50)
      expect(take(), 'a look finds nothing').toEqual(['claim []'])
      // Traffic paused: it looks again 10 ms later, then 20, then 40...
      for (const ms of [10, 20, 40]) {
        await vi.advanceTimersByTimeAsync(ms - 1)
        expect(take()).toEqual([])
        await vi.advanceTimersByTimeAsync(1)
        expect(take(), `${ms} ms after the look before`).toEqual(['claim []'])
      }
      // ...so a commit in the pause leaves with the next look, not with the poll.
      commit()
      await vi.advanceTimersByTimeAsync(80)
      expect(take()).toEqual(['claim [4]'])
      // Back to one look a poll interval, in a dozen doublings.
      await vi.advanceTimersByTimeAsync(300_000)
      expect(take().length).toBeLessThanOrEqual(1 + 13 + 4)
      await vi.advanceTimersByTimeAsync(60_000)
      expect(take()).toEqual(['claim []'])
    } finally {
      await relay.stop()
    }
  })

  it('polls when it cannot arm, and without a sleeper', async () => {
    const { relay, take, lead, dropSleeper } = await setUp({ armResult: false })
    try {
      take()
      await lead()
      expect(take(), 'not armed: no second look').toEqual(['claim []', 'arm'])
      // It polls as a relay that nothing wakes, trying to arm at each look.
      await vi.advanceTimersByTimeAsync(60_000)
      const looks = take()
      expect(looks.length).toBeGreaterThan(2)
      expect(new Set(looks)).toEqual(new Set(['claim []', 'arm']))
      dropSleeper()
      await settle()
      expect(take(), 'no longer the one commits wake: a look').toEqual(['claim []'])
      expect(relay.wokenByCommits).toBe(false)
      await vi.advanceTimersByTimeAsync(60_000)
      expect(new Set(take()), 'then its polls, no arming').toEqual(new Set(['claim []']))
    } finally {
      await relay.stop()
    }
  })
})
