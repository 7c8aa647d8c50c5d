/**
 * bulk-load's row encoder for PostgreSQL COPY: the fast path (JSON text straight to COPY text) takes
 * the common forms and agrees with the parsed path (the replica's decoder) on every row it takes; it
 * hands everything else to the parsed path, which words the errors.
 */
import { describe, expect, it } from 'vitest'
import { ByteLine, parseDumpLine } from '../../src/core/dump-format.js'
import { CopyBatch, PgRowEncoder } from '../../src/prisma/pg-bulk-load.js'
import type { TableTarget, TargetColumn } from '../../src/replica/apply-op.js'
import { fixtureText } from '../../integration/support/fixtures.js'
import { rng } from '../../integration/support/chaos.js'

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

/**
 * Encode a line as bulk-load reads it (its bytes, in a chunk between other lines, so a read past its
 * end would show) and give its COPY text.
 */
function encodeText(enc: PgRowEncoder, lineNo: number, text: string): { pkKey: string; revision: number; shape: string; text: string } {
  const before = Buffer.from('{"id":1,"name":"x"}\n')
  const chunk = Buffer.concat([before, Buffer.from(text), Buffer.from('\n{"id":2,"name":"y"}\n')])
  const batch = new CopyBatch()
  const r = enc.encode(new ByteLine(lineNo, chunk, before.length, chunk.length - 21), batch)
  const bytes = batch.of(r.shape).bytes()
  expect(bytes.toString('utf8', r.end), 'one line per row').toBe('\n')
  return { pkKey: r.pkKey, revision: r.revision, shape: r.shape, text: batch.text(r) }
}

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
    expect(encodeText(enc, 9, unsure[0]).text).toContain('\t2026-11-23T03:36:52Z\t')
    expect(encodeText(enc, 9, unsure[1]).text).toContain('\t\\\\x000102\t')
    expect(() => encodeText(enc, 9, unsure[3])).toThrow(/line 9: field 'rating' must be an integer; got "7"/)
    expect(() => encodeText(enc, 9, unsure[6])).toThrow(/line 9: 'name' is null in 'author' pk 1, but author_ref.name is NOT NULL/)
    expect(() => encodeText(enc, 9, unsure[7])).toThrow(/line 9: instance_data of 'author' pk 1 lacks 'external_id'/)
    expect(() => encodeText(enc, 9, unsure[8])).toThrow(/line 9: not valid JSON/)
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

  it('leaves bytes that are not UTF-8 to the fast path, which reads them as a decoder does (U+FFFD)', () => {
    const enc = new PgRowEncoder(target)
    encodeText(enc, 2, line({})) // the layout learned
    const bytes = Buffer.from(line({ name: 'a\u00ffb' }), 'latin1') // a lone 0xff byte inside the name
    const chunk = Buffer.concat([bytes, Buffer.from('\n')])
    const batch = new CopyBatch()
    const r = enc.encode(new ByteLine(3, chunk, 0, bytes.length), batch)
    expect(batch.text(r)).toBe(new PgRowEncoder(target).encodeFast(chunk.toString('utf8', 0, bytes.length))!.text)
    expect(batch.text(r)).toContain('\ta\ufffdb\t')
    // Valid multi-byte characters stay on the hot path, byte for byte.
    const r2 = enc.encode(new ByteLine(4, Buffer.from(`${line({ name: 'Åsa 日本 😀' })}\n`), 0, Buffer.byteLength(line({ name: 'Åsa 日本 😀' }))), batch)
    expect(r2.shape.startsWith('L')).toBe(true)
    expect(batch.text(r2)).toContain('\tÅsa 日本 😀\t')
  })

  it('reads rows laid out as the last one (the hot path) as the fast path does, value for value (generated, seeded)', () => {
    const seed = Number(process.env.CQRS_SEED ?? Date.now() % 1_000_000)
    const note = `seed ${seed} (repeat with CQRS_SEED=${seed})`
    const rnd = rng(seed)
    const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]
    // Raw JSON texts per kind: the forms the hot path takes and, mixed in, forms it must leave to the fast path.
    const ints = ['0', '-0', '7', '-7', '123456789012345', '-123456789012345', '1234567890123456', '007', '1.0', '1e3', '-', 'null', '"7"', 'true']
    const numbers = ['0', '-0', '12.5', '33.0', '1e-7', '-1.5E+10', '.5', '1.', '01', '9999999999999999999999.999999999999', `1.${'5'.repeat(300)}`, 'null', '"1"', '1e']
    const datetimes = ['"2026-11-23 03:36:52.912512+00:00"', '"9999-12-31 23:59:59.999999+00:00"', '"0001-01-01T00:00:00Z"', '"2026-11-23T03:36:52Z"', '"2026-11-23 03:36:52+00:00"', '"2026-11-23 03:36:52.1234567+00:00"', '"2026-11-23 05:36:52+02:00"', '"2026-11-23 03:36:52.+00:00"', '"2026-11-23"', '"x"', 'null', '1']
    const dates = ['"1950-01-02"', '"0001-01-01"', '"1950-1-2"', '"1950-01-02T00:00:00Z"', 'null', '19500102']
    const strings = ['"n"', '""', '"Ünïcødé 日本 😀"', '"a,b}c{d]e["', '"quote\\"d"', '"tab\\t"', '"\\u00e9"', '"raw\ttab"', `"${'long '.repeat(80)}"`, 'null', '7', 'true']
    const jsons = ['{"a":[1,"x",{"b":null}],"c":"}]"}', `{"long":[${'"é",'.repeat(100)}1]}`, '{"a":\t1}', '[]', '{}', '"a string"', '42', '-1.5e-7', 'true', 'false', 'null', '{"a":"\\"q"}', '{"a":1', '[1,2]]', 'nul']
    const bools = ['true', 'false', 'null', '1', '"true"', 'tru']
    const extra = ['1', '"x"', '{"deep":[1,{"x":"y"}]}', 'null', 'true', '01', '[1', '"a\\"b"']
    const valueOf: Record<string, string[]> = { id: ints, name: strings, birth_date: dates, rating: ints, balance: numbers, last_seen: datetimes, is_active: bools, profile: jsons, nickname: strings, external_id: strings, big: ints.concat(['9007199254740993', '-92233720368547758070']), cqrs_revision: ints, cqrs_updated: datetimes, extra }
    const keys = Object.keys(valueOf)
    const byColumn = (enc: PgRowEncoder, r: { shape: string; text: string; pkKey: string; revision: number }) => {
      const values = r.text.split('\t')
      return { pkKey: r.pkKey, revision: r.revision, values: Object.fromEntries(enc.columns(r.shape).map((c, i) => [c.column, values[i]])) }
    }
    let hot = 0
    for (let round = 0; round < 40; round++) {
      // One layout per round: its keys in a random order, some left out; the first line is all common forms.
      const order = keys.filter((k) => k === 'id' || k === 'name' || k === 'external_id' || rnd() < 0.8).sort(() => rnd() - 0.5)
      const common: Record<string, string> = { id: '1', name: '"n"', external_id: '"e"', birth_date: '"1950-01-02"', rating: '3', balance: '1.5', last_seen: '"2026-11-23 03:36:52+00:00"', is_active: 'true', profile: '{"a":1}', nickname: '"k"', big: '5', cqrs_revision: '2', cqrs_updated: '"2026-11-23 03:36:52.5+00:00"', extra: '1' }
      const lineOf = (v: (k: string) => string) => `{${order.map((k) => `"${k}":${v(k)}`).join(',')}}`
      const enc = new PgRowEncoder(target)
      encodeText(enc, 2, lineOf((k) => common[k]))
      for (let n = 0; n < 200; n++) {
        const l = lineOf((k) => (rnd() < 0.3 ? pick(valueOf[k]) : common[k]))
        const fresh = new PgRowEncoder(target)
        let viaLayout: unknown
        let viaFast: unknown
        try {
          const r = encodeText(enc, 3, l)
          viaLayout = byColumn(enc, r)
          if (r.shape.startsWith('L')) hot++
        } catch (e) {
          viaLayout = (e as Error).message
        }
        try {
          const f = fresh.encodeFast(l) ?? fresh.encodeParsed({ line: 3, data: parseDumpLine({ line: 3, text: l }) })
          viaFast = byColumn(fresh, f)
        } catch (e) {
          viaFast = (e as Error).message
        }
        expect(viaLayout, `${note}: ${l}`).toEqual(viaFast)
      }
    }
    expect(hot, note).toBeGreaterThan(100) // the hot path took many of the rows (about one in eight)
  })
})

