/**
 * The PostgreSQL claim's floor (claim-floor.ts): it rises to what a claim took only once the
 * transactions open during that claim have ended and a later claim has seen up to there; a failure drops it, and a claim started before a failure cannot raise it; a claim
 * from the start of the outbox still comes at least every fullScanMs, and a slow one pushes the next
 * one further off. Xids and times are given, so each case is exact.
 */
import { describe, expect, it } from 'vitest'
import { ClaimFloor } from '../../src/prisma/claim-floor.js'

const ids = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => BigInt(from + i))

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
    const a = f.start(0)
    f.done(a.ticket, 1n, 10n, ids(1, 3), true, 1)
    const b = f.start(2)
    f.done(b.ticket, 10n, 20n, ids(4, 9), true, 3) // resolves 3, starts reach 9
    expect(f.start(4).floor).toBe(3n)
    const c = f.start(4)
    expect(c.floor).toBe(3n)
    f.done(c.ticket, 20n, 30n, ids(10, 12), true, 5) // from 3, below which nothing is left: resolves 9
    expect(f.start(6).floor).toBe(9n)
  })

  it('a full batch resolves a reach only if its highest id reaches it', () => {
    const f = fresh()
    const a = f.start(0)
    f.done(a.ticket, 1n, 10n, ids(1, 50), true, 1)
    const b = f.start(2)
    f.done(b.ticket, 10n, 20n, ids(3, 40), false, 3) // saw up to 40 only: rows 41..50 may be back
    expect(f.start(4).floor).toBeNull()
    const c = f.start(4)
    f.done(c.ticket, 10n, 20n, ids(3, 60), false, 5)
    expect(f.start(6).floor).toBe(50n)
  })

  it('a failure drops the floor, and a claim that started before it cannot raise it again', () => {
    const f = fresh()
    let t = f.start(0)
    f.done(t.ticket, 1n, 10n, ids(1, 5), true, 1)
    t = f.start(2)
    f.done(t.ticket, 10n, 20n, ids(6, 9), true, 3)
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
    let t = f.start(0)
    f.done(t.ticket, 1n, 10n, ids(1, 5), true, 1)
    t = f.start(2)
    f.done(t.ticket, 10n, 20n, ids(6, 9), true, 3)
    // The last full scan ended at 3 and took 1: the next is due at 1003.
    expect(f.start(1002).floor).toBe(5n)
    t = f.start(1003)
    expect(t.floor).toBeNull()
    // This one took 100 ms: the next no sooner than 20 times that after its end.
    f.done(t.ticket, 20n, 30n, [], true, 1103)
    expect(f.start(3102).floor).toBe(9n)
    expect(f.start(3103).floor).toBeNull()
  })
})
