import { describe, expect, it } from 'vitest'
import { decodeValue } from '../../src/core/codec.js'
import { ExactDateTime } from '../../src/core/datetime.js'
import { parseJson, stringifyJson } from '../../src/core/json.js'
import { decodeMessage } from '../../src/core/message.js'
import type { TableTarget, TargetColumn } from '../../src/replica/apply-op.js'
import { decodeColumn, JSON_NULL, toApplyOp } from '../../src/replica/decode-op.js'

const col = (column: string, kind: TargetColumn['kind'], required = false): TargetColumn => ({ column, field: column, kind, required })

describe('decoding wire values for the replica', () => {
  it('keeps every digit: decimals, datetimes, big integers, JSON numbers', () => {
    const data = parseJson('{"d":9999999999.99999999,"z":-0.0,"t":"2026-12-03 07:52:03.955757+00:00","b":9223372036854775807,"j":{"score":33.0,"tiny":1e-7}}') as Record<string, unknown>
    expect(decodeValue('Decimal', data.d, 'd')).toBe('9999999999.99999999')
    expect(decodeValue('Decimal', data.z, 'z')).toBe('-0.0')
    expect((decodeValue('DateTime', data.t, 't') as ExactDateTime).toSql()).toBe('2026-12-03 07:52:03.955757')
    expect(decodeValue('BigInt', data.b, 'b')).toBe(9223372036854775807n)
    expect(stringifyJson(decodeValue('Json', data.j, 'j'))).toBe('{"score":33.0,"tiny":1e-7}')
    expect(decodeValue('Date', '0001-01-01', 'day')).toBe('0001-01-01')
    expect(decodeValue('Date', '2026-12-03T07:52:03Z', 'day')).toBe('2026-12-03')
    expect(decodeValue('Bytes', 'AAEC', 'b')).toEqual(Buffer.from([0, 1, 2]))
  })

  it('refuses what is not a value of the column, naming the field and the value', () => {
    expect(() => decodeValue('Decimal', 'Infinity', 'price')).toThrow(`field 'price' must be a decimal number; got "Infinity"`)
    expect(() => decodeValue('Date', '2026-02-30', 'day')).toThrow(`field 'day' must be a date string ("YYYY-MM-DD"); got "2026-02-30"`)
    expect(() => decodeValue('Bytes', 'not base64!', 'b')).toThrow(/field 'b' must be a base64 string/)
  })

  it('JSON null: SQL NULL in a nullable Json column, JSON null in a NOT NULL one', () => {
    expect(decodeColumn(col('doc', 'Json', true), null, 'doc')).toBe(JSON_NULL)
    expect(decodeColumn(col('doc', 'Json'), null, 'doc')).toBeNull()
    expect(decodeColumn(col('n', 'Int', true), null, 'n')).toBeNull()
  })

  it('a message becomes an op with its cqrs_updated to the microsecond', () => {
    const pk = col('id', 'Int', true)
    const rev = col('cqrs_revision', 'Int', true)
    const upd = col('cqrs_updated', 'DateTime', true)
    const price = col('price', 'Decimal', true)
    const target: TableTarget = { cqrsId: 'book', table: 'book_ref', pk, revision: rev, updated: upd, byKey: new Map([['id', pk], ['price', price], ['cqrs_revision', rev], ['cqrs_updated', upd]]) }
    const m = decodeMessage('{"signal_type":"SAVE","cqrs_id":"book","instance_data":{"id":1,"price":11.49,"cqrs_revision":1,"cqrs_updated":"2026-11-23 03:37:13.479103+00:00"},"instance_pk":1}')
    const op = toApplyOp(target, m)
    expect(op.updated?.toWire()).toBe('2026-11-23 03:37:13.479103+00:00')
    expect(op.values.get('price')).toBe('11.49')
  })
})
