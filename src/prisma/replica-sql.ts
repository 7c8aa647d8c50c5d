/**
 * The replica's SQL per dialect, as pure functions returning `{ sql, params }`: unit-tested without
 * a database and printable. One statement applies a whole batch, version-gated in the database.
 */
import { createHash } from 'node:crypto'
import { ExactDateTime } from '../core/datetime.js'
import { stringifyJson } from '../core/json.js'
import type { ApplyOp, TableTarget, TargetColumn } from '../replica/apply-op.js'
import { storedMayBeReplaced, tombstoneBlocksSql, type Gate } from '../replica/version-gate.js'
import type { Provider } from './internals.js'
import { placeholder, quoteIdent } from './sql.js'

export interface Statement {
  sql: string
  params: unknown[]
}

export const TOMBSTONES = 'cqrs_tombstone'

/**
 * A decoded value ({@link decodeColumn}) as the driver (through Prisma raw queries) stores it in a
 * column of `kind`: datetimes as text with every digit, decimals and floats as their text (the
 * database parses them exactly), JSON as its text with numbers as written.
 */
export function driverValue(provider: Provider, c: TargetColumn, v: unknown): unknown {
  if (v === null || v === undefined) return null
  switch (c.kind) {
    case 'DateTime': {
      const d = v as ExactDateTime
      if (provider === 'mysql') return d.toSql()
      // SQLite keeps the text; Prisma reads this form back.
      if (provider === 'sqlite') return d.toISOString().replace('Z', '+00:00')
      return d.toISOString()
    }
    case 'Date':
      return v
    case 'Decimal':
      // SQLite has no decimal type: a DECIMAL column has NUMERIC affinity and stores a REAL (README).
      return provider === 'sqlite' ? Number(v) : String(v)
    case 'Float':
      return provider === 'sqlite' ? v : floatText(v as number)
    case 'Json':
      return jsonText(v)
    case 'Boolean':
      return provider === 'postgresql' ? v : v ? 1 : 0
    default:
      return v
  }
}

/** A double as text that reads back as the same double, `-0` included (String(-0) is `0`). */
export function floatText(n: number): string {
  return Object.is(n, -0) ? '-0' : String(n)
}

/**
 * JSON text of wire-derived values: native JSON.stringify (fast), or ours ({@link stringifyJson}) for a
 * value holding a bigint or a RawJson (a RawJson's toJSON throws, so neither can slip through).
 */
function jsonText(value: unknown): string {
  try {
    return JSON.stringify(value)
  } catch {
    return stringifyJson(value)
  }
}

/** PostgreSQL takes the batch as one JSON parameter; values as json_populate_recordset reads them. */
function pgJsonValue(c: TargetColumn, v: unknown): unknown {
  if (v === null || v === undefined) return null
  switch (c.kind) {
    case 'DateTime':
      return (v as ExactDateTime).toISOString()
    case 'Float':
      return floatText(v as number)
    case 'Decimal':
    case 'BigInt':
      // Strings: json_populate_recordset parses them with the column's own input function (exact),
      // and the batch can go through the native JSON.stringify.
      return String(v)
    case 'Bytes':
      return `\\x${Buffer.from(v as Uint8Array).toString('hex')}`
    default:
      return v
  }
}

/** What an op writes into column `c`. */
function columnValue(target: TableTarget, op: ApplyOp, c: TargetColumn): unknown {
  return c === target.pk ? op.pk : c === target.revision ? op.revision : c === target.updated ? op.updated : op.values.get(c.column)
}

/** The columns a group of ops writes: pk, the data columns present, revision and time (revision last). */
export function columnsOf(target: TableTarget, ops: ApplyOp[]): TargetColumn[] {
  const seen = new Set<string>()
  for (const op of ops) for (const col of op.values.keys()) seen.add(col)
  return tableColumns(target, (c) => seen.has(c.column))
}

/** pk, the data columns `has` keeps (default all), updated, revision: the one column order of a table. */
export function tableColumns(target: TableTarget, has: (c: TargetColumn) => boolean = () => true): TargetColumn[] {
  const special = new Set([target.pk.column, target.revision.column, target.updated?.column])
  const data = [...new Set(target.byKey.values())].filter((c) => has(c) && !special.has(c.column))
  return [target.pk, ...data, ...(target.updated ? [target.updated] : []), target.revision]
}


