/**
 * The classifier against errors captured from the real adapters (fixtures/db-errors.json, made by
 * fixtures/capture-db-errors.ts): what the consumer does with each is what a user relies on (a
 * database outage burns no retry, a value the column cannot hold is dead-lettered at once).
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { NonRetryableError } from '../../src/core/errors.js'
import { classifyDbError, columnOfError, permanentReason, type DbErrorClass } from '../../src/replica/classify-db-error.js'
import { decideRetry, isConnectionError } from '../../src/replica/retry-policy.js'

type Plain = { name?: string; message?: string; cause?: unknown; [k: string]: unknown }
const captured = JSON.parse(readFileSync(new URL('./fixtures/db-errors.json', import.meta.url), 'utf8')) as Record<string, Record<string, Plain>>

/** Rebuild an Error (name, message, own properties, cause chain) from its captured data. */
function revive(p: unknown): unknown {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return p
  const o = p as Plain
  const out: any = typeof o.name === 'string' && typeof o.message === 'string' ? Object.assign(new Error(o.message), { name: o.name }) : {}
  for (const [k, v] of Object.entries(o)) if (k !== 'name' && k !== 'message') out[k] = revive(v)
  return out
}
const error = (dialect: string, name: string) => {
  const p = captured[dialect]?.[name]
  if (!p) throw new Error(`no captured error ${dialect}.${name} in fixtures/db-errors.json; run fixtures/capture-db-errors.ts`)
  return revive(p)
}

const expected: Record<string, Record<string, DbErrorClass>> = {
  postgresql: {
    numeric_overflow: 'permanent',
    integer_out_of_range: 'permanent',
    integer_text_out_of_range: 'permanent',
    too_long: 'permanent',
    not_null: 'permanent',
    check: 'permanent',
    bad_integer_text: 'permanent',
    bad_datetime_text: 'permanent',
    datetime_field_overflow: 'permanent',
    foreign_key: 'transient',
    lock_timeout: 'transient',
    deadlock: 'transient',
    serialization_failure: 'transient',
    read_only: 'unavailable',
    admin_shutdown: 'unavailable',
    too_many_connections: 'unavailable',
    connection_refused: 'unavailable',
    client_numeric_overflow: 'permanent',
    client_raw_check: 'permanent',
  },
  mysql: {
    out_of_range: 'permanent',
    too_long: 'permanent',
    not_null: 'permanent',
    check: 'permanent',
    json_check: 'permanent',
    bad_integer_text: 'permanent',
    bad_datetime_text: 'permanent',
    foreign_key: 'transient',
    lock_timeout: 'transient',
    deadlock: 'transient',
    connection_killed: 'unavailable',
    connection_refused: 'unavailable',
    client_raw_too_long: 'permanent',
  },
  sqlite: {
    not_null: 'permanent',
    check: 'permanent',
    foreign_key: 'transient',
    busy: 'unavailable',
    read_only: 'unavailable',
  },
}

describe('classifyDbError on errors captured from the adapters', () => {
  for (const [dialect, cases] of Object.entries(expected))
    for (const [name, cls] of Object.entries(cases))
      it(`${dialect} ${name}: ${cls}`, () => {
        expect(classifyDbError(error(dialect, name)).class).toBe(cls)
      })

  it('every captured error has an expectation (a new capture needs one)', () => {
    for (const [dialect, cases] of Object.entries(captured)) expect(Object.keys(cases).sort()).toEqual(Object.keys(expected[dialect]).sort())
  })
})

