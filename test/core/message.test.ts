import { describe, expect, it } from 'vitest'
import { decodeValue, encodeValue } from '../../src/core/codec.js'
import type { ExactDateTime } from '../../src/core/datetime.js'
import { MessageValidationError } from '../../src/core/errors.js'
import { parseJson, RawJson, stringifyJson } from '../../src/core/json.js'
import { decodeMessage, encodeMessage } from '../../src/core/message.js'

const body = (o: Record<string, unknown>) => JSON.stringify({ signal_type: 'SAVE', cqrs_id: 'a', instance_data: { id: 1, cqrs_revision: 0 }, instance_pk: 1, ...o })

describe('decodeMessage', () => {
  it('accepts extra keys and fills missing optional ones', () => {
    const m = decodeMessage(JSON.stringify({ signal_type: 'DELETE', cqrs_id: 'a', instance_data: { id: 7, cqrs_revision: 3 }, extra: true }))
    expect(m).toEqual({ signal_type: 'DELETE', cqrs_id: 'a', instance_data: { id: 7, cqrs_revision: 3 }, previous_data: null, instance_pk: 7, correlation_id: null, retries: 0, expires: null, meta: null })
  })

  it.each([
    ['not json', '{', /not valid JSON/],
    ['an array', '[1]', /must be a JSON object, got an array/],
    ['a bad signal', body({ signal_type: 'UPSERT' }), /signal_type must be one of SAVE, DELETE, SYNC; got "UPSERT"/],
    ['no cqrs_id', body({ cqrs_id: '' }), /cqrs_id must be a non-empty string/],
    ['a negative revision', body({ instance_data: { id: 1, cqrs_revision: -1 } }), /cqrs_revision must be a non-negative integer; got -1/],
    ['a bad expires', body({ expires: 'tomorrow' }), /expires must be an ISO 8601 datetime or null; got "tomorrow"/],
    ['bad retries', body({ retries: 'x' }), /retries must be a non-negative integer/],
  ])('rejects %s with a message that says what is wrong', (_, text, pattern) => {
    expect(() => decodeMessage(text)).toThrow(MessageValidationError)
    expect(() => decodeMessage(text)).toThrow(pattern)
  })

  it('keeps integers beyond 2^53 exact both ways', () => {
    const big = 2n ** 63n - 1n
    const text = `{"signal_type":"SAVE","cqrs_id":"l","instance_data":{"id":${big},"amount":-${big},"cqrs_revision":0},"instance_pk":${big}}`
    const m = decodeMessage(text)
    expect(m.instance_pk).toBe(big)
    expect(m.instance_data.amount).toBe(-big)
    expect(encodeMessage(m)).toContain(`"instance_pk":${big}`)
  })

  it('writes the nine keys in django-cqrs order', () => {
    const m = decodeMessage(body({}))
    expect(Object.keys(JSON.parse(encodeMessage(m)))).toEqual(['signal_type', 'cqrs_id', 'instance_data', 'previous_data', 'instance_pk', 'correlation_id', 'retries', 'expires', 'meta'])
  })
})

describe('codec', () => {
  it("formats datetimes as django-cqrs does, and reads both forms", () => {
    expect(encodeValue('DateTime', new Date('2026-11-23T03:36:52.912Z'))).toBe('2026-11-23 03:36:52.912000+00:00')
    expect(encodeValue('DateTime', new Date('2026-11-23T03:36:52Z'))).toBe('2026-11-23 03:36:52+00:00')
    // The replica keeps every digit the wire gave: an ExactDateTime, not a Date (milliseconds).
    const a = decodeValue('DateTime', '2026-11-23 03:36:52.912512+00:00', 'x') as ExactDateTime
    const b = decodeValue('DateTime', '2026-11-23T05:36:52.912+02:00', 'x') as ExactDateTime
    expect(a.toISOString()).toBe('2026-11-23T03:36:52.912512Z')
    expect(b.toSql()).toBe('2026-11-23 03:36:52.912')
    expect(decodeValue('Date', '1951-02-02', 'x')).toBe('1951-02-02')
  })

  it('sends decimals as exact JSON numbers and dates as YYYY-MM-DD', () => {
    const dec = { toFixed: () => '12345678901234567.89' }
    expect(stringifyJson({ d: encodeValue('Decimal', dec), day: encodeValue('Date', new Date('1951-02-02T00:00:00Z')) })).toBe('{"d":12345678901234567.89,"day":"1951-02-02"}')
    expect(stringifyJson([new RawJson('1.50'), 1n, null, 'x'])).toBe('[1.50,1,null,"x"]')
  })

  it('names the field and the value when a value has the wrong type', () => {
    expect(() => decodeValue('Int', 'seven', 'rating')).toThrow(`field 'rating' must be an integer; got "seven"`)
    expect(() => decodeValue('DateTime', 'soon', 'seen')).toThrow(/field 'seen' must be a datetime string/)
    expect(decodeValue('Decimal', 1.02, 'b')).toBe('1.02')
    expect(decodeValue('BigInt', '9007199254740993', 'b')).toBe(9007199254740993n)
  })

  it('parses long numbers losslessly only when needed', () => {
    expect(parseJson('{"a":1.5,"b":"12345678901234567890"}')).toEqual({ a: 1.5, b: '12345678901234567890' })
    expect(parseJson('{"a":12345678901234567890}')).toEqual({ a: 12345678901234567890n })
  })
})