/** Insert or update, where the stored revision is lower (SAVE), not higher (SYNC), or always (forced). */
export function upsertStatement(provider: Provider, target: TableTarget, ops: ApplyOp[], gate: Gate, layout?: PgLayout): Statement {
  const q = (n: string) => quoteIdent(provider, n)
  const cols = columnsOf(target, ops)
  const t = q(target.table)
  const rev = q(target.revision.column)
  const list = cols.map((c) => q(c.column)).join(', ')
  const valueOf = (op: ApplyOp, c: TargetColumn) => columnValue(target, op, c)
  const updatable = cols.filter((c) => c !== target.pk)
  if (provider === 'postgresql') {
    const rows = ops.map((op) => Object.fromEntries(cols.map((c) => [c.column, pgJsonValue(c, valueOf(op, c))])))
    const set = updatable.map((c) => `${q(c.column)} = EXCLUDED.${q(c.column)}`).join(', ')
    const where = gate === 'always' ? '' : ` WHERE t.${rev} ${storedMayBeReplaced(gate)} EXCLUDED.${rev}`
    // The JSON reading gives a JSON null as SQL NULL: a NOT NULL Json column gets the JSON null back (JSON_NULL).
    const select = cols.map((c) => (c.kind === 'Json' && c.required ? `COALESCE(v.${q(c.column)}, 'null') AS ${q(c.column)}` : `v.${q(c.column)}`)).join(', ')
    return {
      sql: `INSERT INTO ${t} AS t (${list}) SELECT ${select} FROM ${pgJsonRows(target, cols, jsonTypes(layout, cols), '$1::json', false)} ON CONFLICT (${q(target.pk.column)}) DO UPDATE SET ${set}${where}`,
      params: [jsonText(rows)],
    }
  }
  const params: unknown[] = []
  const tuples = ops.map((op) => `(${cols.map((c) => (params.push(driverValue(provider, c, valueOf(op, c))), '?')).join(', ')})`)
  if (provider === 'mysql') {
    // Assignments run left to right and see earlier ones: the revision is compared first and set last.
    const cond = gate === 'always' ? 'TRUE' : `${rev} ${storedMayBeReplaced(gate)} VALUES(${rev})`
    const set = updatable.map((c) => `${q(c.column)} = IF(${cond}, VALUES(${q(c.column)}), ${q(c.column)})`).join(', ')
    return { sql: `INSERT INTO ${t} (${list}) VALUES ${tuples.join(', ')} ON DUPLICATE KEY UPDATE ${set}`, params }
  }
  const set = updatable.map((c) => `${q(c.column)} = excluded.${q(c.column)}`).join(', ')
  const where = gate === 'always' ? '' : ` WHERE ${t}.${rev} ${storedMayBeReplaced(gate)} excluded.${rev}`
  return { sql: `INSERT INTO ${t} (${list}) VALUES ${tuples.join(', ')} ON CONFLICT (${q(target.pk.column)}) DO UPDATE SET ${set}${where}`, params }
}

/**
 * PostgreSQL's batch apply in one statement: the tombstone rule ({@link tombstoneBlocksSql}) and the
 * version gate ({@link storedMayBeReplaced}) both checked by the database, so no tombstone read goes
 * before it. Returns (as rows of `cqrs_pk_key`) the pk keys of the ops that did not change the table
 * (older, or blocked by a tombstone): none in the common batch, so no rows to send and parse.
 *
 * The store runs it in the batch's transaction after taking the pks' advisory locks in a statement of
 * their own: under READ COMMITTED each statement reads a fresh snapshot, so this one sees every
 * tombstone committed by a DELETE that held one of the locks before us (a lock taken inside this same
 * statement would not: its snapshot predates the wait). `gate` 'always' (a forced SYNC) ignores
 * tombstones, as {@link gateOf} says.
 *
 * With `layout` (the table's columns, {@link PG_LAYOUT_SQL}) a batch of at least `rowArrayMin` ops goes
 * as an array of the table's row type ({@link pgRowArray}); a table with a domain column takes JSON
 * read as the types of the columns it writes ({@link jsonTypes}); any other batch (a few ops, no
 * layout, a text a literal cannot carry) JSON read by `json_populate_recordset`. Either way each value
 * reaches its column's own input function as the same text; the row type saves PostgreSQL the JSON
 * parse and a lookup by name per value.
 */
