import { describe, expect, it } from 'vitest'
import { ExactDateTime } from '../../src/core/datetime.js'
import { parseJson, RawJson, stringifyJson } from '../../src/core/json.js'

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
