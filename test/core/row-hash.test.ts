import { describe, expect, it } from 'vitest'
import { formatHashSpec, parseHashSpec, parsePairBatch } from '../../src/core/diff-format.js'
import { parseJson, RawJson } from '../../src/core/json.js'
import { canonicalDecimal, canonicalValue, rowHash, type HashedKeys } from '../../src/core/row-hash.js'
import { hashedKeys } from '../../src/master/diff-master.js'
import type { ModelPlan } from '../../src/master/model-plan.js'

describe('the row hash of diff-master --hash', () => {
  it('reads decimals by value: scale, signs, leading zeros and exponents do not matter', () => {
    for (const [a, b] of [
      ['1.50', '1.5'],
      ['0.00', '0'],
      ['-0.00', '0'],
      ['007.10', '7.1'],
      ['1e-7', '0.0000001'],
      ['1.5E3', '1500'],
      ['-12345678901234567890.120', '-12345678901234567890.12'],
    ])
      expect(canonicalDecimal(a)).toBe(b)
  })

  it("gives the master's wire values and the replica's column text the same form", () => {
    expect(canonicalValue('DateTime', '2026-11-23 03:36:52.912512+00:00')).toBe(canonicalValue('DateTime', '2026-11-23 04:36:52.9125120+01'))
    expect(canonicalValue('DateTime', '2026-11-23 03:36:52+00:00')).toBe(canonicalValue('DateTime', '2026-11-23 03:36:52.000000'))
    expect(canonicalValue('DateTime', '2026-11-23 03:36:52.000001+00:00')).not.toBe(canonicalValue('DateTime', '2026-11-23 03:36:52+00:00'))
    expect(canonicalValue('Decimal', new RawJson('0.10'))).toBe(canonicalValue('Decimal', '0.1'))
    expect(canonicalValue('Boolean', true)).toBe(canonicalValue('Boolean', 't'))
    expect(canonicalValue('Boolean', false)).toBe(canonicalValue('Boolean', '0'))
    expect(canonicalValue('Json', parseJson('{"b": [1.50, {"y": 1, "x": 33.0}], "a": null}'))).toBe(canonicalValue('Json', { a: null, b: [1.5, { x: 33, y: 1 }] }))
    expect(canonicalValue('Json', null)).toBeNull()
  })

  it('changes when any hashed value changes, and only then', () => {
    const keys: HashedKeys = [
      ['name', 'String'],
      ['balance', 'Decimal'],
    ]
    const h = (row: Record<string, unknown>) => rowHash(keys, (k) => row[k])
    expect(h({ name: 'a', balance: '1.50' })).toBe(h({ name: 'a', balance: new RawJson('1.5') }))
    expect(h({ name: 'a', balance: '1.50' })).not.toBe(h({ name: 'b', balance: '1.50' }))
    expect(h({ name: 'a', balance: null })).not.toBe(h({ name: 'a', balance: '0' }))
    expect(h({ name: 'a', balance: '1' })).toMatch(/^[0-9a-f]{16}$/)
  })

  it('the spec line and the hashed items round-trip; a bad spec is named', () => {
    const keys: HashedKeys = [['name', 'String']]
    expect(parseHashSpec({ line: 2, text: formatHashSpec(keys) })).toEqual(keys)
    expect(() => parseHashSpec({ line: 2, text: '{"hash":"md5","keys":[]}' })).toThrow(/line 2: unknown hash "md5"/)
    expect(parsePairBatch({ line: 3, text: '[[1,2,"abc"],[2,3]]' })).toEqual([
      [1, 2, 'abc'],
      [2, 3],
    ])
    expect(() => parsePairBatch({ line: 3, text: '[[1,2,3]]' })).toThrow(/line 3: item 1 must be \[pk, revision\]/)
  })

  it('--hash-keys must name keys the model sends; a serializer model cannot be hashed', () => {
    const plan = { model: 'Author', cqrsId: 'author', wire: [{ field: 'name', key: 'name', kind: 'String' }, { field: 'balance', key: 'balance', kind: 'Decimal' }] } as unknown as ModelPlan
    expect(hashedKeys(plan)).toEqual([['name', 'String'], ['balance', 'Decimal']])
    expect(hashedKeys(plan, ['balance'])).toEqual([['balance', 'Decimal']])
    expect(() => hashedKeys(plan, ['name', 'nope'])).toThrow(/--hash-keys names 'nope', which author does not send; its keys are name, balance/)
    expect(() => hashedKeys({ ...plan, serializer: () => ({}) })).toThrow(/serializer/)
  })
})