export function pgApplyStatement(target: TableTarget, ops: ApplyOp[], gate: Gate, layout?: PgLayout, rowArrayMin = ROW_ARRAY_MIN): Statement {
  const q = (n: string) => quoteIdent('postgresql', n)
  const cols = columnsOf(target, ops)
  const t = q(target.table)
  const pk = q(target.pk.column)
  const rev = q(target.revision.column)
  const list = cols.map((c) => q(c.column)).join(', ')
  // The pk as tombstones key it (ApplyOp.pkKey). An integer pk's text in PostgreSQL is that key, so it
  // is not sent; any other pk (a uuid's case, a decimal's form) sends its key beside the row.
  const keyed = target.pk.kind !== 'Int' && target.pk.kind !== 'BigInt'
  const params: unknown[] = []
  const p = (v: unknown) => `$${params.push(v)}`
  const rowArray = layout && !layout.domains && ops.length >= rowArrayMin ? pgRowArray(target, cols, ops, layout.names) : null
  const types = jsonTypes(layout, cols)
  // The statement checks, in its own snapshot and after its table lock, that the columns are still
  // those of `layout` (a migration may have changed them since it was read), and fails with a cast
  // error naming them if not; the store then reads them again.
  const check = () => {
    const now = `array_agg(attname::text || ' ' || ${COLUMN_TYPE} ORDER BY attnum)`
    const was = layout!.names.map((n, i) => `${n} ${layout!.types[i]}`)
    return `(SELECT CASE WHEN ${now} = ${p(was)}::text[] THEN true ELSE ('cqrs-sync: the columns of ' || ${p(t)}::text || ' changed; now ' || array_to_string(${now}, ', '))::int = 0 END ${liveColumns(`${p(t)}::regclass`)})`
  }
  let batch: string
  if (rowArray !== null) {
    // Read by position: each value goes to its column's input function, with no per-row name lookup.
    const rowsOf = `unnest(${p(rowArray)}::${t}[])`
    const source = keyed ? `ROWS FROM (${rowsOf}, unnest(${p(ops.map((op) => op.pkKey))}::text[])) AS v(${[...layout!.names.map(q), KEY].join(', ')})` : `${rowsOf} AS v`
    // Each array named once, in the FROM (no CTE around it: pgbench measured that 0.3 ms a batch slower).
    batch = `a AS (SELECT v.* FROM ${source} WHERE ${check()})`
  } else {
    const rows = ops.map((op) => {
      const row: Record<string, unknown> = keyed ? { [KEY]: op.pkKey } : {}
      for (const c of cols) row[c.column] = pgJsonValue(c, columnValue(target, op, c))
      return row
    })
    // The batch named once (p): a script carries it as a literal, written as often as it is named.
    const json = `p AS (SELECT ${p(jsonText(rows))}::json AS j)`
    batch = `${json}, a AS (SELECT v.* FROM p, ${pgJsonRows(target, cols, types, 'p.j', keyed)}${types ? ` WHERE ${check()}` : ''})`
  }
  const key = (alias: string) => (keyed ? `${alias}.${KEY}` : `${alias}.${pk}::text`)
  const set = cols
    .filter((c) => c !== target.pk)
    .map((c) => `${q(c.column)} = EXCLUDED.${q(c.column)}`)
    .join(', ')
  const select = cols.map((c) => (c.kind === 'Json' && c.required ? `COALESCE(v.${q(c.column)}, 'null')` : `v.${q(c.column)}`)).join(', ')
  // Each row looks up its own pk's tombstone by the tombstones' primary key (under OR, PostgreSQL
  // cannot turn that look-up into a join), and only when the table has a tombstone of this cqrs_id at
  // all: one probe of the same index (a scalar subquery, whose ORDER BY and LIMIT make the index the
  // cheapest way; an EXISTS may be planned as a scan that stops at the first match, which can read
  // every other cqrs_id's tombstones first). A NOT EXISTS alone had PostgreSQL hash every tombstone
  // of the cqrs_id for each batch (integration/replica/tombstone-scale.test.ts counts the rows read).
  let blocked = ''
  if (gate !== 'always') {
    const id = p(target.cqrsId)
    const none = `(SELECT tb0.pk FROM ${TOMBSTONES} tb0 WHERE tb0.cqrs_id = ${id} ORDER BY tb0.cqrs_id, tb0.pk LIMIT 1) IS NULL`
    blocked = ` WHERE ${none} OR NOT EXISTS (SELECT 1 FROM ${TOMBSTONES} tb WHERE tb.cqrs_id = ${id} AND tb.pk = ${key('v')} AND ${tombstoneBlocksSql('tb.revision', `v.${rev}`)})`
  }
  const where = gate === 'always' ? '' : ` WHERE t.${rev} ${storedMayBeReplaced(gate)} EXCLUDED.${rev}`
  return {
    sql:
      `WITH ${batch}, v AS (SELECT * FROM a AS v${blocked}),` +
      ` w AS (INSERT INTO ${t} AS t (${list}) SELECT ${select} FROM v ON CONFLICT (${pk}) DO UPDATE SET ${set}${where} RETURNING t.${pk})` +
      ` SELECT ${key('a')} AS ${KEY} FROM a WHERE NOT EXISTS (SELECT 1 FROM w WHERE w.${pk} = a.${pk})`,
    params,
  }
}

