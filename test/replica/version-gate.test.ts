import { describe, expect, it } from 'vitest'
import type { ApplyOp, ApplyResult } from '../../src/replica/apply-op.js'
import { applyGated, gateOf, gateOpenWithoutHistory, hookAction, storedMayBeReplaced, winners } from '../../src/replica/version-gate.js'

const op = (signal: ApplyOp['signal'], revision: number, pk = 1, force = false): ApplyOp => ({ signal, revision, force, pk, pkKey: String(pk), updated: null, values: new Map() })

describe('the version gate', () => {
  it('SAVE only over a lower revision, SYNC unless older, a forced SYNC always; a tombstone at least as new blocks', () => {
    expect(gateOf(op('SAVE', 2), undefined)).toBe('newer')
    expect(gateOf(op('SYNC', 2), undefined)).toBe('notOlder')
    expect(gateOf(op('SYNC', 2, 1, true), { revision: 9 })).toBe('always')
    expect(gateOf(op('SAVE', 2), { revision: 2 })).toBeNull()
    expect(gateOf(op('SAVE', 3), { revision: 2 })).toBe('newer')
    expect([storedMayBeReplaced('newer'), storedMayBeReplaced('notOlder')]).toEqual(['<', '<='])
  })

  it("lets every SAVE and SYNC in where the pk has no row and no tombstone (bulk-load's direct COPY relies on it)", () => {
    for (const revision of [-5, 0, 1, 2 ** 31 - 1])
      for (const [signal, force] of [['SAVE', false], ['SYNC', false], ['SYNC', true]] as const) {
        expect(gateOpenWithoutHistory(op(signal, revision, 1, force))).toBe(true)
        expect(hookAction(op(signal, revision, 1, force), null, undefined)).toBe('create')
      }
  })

  it('row hooks get the same decisions', () => {
    expect(hookAction(op('SAVE', 0), null, undefined)).toBe('create')
    expect(hookAction(op('SAVE', 1), 1, undefined)).toBe('none')
    expect(hookAction(op('SYNC', 1), 1, undefined)).toBe('update')
    expect(hookAction(op('SYNC', 0), 1, undefined)).toBe('none')
    expect(hookAction(op('SAVE', 0), null, { revision: 0 })).toBe('none')
    expect(hookAction(op('DELETE', 2), 2, undefined)).toBe('delete')
    expect(hookAction(op('DELETE', 1), 2, undefined)).toBe('none')
    expect(hookAction(op('DELETE', 1), null, undefined)).toBe('none')
  })

  it('applies the newest op per pk in one call, and in halves down to the failing pk when that call fails', async () => {
    const ops = [op('SAVE', 1, 1), op('SAVE', 3, 1), op('SAVE', 0, 2), op('SAVE', 0, 3)]
    expect(winners(ops).map((o) => `${o.pkKey}@${o.revision}`)).toEqual(['1@3', '2@0', '3@0'])
    const calls: string[][] = []
    const apply = async (batch: ApplyOp[]): Promise<ApplyResult[]> => {
      calls.push(batch.map((o) => o.pkKey))
      if (batch.some((o) => o.pkKey === '2')) throw new Error('bad row 2')
      return batch.map(() => 'applied')
    }
    const results = await applyGated(ops, apply)
    expect(calls).toEqual([['1', '2', '3'], ['1', '2'], ['1'], ['2'], ['3']])
    expect(ops.map((o) => {
      const r = results.get(o)
      return r instanceof Error ? r.message : r
    })).toEqual(['skipped', 'applied', 'bad row 2', 'applied'])
    await expect(applyGated(ops, apply, () => true)).rejects.toThrow('bad row 2')
  })

  it('isolates poison ops among many in a few calls, and applies every other op', async () => {
    for (const seed of [1, 7, 42]) {
      let x = seed
      const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32)
      const n = 200
      const ops = Array.from({ length: n }, (_, i) => op('SAVE', 1, i + 1))
      const poison = new Set(Array.from({ length: 1 + Math.floor(rand() * 3) }, () => String(1 + Math.floor(rand() * n))))
      let calls = 0
      const results = await applyGated(ops, async (batch) => {
        calls++
        const bad = batch.find((o) => poison.has(o.pkKey))
        if (bad) throw new Error(`bad row ${bad.pkKey}`)
        return batch.map(() => 'applied')
      })
      const failed = ops.filter((o) => results.get(o) instanceof Error).map((o) => o.pkKey)
      expect(new Set(failed), `seed ${seed}`).toEqual(poison)
      expect(ops.filter((o) => results.get(o) === 'applied').length, `seed ${seed}`).toBe(n - poison.size)
      // Each poison op costs at most two calls per halving (2 * 8 for 200 ops), plus the first call.
      expect(calls, `seed ${seed}`).toBeLessThanOrEqual(1 + 2 * poison.size * Math.ceil(Math.log2(n)))
    }
  })
})
