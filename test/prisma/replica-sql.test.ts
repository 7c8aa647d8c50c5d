import { describe, expect, it } from 'vitest'
import { ExactDateTime } from '../../src/core/datetime.js'
import { RawJson } from '../../src/core/json.js'
import { JSON_NULL } from '../../src/replica/decode-op.js'
import type { ApplyOp, TableTarget, TargetColumn } from '../../src/replica/apply-op.js'
import { columnsOf, deleteStatement, pgApplyStatement, pgInline, pgLiteral, pgPreparedScript, pgRowArray, pgScript, tombstoneStatement, upsertStatement } from '../../src/prisma/replica-sql.js'
import { withinPacket, withinParams } from '../../src/prisma/prisma-replica-store.js'
import { NonRetryableError } from '../../src/core/errors.js'

const c = (column: string, kind: TargetColumn['kind'] = 'String'): TargetColumn => ({ column, field: column, kind, required: false })
const pk = c('id', 'Int')
const name = c('name')
const rev = c('cqrs_revision', 'Int')
const upd = c('cqrs_updated', 'DateTime')
const target: TableTarget = { cqrsId: 'author', table: 'author_ref', pk, revision: rev, updated: upd, byKey: new Map([['id', pk], ['name', name], ['cqrs_revision', rev], ['cqrs_updated', upd]]) }
const op = (id: number, revision: number): ApplyOp => ({ signal: 'SAVE', force: false, pk: id, pkKey: String(id), revision, updated: ExactDateTime.parse('2026-11-23 00:00:00.123456+00:00'), values: new Map([['name', `n${id}`]]) })