/**
 * The fewest ops a batch goes as a row array with. Its statement checks the table's columns, a cost
 * of its own, so a small batch costs PostgreSQL more as a row array than as JSON, which needs no
 * check: `bench/profile/pg-batch.ts N 200` measured 1.2x at 1 op, 1.1-1.2x at 32 and 64, 0.91x at 128
 * and 0.79-0.85x at 200 (the default batch, which a backlog fills). A replica keeping up at a steady
 * rate applies batches of a few ops, as JSON.
 */
export const ROW_ARRAY_MIN = 100

/**
 * The types to read a JSON batch's `cols` as: only for a table with a domain column, which
 * `json_populate_recordset` cannot take (it hands each column the JSON lacks to its input function as
 * a NULL, and a `NOT NULL` domain refuses that); null elsewhere, or when `layout` lacks a column.
 */
function jsonTypes(layout: PgLayout | undefined, cols: TargetColumn[]): string[] | null {
  if (!layout?.domains) return null
  const typeOf = new Map(layout.names.map((n, i) => [n, layout.types[i]]))
  const types = cols.map((c) => typeOf.get(c.column))
  return types.every((t) => t !== undefined) ? (types as string[]) : null
}

/**
 * PostgreSQL: the rows of a JSON array (`json`, an expression) as a FROM item `v` of the columns `cols`,
 * and with `keyed` the pk's key beside them (`cqrs_pk_key`). With their `types` ({@link jsonTypes}),
 * each is read as its type without modifier (the INSERT applies that, as it does to a value of the row
 * type), and only the columns named are read; else by `json_populate_recordset`, which runs every
 * column of the table through its input function, so a `NOT NULL` domain column the JSON lacks refuses
 * the lot.
 */
function pgJsonRows(target: TableTarget, cols: TargetColumn[], types: string[] | null, json: string, keyed: boolean): string {
  const q = (n: string) => quoteIdent('postgresql', n)
  if (types) {
    const defs = [...cols.map((c, i) => `${q(c.column)} ${types[i]}`), ...(keyed ? [`${KEY} text`] : [])]
    return `json_to_recordset(${json}) AS v(${defs.join(', ')})`
  }
  const t = q(target.table)
  // The keys are read by a second pass over the same array (ROWS FROM zips the two in order).
  return keyed ? `ROWS FROM (json_populate_recordset(NULL::${t}, ${json}), json_to_recordset(${json}) AS (${KEY} text)) AS v` : `json_populate_recordset(NULL::${t}, ${json}) AS v`
}

/** The live columns of the table `rel` (an expression of type regclass), as a FROM and WHERE of pg_attribute. */
const liveColumns = (rel: string) => `FROM pg_attribute WHERE attrelid = ${rel} AND attnum > 0 AND NOT attisdropped`
/** A column's type as the layout keeps it: without its modifier. */
const COLUMN_TYPE = 'format_type(atttypid, NULL)'

/**
 * PostgreSQL: a table's live columns in order (the fields of its row type), each one's type without
 * its modifier (`numeric`, not `numeric(18,2)`), and whether it is a domain; `$1` is the table as the
 * statements name it.
 */
export const PG_LAYOUT_SQL = `SELECT attname::text AS n, ${COLUMN_TYPE} AS t, (SELECT typtype = 'd' FROM pg_type WHERE oid = atttypid) AS domain ${liveColumns('$1::regclass')} ORDER BY attnum`

