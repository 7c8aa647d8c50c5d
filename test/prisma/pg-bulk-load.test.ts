/**
 * bulk-load's row encoder for PostgreSQL COPY: the fast path (JSON text straight to COPY text) takes
 * the common forms and agrees with the parsed path (the replica's decoder) on every row it takes; it
 * hands everything else to the parsed path, which words the errors.
 */
import { describe, expect, it } from 'vitest'
import { parseDumpLine } from '../../src/core/dump-format.js'
import { PgRowEncoder } from '../../src/prisma/pg-bulk-load.js'
import type { TableTarget, TargetColumn } from '../../src/replica/apply-op.js'
import { fixtureText } from '../../integration/support/fixtures.js'

const col = (column: string, kind: TargetColumn['kind'], required = false): TargetColumn => ({ column, field: column, kind, required })
const cols = [
  col('id', 'Int', true),
  col('name', 'String', true),
  col('birth_date', 'Date'),
  col('rating', 'Int'),
  col('balance', 'Decimal'),
  col('last_seen', 'DateTime'),
  col('is_active', 'Boolean'),
  col('profile', 'Json'),
  col('nickname', 'String'),
  col('external_id', 'String', true),
  col('big', 'BigInt'),
  col('blob', 'Bytes'),
  col('cqrs_revision', 'Int', true),
  col('cqrs_updated', 'DateTime', true),
]
const target: TableTarget = { cqrsId: 'author', table: 'author_ref', pk: cols[0], revision: cols[12], updated: cols[13], byKey: new Map(cols.map((c) => [c.column, c])) }
const keyCol = col('key', 'String', true)
const stringPk: TableTarget = { ...target, pk: keyCol, byKey: new Map([['key', keyCol], ...[...target.byKey].filter(([k]) => k !== 'id')]) }

const parsed = (enc: PgRowEncoder, text: string) => enc.encodeParsed({ line: 2, data: parseDumpLine({ line: 2, text }) })
const base = { name: 'n', external_id: 'e', cqrs_revision: 3, cqrs_updated: '2026-11-23 03:36:52.912+00:00' }
const line = (o: Record<string, unknown>) => JSON.stringify({ id: 1, ...base, ...o })

describe('PgRowEncoder', () => {
  const enc = new PgRowEncoder(target)

  it('writes our dump lines as COPY text without parsing them, as the parsed path does', () => {
    const lines = [
      line({}),
      line({ birth_date: '1950-01-02', rating: -7, balance: 12.25, last_seen: '2026-11-23T03:36:52.001Z', is_active: false, profile: { a: [1, 'x'], b: null }, nickname: null, big: 1 }).replace('"big":1', '"big":9007199254740993'),
      line({ name: 'tab\there "q" back\\slash\nnl é😀', profile: 'a "string"' }),
      line({ id: 0, cqrs_revision: 0, profile: [] }),
    ]
    for (const l of lines) {
      const fast = enc.encodeFast(l)
      expect(fast, l).not.toBeNull()
      expect(fast).toEqual(parsed(enc, l))
    }
    expect(enc.encodeFast(lines[2])!.text).toBe('1\ttab\\there "q" back\\\\slash\\nnl é😀\t"a \\\\"string\\\\""\te\t2026-11-23 03:36:52.912+00:00\t3')
    // Integers beyond 2^53 stay exact: the text is passed on, never read as a JS number.
    expect(enc.encodeFast(lines[1])!.text).toContain('\t9007199254740993\t')
  })

  it("takes django-cqrs's dump lines (author.dump) with the same keys, revisions and shapes", () => {
    const rows = fixtureText('author.dump').trim().split('\n').slice(1)
    for (const l of rows) {
      const fast = enc.encodeFast(l)
      expect(fast, l).not.toBeNull()
      const slow = parsed(enc, l)
      expect({ ...fast, text: undefined }).toEqual({ ...slow, text: undefined })
    }
  })

  it('hands the forms it cannot be sure of to the parsed path', () => {
    const unsure = [
      line({ last_seen: '2026-11-23 05:36:52+02:00' }), // another offset: a timestamp column would ignore it
      line({ blob: 'AAEC' }), // base64, decoded by the parsed path
      line({ rating: 1.0e3 }).replace('1000', '1e3'),
      line({ rating: '7' }),
      line({ cqrs_revision: '3' }),
      '{"id":1,"na\\u006de":"n","external_id":"e"}',
      line({ name: null }),
      JSON.stringify({ id: 1, name: 'n', cqrs_revision: 0 }), // external_id missing
      line({}).slice(0, -1), // cut short
      `${line({})} x`,
      line({ id: 1.5 }),
    ]
    for (const l of unsure) expect(enc.encodeFast(l), l).toBeNull()
    expect(enc.encode({ line: 9, text: unsure[0] }).text).toContain('\t2026-11-23T03:36:52Z\t')
    expect(enc.encode({ line: 9, text: unsure[1] }).text).toContain('\t\\\\x000102\t')
    expect(() => enc.encode({ line: 9, text: unsure[3] })).toThrow(/line 9: field 'rating' must be an integer; got "7"/)
    expect(() => enc.encode({ line: 9, text: unsure[6] })).toThrow(/line 9: 'name' is null in 'author' pk 1, but author_ref.name is NOT NULL/)
    expect(() => enc.encode({ line: 9, text: unsure[7] })).toThrow(/line 9: instance_data of 'author' pk 1 lacks 'external_id'/)
    expect(() => enc.encode({ line: 9, text: unsure[8] })).toThrow(/line 9: not valid JSON/)
  })

  it('keys a string pk as tombstones do, escapes and all, and follows keys in any order', () => {
    const s = new PgRowEncoder(stringPk)
    const l = JSON.stringify({ ...base, key: 'a\tb\\c' })
    expect(s.encodeFast(l)).toEqual(parsed(s, l))
    expect(s.encodeFast(l)!.pkKey).toBe('a\tb\\c')
    const reordered = JSON.stringify({ cqrs_updated: base.cqrs_updated, external_id: 'e', key: 'k', name: 'n' })
    expect(s.encodeFast(reordered)).toEqual(parsed(s, reordered))
    expect(s.encodeFast(reordered)!.revision).toBe(0)
  })
})
