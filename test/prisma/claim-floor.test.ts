/**
 * The PostgreSQL claim's floor (claim-floor.ts): it rises to what a claim took only once the
 * transactions open during that claim have ended and a later claim has seen up to there; a failure drops it, and a claim started before a failure cannot raise it; a claim
 * from the start of the outbox still comes at least every fullScanMs, and a slow one pushes the next
 * one further off. Xids and times are given, so each case is exact.
 */
import { describe, expect, it } from 'vitest'
import { ClaimFloor } from '../../src/prisma/claim-floor.js'

const ids = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => BigInt(from + i))

/** One claim started at `at` and committed 1 ms later: the oldest running xid before it, the next xid after it, what it took. */
function claim(f: ClaimFloor, at: number, xminBefore: bigint, xmaxAfter: bigint, taken: bigint[], complete = true): void {
  f.done(f.start(at).ticket, xminBefore, xmaxAfter, taken, complete, at + 1)
}

describe('ClaimFloor', () => {
  /** A floor whose full scan is not due for a long while after the first claim. */
  const fresh = () => new ClaimFloor(60_000)

  it('rises once the transactions open during a claim have ended, and a later claim saw that far', () => {
    const f = fresh()
    const a = f.start(0)
    expect(a.floor).toBeNull()
    // Took 1..5; xid 100 was the next one just after, so xids below it may hold lower ids still.
    f.done(a.ticket, 90n, 100n, ids(1, 5), true, 1)
    const b = f.start(2)
    expect(b.floor).toBeNull() // not yet: nothing proved
    // The oldest running xid is 99: a transaction from that claim's time is still open.
    f.done(b.ticket, 99n, 104n, ids(6, 7), true, 3)
    expect(f.start(4).floor).toBeNull()
    // Now all of them ended, and this complete claim (from the start) saw whatever they committed.
    const c = f.start(5)
    f.done(c.ticket, 100n, 110n, [], true, 6)
    expect(f.start(7).floor).toBe(5n)
  })

  it('takes the next claim that has ids as the next reach, and rises again', () => {
    const f = fresh()
    claim(f, 0, 1n, 10n, ids(1, 3))
    claim(f, 2, 10n, 20n, ids(4, 9)) // resolves 3, starts reach 9
    expect(f.start(4).floor).toBe(3n)
    claim(f, 4, 20n, 30n, ids(10, 12)) // from 3, below which nothing is left: resolves 9
    expect(f.start(6).floor).toBe(9n)
  })

  it('a full batch resolves a reach only if its highest id reaches it', () => {
    const f = fresh()
    claim(f, 0, 1n, 10n, ids(1, 50))
    claim(f, 2, 10n, 20n, ids(3, 40), false) // saw up to 40 only: rows 41..50 may be back
    expect(f.start(4).floor).toBeNull()
    claim(f, 4, 10n, 20n, ids(3, 60), false)
    expect(f.start(6).floor).toBe(50n)
  })

  it('a failure drops the floor, and a claim that started before it cannot raise it again', () => {
    const f = fresh()
    claim(f, 0, 1n, 10n, ids(1, 5))
    claim(f, 2, 10n, 20n, ids(6, 9))
    expect(f.start(4).floor).toBe(5n)
    const before = f.start(4) // in flight while another batch fails
    f.reset()
    expect(f.start(5).floor).toBeNull()
    f.done(before.ticket, 30n, 40n, ids(10, 12), true, 6)
    const after = f.start(7)
    f.done(after.ticket, 40n, 50n, [], true, 8)
    expect(f.start(9).floor).toBeNull()
  })

  it('claims from the start at least every fullScanMs, and a slow one pushes the next one off', () => {
    const f = new ClaimFloor(1000)
    claim(f, 0, 1n, 10n, ids(1, 5))
    claim(f, 2, 10n, 20n, ids(6, 9))
    // The last full scan ended at 3 and took 1: the next is due at 1003.
    expect(f.start(1002).floor).toBe(5n)
    const t = f.start(1003)
    expect(t.floor).toBeNull()
    // This one took 100 ms: the next no sooner than 20 times that after its end.
    f.done(t.ticket, 20n, 30n, [], true, 1103)
    expect(f.start(3102).floor).toBe(9n)
    expect(f.start(3103).floor).toBeNull()
  })
})