/** What {@link pgApplyStatement} knows of a table's columns ({@link PG_LAYOUT_SQL}). */
export interface PgLayout {
  names: string[]
  types: string[]
  /**
   * Some column is of a domain type. A domain's input runs for a NULL field too, and a `NOT NULL`
   * domain refuses it, where an INSERT that leaves the column out takes its default: such a table's
   * batches name only the columns they write (typed JSON), never a whole record.
   */
  domains: boolean
}

export function pgLayout(rows: Array<{ n: string; t: string; domain: unknown }>): PgLayout | undefined {
  return rows.length ? { names: rows.map((r) => r.n), types: rows.map((r) => r.t), domains: rows.some((r) => r.domain === true || r.domain === 't') } : undefined
}

export function sameLayout(a: PgLayout, b: PgLayout): boolean {
  return a.names.length === b.names.length && a.names.every((n, i) => n === b.names[i] && a.types[i] === b.types[i]) && a.domains === b.domains
}

/**
 * A batch as a PostgreSQL array literal of the table's row type: `{"(1,\"a b\",)",...}`, one record
 * per op with a field per column of `layout` (empty, so NULL, for a column the batch does not write),
 * each value as the text {@link pgJsonValue} gives it, quoted for the record and again for the array.
 * Null when the JSON path must take the batch: a column it writes is not in `layout`, or a string
 * holds what a literal cannot carry as JSON's escapes do (NUL, a lone surrogate), so PostgreSQL
 * refuses it with its own error as before.
 */
export function pgRowArray(target: TableTarget, cols: TargetColumn[], ops: ApplyOp[], layout: readonly string[]): string | null {
  const byName = new Map(cols.map((c) => [c.column, c]))
  const slots = layout.map((n) => byName.get(n) ?? null)
  if (slots.filter((s) => s !== null).length !== cols.length) return null
  let out = '{'
  for (let i = 0; i < ops.length; i++) {
    out += i ? ',"(' : '"('
    for (let j = 0; j < slots.length; j++) {
      if (j) out += ','
      const c = slots[j]
      if (c === null) continue
      const f = rowField(c, columnValue(target, ops[i], c))
      if (f === null) return null
      out += f
    }
    out += ')"'
  }
  return `${out}}`
}

/**
 * One field of a {@link pgRowArray} record: empty for NULL; texts and JSON quoted for the record and
 * again for the array; numbers, decimals, datetimes and dates bare (digits, signs, points, letters and
 * colons: nothing either literal reads specially, so no test and no quoting).
 */
function rowField(c: TargetColumn, v: unknown): string | null {
  if (v === null || v === undefined) return ''
  switch (c.kind) {
    case 'Json':
      return quotedField(jsonText(v))
    case 'String':
    case 'Enum': {
      const x = String(v)
      return x.includes('\0') || !(x as unknown as { isWellFormed(): boolean }).isWellFormed() ? null : quotedField(x)
    }
    case 'Bytes':
      // `\x<hex>`: its backslash escaped for the record, and both again for the array.
      return `\\\\\\\\x${Buffer.from(v as Uint8Array).toString('hex')}`
    case 'Boolean':
      return v ? 't' : 'f'
    default: {
      const x = pgJsonValue(c, v)
      return typeof x === 'string' ? x : String(x)
    }
  }
}

