import { describe, expect, it } from 'vitest'
import { ExactDateTime } from '../../src/core/datetime.js'
import { parseJson, RawJson, stringifyJson } from '../../src/core/json.js'
import { rng } from '../../integration/support/chaos.js'

describe('parseJson keeps every number as written', () => {
  it.each([
    '{"a":1234567890.12345678}',
    '{"profile":{"score":33.0,"tiny":1e-7,"neg":-0,"big":123456789012345678901234567890}}',
    '[9999999999.99999999,0.1,12,-5,1.5,"52.912",{"k":[1.10,2]}]',
  ])('%s round-trips byte for byte', (text) => {
    expect(stringifyJson(parseJson(text))).toBe(text)
  })

  it('reads plain numbers as numbers (the fast path) and the rest as bigint or RawJson', () => {
    expect(parseJson('{"a":1,"b":9.99,"c":"03:36:52.912"}')).toEqual({ a: 1, b: 9.99, c: '03:36:52.912' })
    expect(parseJson('[33.0,9007199254740993]')).toEqual([new RawJson('33.0'), 9007199254740993n])
  })

  // Generated plain values (no bigint, RawJson or bytes): written exactly as JSON.stringify writes them,
  // key order, escapes, undefined members and array holes included.
  it.each([1, 2, 3])('writes generated plain values as JSON.stringify does (seed %i)', (seed) => {
    const random = rng(seed)
    const pick = <T,>(xs: T[]) => xs[Math.floor(random() * xs.length)]
    const text = () => Array.from({ length: Math.floor(random() * 6) }, () => pick(['a', 'é', '"', '\\', '\n', '\u0000', '\u2028', '🎉', '1', ' ', '\ud800', '__proto__x'])).join('')
    const value = (depth: number): unknown => {
      const kind = Math.floor(random() * (depth > 3 ? 5 : 8))
      if (kind === 0) return null
      if (kind === 1) return pick([0, -0, 1, -1.5, 1e21, 1e-7, 2 ** 53, Number.MAX_VALUE, NaN, Infinity, 0.1 + 0.2])
      if (kind === 2) return text()
      if (kind === 3) return random() < 0.5
      if (kind === 4) return random() < 0.5 ? undefined : new Date(Math.floor(random() * 4e12))
      if (kind === 5) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1))
      const o: Record<string, unknown> = {}
      for (let i = Math.floor(random() * 5); i > 0; i--) o[pick([text(), String(Math.floor(random() * 20)), 'id', 'name'])] = value(depth + 1)
      return o
    }
    for (let i = 0; i < 5_000; i++) {
      const v = value(0)
      const want = v === undefined ? 'null' : JSON.stringify(v)
      if (stringifyJson(v) !== want) expect.fail(`seed ${seed}: ${want} written as ${stringifyJson(v)}`)
    }
  })

  // Generated numbers at the edges of the fast path (15 characters, 1e-6, trailing zeros, exponents,
  // 2^53): each must come back as written, and as a plain number exactly when JSON.parse keeps it.
  it.each([1, 2, 3])('keeps generated numbers as written (seed %i)', (seed) => {
    const random = rng(seed)
    const digits = (n: number, first = '0123456789') => Array.from({ length: n }, (_, i) => (i === 0 ? first : '0123456789')[Math.floor(random() * (i === 0 ? first.length : 10))]).join('')
    const numbers = Array.from({ length: 20_000 }, () => {
      const sign = random() < 0.3 ? '-' : ''
      const int = random() < 0.4 ? '0' : digits(1 + Math.floor(random() * 18), '123456789')
      const fraction = random() < 0.25 ? '' : `.${'0'.repeat(random() < 0.5 ? Math.floor(random() * 9) : 0)}${digits(1 + Math.floor(random() * 10))}${random() < 0.2 ? '0' : ''}`
      const exponent = random() < 0.1 ? `e${random() < 0.5 ? '-' : ''}${Math.floor(random() * 30)}` : ''
      return `${sign}${int}${fraction}${exponent}`
    })
    // One text per number: a text with any number JSON.parse would change is read wholly by the slow path.
    for (const t of numbers) {
      const text = `{"v":${t},"s":"1.50"}`
      const parsed = parseJson(text) as { v: unknown }
      const plain = String(Number(t)) === t && Number.isSafeInteger(Math.trunc(Number(t)))
      if (stringifyJson(parsed) !== text || (typeof parsed.v === 'number') !== plain) expect.fail(`seed ${seed}: ${t} read as ${String(parsed.v)} (${typeof parsed.v})`)
    }
  })

  it('refuses to be written by JSON.stringify, which would lose the digits', () => {
    expect(() => JSON.stringify(parseJson('[1.50]'))).toThrow(/stringifyJson/)
  })
})

describe('ExactDateTime keeps microseconds', () => {
  it.each([
    ['2026-12-03 07:52:03.955757+00:00', '2026-12-03 07:52:03.955757+00:00', '2026-12-03 07:52:03.955757'],
    ['2026-12-03T07:52:03.955757Z', '2026-12-03 07:52:03.955757+00:00', '2026-12-03 07:52:03.955757'],
    ['2026-12-03T13:22:03.1+05:30', '2026-12-03 07:52:03.100000+00:00', '2026-12-03 07:52:03.1'],
    ['2026-12-03 07:52:03+00', '2026-12-03 07:52:03+00:00', '2026-12-03 07:52:03'],
    ['2026-12-03 07:52:03.000000-0100', '2026-12-03 08:52:03+00:00', '2026-12-03 08:52:03'],
    ['0001-01-01 00:00:00.000001', '0001-01-01 00:00:00.000001+00:00', '0001-01-01 00:00:00.000001'],
  ])('%s', (text, wire, sql) => {
    const d = ExactDateTime.parse(text)!
    expect(d.toWire()).toBe(wire)
    expect(d.toSql()).toBe(sql)
    expect(ExactDateTime.parse(d.toWire())!.toWire()).toBe(wire)
  })

  it('refuses what is not a datetime', () => {
    for (const bad of ['2026-02-30 00:00:00', 'yesterday', '2026-12-03', '2026-12-03 7:52:03']) expect(ExactDateTime.parse(bad)).toBeNull()
  })

  it('converts to and from Date at millisecond precision', () => {
    expect(ExactDateTime.fromDate(new Date('2026-12-03T07:52:03.950Z')).toWire()).toBe('2026-12-03 07:52:03.950000+00:00')
    expect(ExactDateTime.parse('2026-12-03 07:52:03.955757+00:00')!.toDate().toISOString()).toBe('2026-12-03T07:52:03.955Z')
  })
})