describe('replica SQL plans', () => {
  it('PostgreSQL: one statement for the batch, gated on a lower stored revision', () => {
    const s = upsertStatement('postgresql', target, [op(1, 2), op(2, 0)], 'newer')
    expect(s.sql).toBe(
      'INSERT INTO "author_ref" AS t ("id", "name", "cqrs_updated", "cqrs_revision") SELECT v."id", v."name", v."cqrs_updated", v."cqrs_revision" FROM json_populate_recordset(NULL::"author_ref", $1::json) AS v ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name", "cqrs_updated" = EXCLUDED."cqrs_updated", "cqrs_revision" = EXCLUDED."cqrs_revision" WHERE t."cqrs_revision" < EXCLUDED."cqrs_revision"',
    )
    expect(JSON.parse(s.params[0] as string)).toEqual([
      { id: 1, name: 'n1', cqrs_updated: '2026-11-23T00:00:00.123456Z', cqrs_revision: 2 },
      { id: 2, name: 'n2', cqrs_updated: '2026-11-23T00:00:00.123456Z', cqrs_revision: 0 },
    ])
  })

  it('MySQL compares the revision before any assignment and sets it last', () => {
    const s = upsertStatement('mysql', target, [op(1, 2)], 'notOlder')
    expect(s.sql).toMatch(/ON DUPLICATE KEY UPDATE `name` = IF\(`cqrs_revision` <= VALUES\(`cqrs_revision`\), VALUES\(`name`\), `name`\), .*`cqrs_revision` = IF\(`cqrs_revision` <= VALUES\(`cqrs_revision`\), VALUES\(`cqrs_revision`\), `cqrs_revision`\)$/)
    expect(s.params).toEqual([1, 'n1', '2026-11-23 00:00:00.123456', 2])
  })

  it('SQLite uses its upsert; a forced SYNC has no gate', () => {
    expect(upsertStatement('sqlite', target, [op(1, 2)], 'always').sql).toBe(
      'INSERT INTO "author_ref" ("id", "name", "cqrs_updated", "cqrs_revision") VALUES (?, ?, ?, ?) ON CONFLICT ("id") DO UPDATE SET "name" = excluded."name", "cqrs_updated" = excluded."cqrs_updated", "cqrs_revision" = excluded."cqrs_revision"',
    )
  })

  it('a batch of a wide table goes as statements within the parameter limit of the database, every op once', () => {
    const wideCols = Array.from({ length: 400 }, (_, i) => c(`c${i}`))
    const wide: TableTarget = { ...target, byKey: new Map([...target.byKey, ...wideCols.map((x) => [x.column, x] as const)]) }
    const ops = Array.from({ length: 200 }, (_, i) => ({ ...op(i + 1, 1), values: new Map(wideCols.map((x) => [x.column, `v${i}`])) }))
    const cols = columnsOf(wide, ops).length
    for (const [provider, limit] of [['mysql', 65_535], ['sqlite', 32_766]] as const) {
      const parts = withinParams(provider, ops, cols)
      expect(parts.length, provider).toBeGreaterThan(1)
      expect(parts.flat(), provider).toEqual(ops)
      for (const part of parts) expect(upsertStatement(provider, wide, part, 'newer').params.length, provider).toBeLessThanOrEqual(limit)
    }
    expect(withinParams('postgresql', ops, cols)).toEqual([ops])
  })

  it('MySQL: statements split to fit max_allowed_packet, counting text high; a lone row bigger than it is refused, naming what to raise', () => {
    // Generated rows: text of random lengths (multi-byte characters among them), each seed printed on failure.
    for (const seed of [1, 2, 3, 4, 5]) {
      let x = seed
      const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32)
      const limit = 4096 + Math.floor(rnd() * 60_000)
      const ops = Array.from({ length: 1 + Math.floor(rnd() * 300) }, (_, i) => {
        const len = Math.floor(rnd() * (limit / (1 + Math.floor(rnd() * 40))))
        return { ...op(i + 1, 1), values: new Map([['name', (rnd() < 0.3 ? 'é€' : 'ab').repeat(len)]]) }
      })
      const build = (o: ApplyOp[]) => upsertStatement('mysql', target, o, 'newer')
      const note = `seed ${seed}, limit ${limit}, ${ops.length} rows`
      let parts: Array<[ApplyOp[], { sql: string; params: unknown[] }]>
      try {
        parts = withinPacket(ops, build, limit)
      } catch (e) {
        // Only a row that alone is more bytes than the limit is refused.
        expect(e, note).toBeInstanceOf(NonRetryableError)
        expect((e as Error).message, note).toMatch(/max_allowed_packet \(\d+ bytes\).*raise max_allowed_packet/)
        const pkOf = /row of pk (\d+)/.exec((e as Error).message)![1]
        const lone = build([ops.find((o) => o.pkKey === pkOf)!])
        expect(Buffer.byteLength(String(lone.params[1])) + lone.sql.length, note).toBeGreaterThan(limit)
        continue
      }
      expect(parts.flatMap(([o]) => o), note).toEqual(ops)
      for (const [o, st] of parts) {
        expect(st, note).toEqual(build(o))
        // What the driver sends: the SQL with each value quoted and escaped into it, in UTF-8.
        const bytes = st.sql.length + st.params.reduce((n: number, p) => n + (typeof p === 'string' ? Buffer.byteLength(p) + 2 : String(p).length), 0)
        if (o.length > 1) expect(bytes, note).toBeLessThanOrEqual(limit)
        // A row sent alone may be near the limit (the server then says so), never past it in its values alone.
        else expect(bytes - 2 * st.params.filter((p) => typeof p === 'string').length, note).toBeLessThanOrEqual(limit)
      }
    }
    // No limit (PostgreSQL, SQLite): one statement.
    const few = [op(1, 1), op(2, 1)]
    expect(withinPacket(few, (o) => upsertStatement('mysql', target, o, 'newer'), Infinity)).toHaveLength(1)
  })

  it('deletes only rows not newer than the DELETE, and keeps the highest tombstone', () => {
    expect(deleteStatement('sqlite', target, [op(1, 3), op(2, 1)])).toEqual({ sql: 'DELETE FROM "author_ref" WHERE ("id" = ? AND "cqrs_revision" <= ?) OR ("id" = ? AND "cqrs_revision" <= ?)', params: [1, 3, 2, 1] })
    const t = tombstoneStatement('postgresql', 'author', [op(1, 3)])
    expect(t.sql).toContain('VALUES ($1, $2, $3::int, $4::timestamptz, CURRENT_TIMESTAMP) ON CONFLICT (cqrs_id, pk) DO UPDATE')
    expect(t.sql).toContain('WHERE cqrs_tombstone.revision <= excluded.revision')
    expect(t.params).toEqual(['author', '1', 3, '2026-11-23T00:00:00.123456Z'])
  })

  it('writes exact values: datetimes with microseconds, decimals and JSON numbers as written, -0, the JSON null rule', () => {
    const dec = c('amount', 'Decimal')
    const dbl = c('ratio', 'Float')
    const doc = { ...c('doc', 'Json'), required: true }
    const opt = c('extra', 'Json')
    const t: TableTarget = { ...target, byKey: new Map([...target.byKey, ['amount', dec], ['ratio', dbl], ['doc', doc], ['extra', opt]]) }
    const o: ApplyOp = { ...op(1, 0), values: new Map<string, unknown>([['amount', '9999999999.99999999'], ['ratio', -0], ['doc', JSON_NULL], ['extra', { score: new RawJson('33.0') }]]) }
    const pg = upsertStatement('postgresql', t, [o], 'newer')
    expect(pg.sql).toContain(`COALESCE(v."doc", 'null') AS "doc"`)
    expect(pg.params[0]).toBe('[{"id":1,"amount":"9999999999.99999999","ratio":"-0","doc":null,"extra":{"score":33.0},"cqrs_updated":"2026-11-23T00:00:00.123456Z","cqrs_revision":0}]')
    const my = upsertStatement('mysql', t, [o], 'newer')
    expect(my.params).toEqual([1, '9999999999.99999999', '-0', 'null', '{"score":33.0}', '2026-11-23 00:00:00.123456', 0])
  })

  it('PostgreSQL row arrays: a field per column of the table, in its order, quoted for the record and again for the array; JSON where a literal cannot carry a text', () => {
    const layout = ['id', 'replica_only', 'name', 'cqrs_revision', 'cqrs_updated']
    const o = (text: string): ApplyOp => ({ ...op(1, 2), values: new Map([['name', text]]) })
    const cols = columnsOf(target, [o('')])
    expect(pgRowArray(target, cols, [o('a "b" \\c'), o('')], layout)).toBe(String.raw`{"(1,,\"a \\\"b\\\" \\\\c\",2,2026-11-23T00:00:00.123456Z)","(1,,\"\",2,2026-11-23T00:00:00.123456Z)"}`)
    // NUL and a lone surrogate: JSON escapes them, so PostgreSQL refuses them with its own error.
    expect(pgRowArray(target, cols, [o('ok'), o('a\u0000b')], layout)).toBeNull()
    expect(pgRowArray(target, cols, [o('a\ud800b')], layout)).toBeNull()
    expect(pgRowArray(target, cols, [o('pair \ud83c\udf89')], layout)).not.toBeNull()
    // A column the batch writes that the table lacks: the JSON path, and PostgreSQL's own error.
    expect(pgRowArray(target, cols, [o('x')], ['id', 'cqrs_revision', 'cqrs_updated'])).toBeNull()
    const pgLayout = { names: layout, types: ['integer', 'text', 'text', 'integer', 'timestamp with time zone'], domains: false }
    expect(pgApplyStatement(target, [o('ok')], 'newer', pgLayout, 1).sql).toContain('unnest($1::"author_ref"[])')
    // A batch of fewer ops than ROW_ARRAY_MIN goes as JSON, which needs no check of the columns.
    expect(pgApplyStatement(target, [o('ok')], 'newer', pgLayout).sql).toContain('json_populate_recordset')
    expect(pgApplyStatement(target, [o('ok')], 'newer', pgLayout).sql).not.toContain('pg_attribute')
    // A table with a domain column: JSON, read as the types of the columns it writes.
    const typed = 'AS v("id" integer, "name" text, "cqrs_updated" timestamp with time zone, "cqrs_revision" integer)'
    expect(pgApplyStatement(target, [o('a\u0000b')], 'newer', pgLayout, 1).sql).toContain('json_populate_recordset')
    expect(pgApplyStatement(target, [o('ok')], 'newer', { ...pgLayout, domains: true }).sql).toContain(typed)
    expect(pgApplyStatement(target, [o('ok')], 'newer').sql).toContain('json_populate_recordset')
    // The other statements read their JSON the same way: typed for a table with a domain column.
    const domains = { ...pgLayout, domains: true }
    expect(upsertStatement('postgresql', target, [o('ok')], 'always', domains).sql).toContain(typed)
    expect(upsertStatement('postgresql', target, [o('ok')], 'always', pgLayout).sql).toContain('json_populate_recordset')
    expect(deleteStatement('postgresql', target, [o('ok')], domains).sql).toContain('json_to_recordset($1::json) AS v("id" integer, "cqrs_revision" integer)')
    expect(deleteStatement('postgresql', target, [o('ok')]).sql).toContain('json_populate_recordset(NULL::"author_ref", $1::json) AS v')
  })

  it('PostgreSQL scripts: parameters written in as literals, the same text whatever standard_conforming_strings says', () => {
    expect(pgLiteral(null)).toBe('NULL')
    expect(pgLiteral(12)).toBe("E'12'")
    expect(pgLiteral(-7n)).toBe("E'-7'")
    expect(pgLiteral(true)).toBe("E'true'")
    // A quote or a backslash: dollar-quoted, nothing escaped, with a tag the text cannot end early.
    expect(pgLiteral(`it's a \\ "q"`)).toBe(`$cqrs$it's a \\ "q"$cqrs$`)
    expect(pgLiteral(`'$cqrs$'`)).toBe(`$cqrs1$'$cqrs$'$cqrs1$`)
    expect(pgLiteral(`'ends in $cqrs`)).toBe(`$cqrs1$'ends in $cqrs$cqrs1$`)
    expect(pgLiteral(`'$cqrs$ $cqrs1`)).toBe(`$cqrs2$'$cqrs$ $cqrs1$cqrs2$`)
    expect(pgLiteral(['1', '-2', null, 'a"b\\c'])).toBe('$cqrs${"1","-2",NULL,"a\\"b\\\\c"}$cqrs$')
    expect(() => pgLiteral({})).toThrow(/cannot write/)
    // Placeholders inside quoted identifiers and string literals stay; $10 is not $1 followed by 0.
    const params = Array.from({ length: 10 }, (_, i) => `v${i + 1}`)
    expect(pgInline({ sql: `SELECT $1::json, "a$1", 'b$2''$1', $10`, params })).toBe(`SELECT E'v1'::json, "a$1", 'b$2''$1', E'v10'`)
    expect(() => pgInline({ sql: 'SELECT $2', params: [1] })).toThrow(/no parameter for \$2/)
    expect(pgInline({ sql: `SELECT $1`, params: ["a'b"] })).toBe(`SELECT $cqrs$a'b$cqrs$`)
    expect(pgScript([{ sql: 'SELECT $1', params: [1] }, { sql: 'SELECT 2', params: [] }])).toBe("BEGIN ISOLATION LEVEL READ COMMITTED;\nSELECT E'1';\nSELECT 2;\nCOMMIT")
  })

  it('a prepared script PREPAREs what the connection lacks, once, ahead of its transaction, and EXECUTEs it with the same literals', () => {
    const lock = { sql: 'SELECT $1::text', params: ["a'b"] }
    const upsert = { sql: 'SELECT $1::json, $2', params: ['[1]', 'x'] }
    const other = { sql: 'SELECT 3', params: [] }
    // The first two prepared, the third inline; the same text twice is prepared once.
    const first = pgPreparedScript([lock, upsert, lock, other], 3, new Set())
    const [l, u] = first.prepares
    expect(first.prepares).toHaveLength(2)
    expect(l).toMatch(/^cqrs_[0-9a-f]{24}$/)
    expect(first.skip).toBe(3)
    expect(first.script).toBe(
      [`PREPARE ${l} AS SELECT $1::text`, `PREPARE ${u} AS SELECT $1::json, $2`, 'BEGIN ISOLATION LEVEL READ COMMITTED', `EXECUTE ${l}($cqrs$a'b$cqrs$)`, `EXECUTE ${u}(E'[1]', E'x')`, `EXECUTE ${l}($cqrs$a'b$cqrs$)`, 'SELECT 3', 'COMMIT'].join(';\n'),
    )
    // A name is its text's: the same wherever it is built, another for another text.
    expect(pgPreparedScript([{ sql: 'SELECT $1::text', params: ['z'] }], 1, new Set()).prepares).toEqual([l])
    // Once on the connection, nothing is prepared again.
    const again = pgPreparedScript([lock, upsert], 2, new Set([l, u]))
    expect(again).toEqual({ script: ['BEGIN ISOLATION LEVEL READ COMMITTED', `EXECUTE ${l}($cqrs$a'b$cqrs$)`, `EXECUTE ${u}(E'[1]', E'x')`, 'COMMIT'].join(';\n'), prepares: [], skip: 1 })
  })
})