const FIELD_SPECIAL = /["\\]/
/**
 * `text` as a quoted record field inside a quoted array element: `\"...\"`, a `"` written `\\\"` and a
 * `\` written `\\\\` (the array reading takes one escape off, the record reading the other).
 */
function quotedField(text: string): string {
  return `\\"${FIELD_SPECIAL.test(text) ? text.replace(/["\\]/g, (m) => (m === '"' ? '\\\\\\"' : '\\\\\\\\')) : text}\\"`
}

/**
 * PostgreSQL: statements as one script of the simple-query protocol (one message, one round trip),
 * their parameters written in as literals, in one READ COMMITTED transaction. Each statement of a
 * script still reads a fresh snapshot (as in a transaction of separate queries), so a statement after
 * a lock statement sees what the lock's previous holder committed; a test pins this.
 */
export function pgScript(statements: Statement[]): string {
  return pgPreparedScript(statements, 0, NONE_PREPARED).script
}
const NONE_PREPARED: ReadonlySet<string> = new Set()

/**
 * {@link pgScript} with the first `count` statements PREPAREd: each runs as `EXECUTE name(literals)`,
 * and those not yet on the connection (`done`, the names it holds) are PREPAREd ahead of the
 * transaction, in the same message. PostgreSQL then plans such a statement once per connection (its
 * generic plan), where an inline one is parsed and planned in every batch: for a batch of one event
 * that was half of PostgreSQL's CPU (BENCHMARKS.md). A statement's name is a digest of its text, so a
 * name stands for one text wherever it is found (a pooler may hand the connection to another client
 * of the library). `skip`: the script's results before the statements' own.
 */
export function pgPreparedScript(statements: Statement[], count: number, done: ReadonlySet<string>): { script: string; prepares: string[]; skip: number } {
  const prepares: string[] = []
  const head: string[] = []
  const body = statements.map((st, i) => {
    const name = i < count ? preparedName(st.sql) : null
    if (name === null) return pgInline(st)
    if (!done.has(name) && !prepares.includes(name)) {
      prepares.push(name)
      head.push(`PREPARE ${name} AS ${st.sql}`)
    }
    return st.params.length ? `EXECUTE ${name}(${st.params.map(pgLiteral).join(', ')})` : `EXECUTE ${name}`
  })
  return { script: [...head, 'BEGIN ISOLATION LEVEL READ COMMITTED', ...body, 'COMMIT'].join(';\n'), prepares, skip: head.length + 1 }
}

/**
 * Statement texts and their names; a text past the bound is not prepared (null), so a connection
 * keeps at most this many plans (a few per replica table: per gate, JSON or row array, and column set).
 */
const preparedNames = new Map<string, string>()
const PREPARED_MAX = 256

function preparedName(sql: string): string | null {
  let name = preparedNames.get(sql)
  if (name === undefined) {
    if (preparedNames.size >= PREPARED_MAX) return null
    name = `cqrs_${createHash('sha1').update(sql).digest('hex').slice(0, 24)}`
    preparedNames.set(sql, name)
  }
  return name
}

/**
 * A statement with its `$n` placeholders replaced by the parameters as quoted literals (a literal of
 * unknown type, read by the type its context asks for, as a parameter is). Placeholders inside quoted
 * identifiers and string literals of the SQL are left alone.
 */
export function pgInline(s: Statement): string {
  return s.sql.replace(/"(?:[^"]|"")*"|'(?:[^']|'')*'|\$(\d+)/g, (m, n?: string) => {
    if (n === undefined) return m
    const i = Number(n) - 1
    if (i >= s.params.length) throw new Error(`pgInline: no parameter for $${n}`)
    return pgLiteral(s.params[i])
  })
}

/** A parameter as a PostgreSQL literal: NULL, a quoted string, or an array literal of its elements. */
export function pgLiteral(v: unknown): string {
  if (v === null || v === undefined) return 'NULL'
  if (Array.isArray(v)) return quoteLiteral(`{${v.map(arrayElement).join(',')}}`)
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return quoteLiteral(String(v))
  throw new Error(`pgLiteral: cannot write a ${typeof v} as a literal`)
}

/**
 * A string constant with the same text whatever standard_conforming_strings says: `E'...'` where the
 * text has no quote or backslash, else dollar-quoted (`$cqrs$...$cqrs$`, nothing escaped: a batch's
 * row array has a backslash in every field), with a tag the text does not hold.
 */