describe('errors the captures cannot produce on the shared servers', () => {
  // In the adapters' shapes (a pg DatabaseError converted by @prisma/adapter-pg, a MariaDB SqlError by
  // @prisma/adapter-mariadb); shutting the shared servers down to capture them is not an option.
  const pg = (code: string, message: string) => Object.assign(new Error(message), { name: 'DriverAdapterError', cause: { originalCode: code, originalMessage: message, kind: 'postgres', code, severity: 'FATAL', message } })
  const my = (errno: number, message: string) => Object.assign(new Error(message), { name: 'DriverAdapterError', cause: { originalCode: String(errno), originalMessage: message, kind: 'mysql', code: errno, message, state: 'HY000' } })
  it.each([
    ['57P03 starting up', pg('57P03', 'the database system is starting up')],
    ['57P03 shutting down', pg('57P03', 'the database system is shutting down')],
    ['57P02 crash shutdown', pg('57P02', 'terminating connection because of crash of another server process')],
    ['08006 connection failure', pg('08006', 'connection failure')],
    ['MariaDB 1040 too many connections', my(1040, 'Too many connections')],
    ['MariaDB 1053 server shutdown', my(1053, 'Server shutdown in progress')],
    ['MariaDB 1290 read-only', my(1290, 'The MariaDB server is running with the --read-only option so it cannot execute this statement')],
    ['MySQL 2006 gone away', my(2006, 'MySQL server has gone away')],
    ['MySQL 2013 lost connection', my(2013, 'Lost connection to MySQL server during query')],
    ['pg Connection terminated (not converted by the adapter)', new Error('Connection terminated unexpectedly')],
    ['a socket error', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    ['Prisma P1001', Object.assign(new Error("Can't reach database server"), { code: 'P1001' })],
    ['PrismaClientInitializationError', Object.assign(new Error('Authentication failed against the database server'), { name: 'PrismaClientInitializationError', errorCode: 'P1000' })],
  ])('%s: unavailable', (_name, e) => {
    expect(classifyDbError(e).class).toBe('unavailable')
    expect(isConnectionError(e)).toBe(true)
  })

  it('a raw driver error (not through an adapter) is classified by its own code', () => {
    expect(classifyDbError(Object.assign(new Error('value too long for type character varying(3)'), { code: '22001', severity: 'ERROR' })).class).toBe('permanent')
    expect(classifyDbError(Object.assign(new Error("Data too long for column 'name' at row 1"), { code: 'ER_DATA_TOO_LONG', errno: 1406, sqlState: '22001' })).class).toBe('permanent')
  })

  it('MariaDB 1153, a statement bigger than max_allowed_packet, is the message\'s row: dead-lettered saying what to raise, not waited for', () => {
    const e = my(1153, "Got a packet bigger than 'max_allowed_packet' bytes")
    expect(classifyDbError(e).class).toBe('permanent')
    expect(isConnectionError(e)).toBe(false)
    expect(decideRetry(e, 0, 5, [100], new Map([['profile', '{}']]))).toMatchObject({ kind: 'deadLetter', reason: expect.stringContaining("raise max_allowed_packet on the replica's server") })
  })

  it.each([
    ['PostgreSQL 54000, a value too big for its index', pg('54000', 'index row size 3016 exceeds btree version 4 maximum 2704 for index "author_ref_nickname_idx"')],
    ['PostgreSQL 54001, JSON nested too deep', pg('54001', 'stack depth limit exceeded')],
    ['MariaDB 1118, a row too large', my(1118, 'Row size too large (> 8126)')],
  ])('%s: permanent (no retry can help)', (_name, e) => {
    expect(classifyDbError(e).class).toBe('permanent')
    expect(decideRetry(e, 0, 5, [100]).kind).toBe('deadLetter')
  })

  it('anything unknown is transient: it keeps its retries', () => {
    expect(classifyDbError(new Error('a handler failed')).class).toBe('transient')
    expect(classifyDbError(Object.assign(new Error('x'), { code: 'P2025' })).class).toBe('transient')
    expect(classifyDbError('a string').class).toBe('transient')
  })
})

describe('the dead-letter reason of a permanent error names the column and the value', () => {
  // Op values as decoded: decimals are strings (exact), integers numbers.
  const values = (o: Record<string, unknown>) => new Map(Object.entries(o))
  it.each([
    ['postgresql', 'numeric_overflow', { id: 10, amount: '123456.78', n: 5 }, 'amount', '"123456.78"'],
    ['postgresql', 'integer_text_out_of_range', { id: 10, n: 99999999999 }, 'n', '99999999999'],
    ['postgresql', 'too_long', { id: 10, code: 'abcdefgh', note: 'ok' }, 'code', '"abcdefgh"'],
    ['postgresql', 'not_null', { id: 10, n: null }, 'n', 'NULL'],
    ['postgresql', 'check', { id: 10, ck: -1 }, 'ck', '-1'],
    ['postgresql', 'bad_integer_text', { id: 10, n: 'abc' }, 'n', '"abc"'],
    ['postgresql', 'datetime_field_overflow', { id: 10, day: '2026-13-45' }, 'day', '"2026-13-45"'],
    ['postgresql', 'client_numeric_overflow', { id: 1, balance: '123456789012345678.5', rating: 3 }, 'balance', '"123456789012345678.5"'],
    ['mysql', 'out_of_range', { id: 10, amount: '123456.78' }, 'amount', '"123456.78"'],
    ['mysql', 'too_long', { id: 10, code: 'abcdefgh' }, 'code', '"abcdefgh"'],
    ['mysql', 'not_null', { id: 10, n: null }, 'n', 'NULL'],
    ['mysql', 'check', { id: 10, ck: -1 }, 'ck', '-1'],
    ['mysql', 'bad_datetime_text', { id: 10, at: 'not a date' }, 'at', '"not a date"'],
    ['sqlite', 'not_null', { id: 10, n: null }, 'n', 'NULL'],
  ])('%s %s', (dialect, name, ops, column, value) => {
    const e = error(dialect, name)
    const info = classifyDbError(e)
    expect(columnOfError(info, values(ops))).toBe(column)
    const decision = decideRetry(e, 0, 5, [100], values(ops))
    expect(decision.kind).toBe('deadLetter')
    expect(decision.reason).toContain(info.message)
    expect(decision.reason).toContain(`column ${column}, value ${value}`)
  })

  it('without the op, the reason still carries the database message and the column it named', () => {
    const info = classifyDbError(error('mysql', 'too_long'))
    expect(permanentReason(info, undefined)).toBe("Data too long for column 'code' at row 1 (1406); column code")
  })

  it('transient errors keep the retry schedule, and NonRetryableError still dead-letters at once', () => {
    expect(decideRetry(error('postgresql', 'foreign_key'), 0, 5, [100, 200])).toMatchObject({ kind: 'retry', delayMs: 100 })
    expect(decideRetry(error('mysql', 'deadlock'), 5, 5, [100])).toMatchObject({ kind: 'deadLetter', reason: expect.stringContaining('gave up after 6 attempts') })
    expect(decideRetry(new NonRetryableError('bad'), 0, 5, [100])).toMatchObject({ kind: 'deadLetter', reason: 'CQRS_NON_RETRYABLE bad' })
  })
})