function quoteLiteral(text: string): string {
  if (!LITERAL_SPECIAL.test(text)) return `E'${text}'`
  let tag = '$cqrs$'
  // The first occurrence of the closing tag ends the constant: none in the text, none across its end
  // (a text ending in `$cqrs`; the tag's only border is its `$`).
  for (let i = 1; text.includes(tag) || text.endsWith(tag.slice(0, -1)); i++) tag = `$cqrs${i}$`
  return `${tag}${text}${tag}`
}
const LITERAL_SPECIAL = /['\\]/

/** An element of an array literal: NULL, or double-quoted with `"` and `\` escaped. */
function arrayElement(v: unknown): string {
  if (v === null || v === undefined) return 'NULL'
  if (typeof v === 'object') throw new Error('pgLiteral: nested arrays and objects are not written as literals')
  return `"${String(v).replace(/[\\"]/g, (c) => `\\${c}`)}"`
}

/** The pk as tombstones key it, beside a row of a PostgreSQL batch (also bulk-load's stage column). */
const KEY = 'cqrs_pk_key'

/** Delete rows whose stored revision is not higher than the DELETE's. */
export function deleteStatement(provider: Provider, target: TableTarget, ops: ApplyOp[], layout?: PgLayout): Statement {
  const q = (n: string) => quoteIdent(provider, n)
  const t = q(target.table)
  const pk = q(target.pk.column)
  const rev = q(target.revision.column)
  if (provider === 'postgresql') {
    const rows = ops.map((op) => ({ [target.pk.column]: pgJsonValue(target.pk, op.pk), [target.revision.column]: op.revision }))
    const cols = [target.pk, target.revision]
    const source = pgJsonRows(target, cols, jsonTypes(layout, cols), '$1::json', false)
    return { sql: `DELETE FROM ${t} AS t USING ${source} WHERE t.${pk} = v.${pk} AND t.${rev} ${storedMayBeReplaced('notOlder')} v.${rev}`, params: [jsonText(rows)] }
  }
  const params: unknown[] = []
  const conds = ops.map((op) => {
    params.push(driverValue(provider, target.pk, op.pk), op.revision)
    return `(${pk} = ? AND ${rev} ${storedMayBeReplaced('notOlder')} ?)`
  })
  return { sql: `DELETE FROM ${t} WHERE ${conds.join(' OR ')}`, params }
}

/** Tombstones of a batch's DELETEs, keeping the highest revision. */
export function tombstoneStatement(provider: Provider, cqrsId: string, ops: ApplyOp[]): Statement {
  const params: unknown[] = []
  let n = 0
  const p = (cast = '') => `${placeholder(provider, ++n)}${provider === 'postgresql' ? cast : ''}`
  const now = provider === 'sqlite' ? `strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')` : 'CURRENT_TIMESTAMP'
  const updatedColumn: TargetColumn = { column: 'updated', field: 'updated', kind: 'DateTime', required: true }
  const tuples = ops.map((op) => {
    params.push(cqrsId, op.pkKey, op.revision, driverValue(provider, updatedColumn, op.updated ?? ExactDateTime.fromDate(new Date())))
    return `(${p()}, ${p()}, ${p('::int')}, ${p('::timestamptz')}, ${now})`
  })
  const head = `INSERT INTO ${TOMBSTONES} (cqrs_id, pk, revision, updated, deleted_at) VALUES ${tuples.join(', ')}`
  if (provider === 'mysql')
    return { sql: `${head} ON DUPLICATE KEY UPDATE updated = IF(revision <= VALUES(revision), VALUES(updated), updated), deleted_at = IF(revision <= VALUES(revision), VALUES(deleted_at), deleted_at), revision = GREATEST(revision, VALUES(revision))`, params }
  return { sql: `${head} ON CONFLICT (cqrs_id, pk) DO UPDATE SET revision = excluded.revision, updated = excluded.updated, deleted_at = excluded.deleted_at WHERE ${TOMBSTONES}.revision <= excluded.revision`, params }
}

/** Read the tombstones of some pks; MySQL locks them (and the gaps) so a concurrent DELETE waits. */
export function tombstoneSelect(provider: Provider, cqrsId: string, pkKeys: string[]): Statement {
  // One array parameter on PostgreSQL instead of one per pk.
  if (provider === 'postgresql') return { sql: `SELECT pk, revision FROM ${TOMBSTONES} WHERE cqrs_id = $1 AND pk = ANY($2::text[])`, params: [cqrsId, pkKeys] }
  let n = 0
  const p = () => placeholder(provider, ++n)
  const sql = `SELECT pk, revision FROM ${TOMBSTONES} WHERE cqrs_id = ${p()} AND pk IN (${pkKeys.map(p).join(', ')})${provider === 'mysql' ? ' FOR UPDATE' : ''}`
  return { sql, params: [cqrsId, ...pkKeys] }
}

/**
 * bulk-load on PostgreSQL, two ways to one result.
 *
 * Staged (`create`, `copy`, `lock`, `upsert`): the rows go by COPY into a temporary stage table
 * (dropped at commit), then one upsert applies them version-gated like SYNCs: not over a newer row,
 * not over a tombstone at least as new. `cqrs_pk_key` carries the pk as tombstones key it.
 *
 * Direct (`lock`, `anyTombstone` and `tombstoned`, `direct`): where no pk of the batch has a stored
 * row or a tombstone, the gate lets every row in (`gateOpenWithoutHistory` in version-gate.ts), so the
 * rows go by COPY straight into the table: no stage, no upsert, about half the database's work. The
 * table's unique pk index proves "no stored row" (a COPY meeting one fails, and the batch goes
 * staged), the tombstone look-ups prove "no tombstone".
 *
 * Either way the lock makes the batch wait for a consumer batch that deleted rows of the table and has
 * not committed its tombstones yet, and holds consumers back until the batch commits, so a row
 * deleted meanwhile is not brought back. The staged path takes it after its COPY (consumers wait for
 * the upsert); the direct path before everything, so its look-ups see every committed tombstone and
 * none can be added before its COPY commits (consumers wait for the COPY).
 */
export function pgLoadPlan(
  target: TableTarget,
  cols: TargetColumn[],
): { stage: string; create: string; copy: string; lock: string; upsert: Statement; anyTombstone: Statement; tombstoned: Statement; direct: string } {
  const q = (n: string) => quoteIdent('postgresql', n)
  const t = q(target.table)
  const stage = q(LOAD_STAGE)
  const list = cols.map((c) => q(c.column)).join(', ')
  const rev = q(target.revision.column)
  const set = cols.filter((c) => c !== target.pk).map((c) => `${q(c.column)} = EXCLUDED.${q(c.column)}`).join(', ')
  return {
    stage: LOAD_STAGE,
    create: `CREATE TEMPORARY TABLE ${stage} ON COMMIT DROP AS SELECT ${list}, NULL::text AS ${KEY} FROM ${t} WITH NO DATA`,
    copy: `COPY ${stage} (${list}, ${KEY}) FROM STDIN`,
    lock: `LOCK TABLE ${t} IN SHARE ROW EXCLUSIVE MODE`,
    upsert: {
      sql:
        `INSERT INTO ${t} AS t (${list}) SELECT ${list} FROM ${stage} s` +
        ` WHERE NOT EXISTS (SELECT 1 FROM ${TOMBSTONES} tb WHERE tb.cqrs_id = $1 AND tb.pk = s.${KEY} AND ${tombstoneBlocksSql('tb.revision', `s.${rev}`)})` +
        ` ON CONFLICT (${q(target.pk.column)}) DO UPDATE SET ${set} WHERE t.${rev} ${storedMayBeReplaced('notOlder')} EXCLUDED.${rev}`,
      params: [target.cqrsId],
    },
    // Any tombstone of the table, then (only if there is one) of the batch's pks, whatever its revision:
    // the direct path takes no gate decision. The first spares sending the pks when there is none.
    anyTombstone: { sql: `SELECT EXISTS (SELECT 1 FROM ${TOMBSTONES} WHERE cqrs_id = $1) AS "found"`, params: [target.cqrsId] },
    tombstoned: { sql: `SELECT EXISTS (SELECT 1 FROM ${TOMBSTONES} WHERE cqrs_id = $1 AND pk = ANY($2::text[])) AS "found"`, params: [target.cqrsId] },
    direct: `COPY ${t} (${list}) FROM STDIN`,
  }
}

const LOAD_STAGE = 'cqrs_load_stage'

const COPY_SPECIAL = /[\\\n\r\t]/
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' }

/** A text for COPY's text format: backslash, newline, carriage return and tab escaped. */
export function copyEscape(s: string): string {
  return COPY_SPECIAL.test(s) ? s.replace(/[\\\n\r\t]/g, (ch) => COPY_ESCAPES[ch]) : s
}

/** A decoded value in COPY's text format for a column of `kind`; `\N` is NULL. */
export function copyValue(c: TargetColumn, v: unknown): string {
  if (v === null || v === undefined) return '\\N'
  switch (c.kind) {
    case 'DateTime':
      return (v as ExactDateTime).toISOString()
    case 'Float':
      return floatText(v as number)
    case 'Boolean':
      return v ? 't' : 'f'
    case 'Json':
      return copyEscape(stringifyJson(v))
    case 'Bytes':
      return `\\\\x${Buffer.from(v as Uint8Array).toString('hex')}`
    case 'String':
    case 'Enum':
    case 'Date':
      return copyEscape(v as string)
    default:
      return String(v)
  }
}
