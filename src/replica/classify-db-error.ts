/**
 * What a database error means for the message that met it, per dialect. The one place that reads
 * SQLSTATEs, MySQL/MariaDB errnos, SQLite codes and driver or socket errors.
 *
 * - `unavailable`: the database is not there or not taking work (shutting down, connection refused
 *   or lost, too many connections, read-only, busy). The message is not at fault: hold the batch and
 *   wait with backoff, spending no retry.
 * - `permanent`: the replica's column can never hold the value (out of range, too long, NULL into
 *   NOT NULL, a check constraint, text the type cannot read, a row or index entry over the server's
 *   limits). Retrying cannot help: dead-letter now.
 * - `transient`: a later attempt may succeed (a foreign key whose parent has not arrived, a
 *   deadlock, a lock timeout, a serialization failure), and anything not known: the retry schedule.
 *
 * Prisma's driver adapters throw a `DriverAdapterError` whose `cause` holds the database's
 * `originalCode` and `originalMessage` (and a `kind`, `column` or `constraint` for some); the Prisma
 * client wraps it again in `meta.driverAdapterError`. Errors the adapters do not convert (a pg
 * "Connection terminated unexpectedly", a socket error) arrive as they are.
 */
export type DbErrorClass = 'unavailable' | 'permanent' | 'transient'

export interface DbErrorInfo {
  class: DbErrorClass
  /** SQLSTATE (PostgreSQL), errno (MySQL/MariaDB), `SQLITE_*` code, or the driver's code; null when none. */
  code: string | null
  /** The database's own message (else the error's). */
  message: string
  /** The column the database named, when it named one. */
  column: string | null
}

// PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
const PG_UNAVAILABLE = new Set([
  '57P01', // admin_shutdown: terminating connection due to administrator command
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: the database system is starting up / shutting down
  '57P05', // idle_session_timeout
  '53000', // insufficient_resources
  '53100', // disk_full
  '53200', // out_of_memory
  '53300', // too_many_connections
  '25006', // read_only_sql_transaction (a standby, or default_transaction_read_only)
])
const PG_PERMANENT = new Set([
  '23502', // not_null_violation
  '23514', // check_violation
  '54000', // program_limit_exceeded: e.g. a value too big for the btree index on its column
  '54001', // statement_too_complex: e.g. JSON nested deeper than the server's stack allows
])

// MySQL / MariaDB errnos, and the MariaDB connector's own (45xxx).
const MY_UNAVAILABLE = new Set([
  1040, // too many connections
  1053, // server shutdown in progress
  1081, // can't create IP socket
  1129, // host blocked
  1152, 1158, 1159, 1160, 1161, // aborted connection, network read/write errors and timeouts
  1184, // aborted new connection
  1203, 1226, // user has more than max_user_connections / exceeded a resource limit
  1290, // running with --read-only
  1836, // read-only mode
  1927, // connection was killed
  4031, // disconnected by the server for inactivity
  2002, 2003, 2006, 2013, 2055, // client: can't connect, server gone away, lost connection
  45001, 45009, 45012, 45013, 45019, 45026, 45027, 45028, 45035, 45037, 45039, 45042, 45061, // connector: socket closed or timed out, pool timeout or closed
])
const MY_PERMANENT = new Set([
  1048, // column cannot be null
  1153, // a statement bigger than max_allowed_packet: the message's row (a batch is split in halves first)
  1264, // out of range value for column
  1265, // data truncated for column
  1292, // incorrect date/time value
  1364, // field doesn't have a default value (a NOT NULL column left out)
  1366, // incorrect integer/decimal/string value
  1367, // illegal value
  1406, // data too long for column
  1118, // row size too large for the table
  1690, // value is out of range (arithmetic)
  3140, // invalid JSON text (MySQL)
  3819, // check constraint violated (MySQL)
  4025, // CONSTRAINT failed (MariaDB check, JSON_VALID included)
])

const SQLITE_UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|READONLY|CANTOPEN|IOERR|FULL|PROTOCOL)/
const SQLITE_PERMANENT = new Set(['SQLITE_CONSTRAINT_NOTNULL', 'SQLITE_CONSTRAINT_CHECK', 'SQLITE_CONSTRAINT_DATATYPE', 'SQLITE_TOOBIG', 'SQLITE_MISMATCH'])

/** Adapter `kind`s that carry no database code: the database cannot be reached or refuses us. */
const UNAVAILABLE_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections', 'TlsConnectionError', 'AuthenticationFailed', 'DatabaseDoesNotExist', 'DatabaseAccessDenied'])
/** Socket errors, and Prisma's codes for a database it cannot reach, log in to or find (as the adapter kinds above). */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'P1000', 'P1001', 'P1002', 'P1003', 'P1008', 'P1010', 'P1011', 'P1017', 'P2024'])
/** Driver messages without a code (pg throws these as plain Errors). */
const UNAVAILABLE_TEXT = /ECONNREFUSED|ECONNRESET|EPIPE|Connection terminated|connection (is )?closed|server closed the connection|Can't reach database|terminating connection|socket has (unexpectedly )?been (ended|closed)|pool timeout|Timed out fetching a new connection|timeout exceeded when trying to connect|not queryable|the database system is (starting up|shutting down|in recovery mode)|getaddrinfo/i

/** The database's code, message and named column, from the first error in the chain that has them. */
interface Found {
  code: string | null
  message: string | null
  column: string | null
  kinds: string[]
  codes: string[]
  texts: string[]
}

function inspect(e: unknown): Found {
  const found: Found = { code: null, message: null, column: null, kinds: [], codes: [], texts: [] }
  const seen = new Set<unknown>()
  const visit = (x: unknown, depth: number) => {
    if (depth > 6 || x === null || x === undefined || seen.has(x)) return
    if (typeof x === 'string') return void found.texts.push(x)
    if (typeof x !== 'object') return
    seen.add(x)
    const o = x as Record<string, any>
    if (found.code === null && o.originalCode !== undefined && o.originalCode !== null) {
      found.code = String(o.originalCode)
      found.message = typeof o.originalMessage === 'string' ? o.originalMessage : null
    }
    if (found.column === null) {
      if (typeof o.column === 'string' && o.column) found.column = o.column
      else if (Array.isArray(o.constraint?.fields) && typeof o.constraint.fields[0] === 'string') found.column = o.constraint.fields[0]
    }
    if (typeof o.kind === 'string') found.kinds.push(o.kind)
    if (o.code !== undefined && o.code !== null) found.codes.push(String(o.code))
    if (typeof o.errno === 'number') found.codes.push(String(o.errno))
    if (typeof o.errorCode === 'string') found.codes.push(o.errorCode) // PrismaClientInitializationError
    if (typeof o.message === 'string') found.texts.push(o.message)
    visit(o.cause, depth + 1)
    visit(o.meta?.driverAdapterError, depth + 1)
  }
  visit(e, 0)
  return found
}

type Dialect = 'postgresql' | 'mysql' | 'sqlite'

/** Which database a code comes from, by its shape: SQLSTATEs are five characters, errnos are numbers. */
function dialectOf(code: string): Dialect | null {
  if (code.startsWith('SQLITE_')) return 'sqlite'
  if (/^\d{4}$/.test(code) || /^45\d{3}$/.test(code)) return 'mysql' // no SQLSTATE class 45
  if (/^[0-9A-Z]{5}$/.test(code) && !/^P[1-9]\d{3}$/.test(code)) return 'postgresql' // not Prisma's P1001, P2020...
  return null
}

function classOfCode(code: string): DbErrorClass | null {
  switch (dialectOf(code)) {
    case 'postgresql':
      if (PG_UNAVAILABLE.has(code) || code.startsWith('08')) return 'unavailable'
      if (PG_PERMANENT.has(code) || code.startsWith('22')) return 'permanent'
      return 'transient'
    case 'mysql': {
      const n = Number(code)
      if (MY_UNAVAILABLE.has(n)) return 'unavailable'
      if (MY_PERMANENT.has(n)) return 'permanent'
      return 'transient'
    }
    case 'sqlite':
      if (SQLITE_UNAVAILABLE.test(code)) return 'unavailable'
      if (SQLITE_PERMANENT.has(code)) return 'permanent'
      return 'transient'
    default:
      return null
  }
}

/** The column named in a database message: PostgreSQL, MySQL/MariaDB and SQLite wordings. */
function columnInMessage(message: string): string | null {
  const patterns = [
    /null value in column "((?:[^"]|"")+)"/, // PostgreSQL 23502
    /for column '([^']+)'/, // MySQL 1264, 1406
    /for column `[^`]*`\.`[^`]*`\.`([^`]+)`/, // MariaDB 1366, 1292
    /for column `([^`]+)`/,
    /^Column '([^']+)' cannot be null/, // MySQL 1048
    /^Field '([^']+)' doesn't have a default value/, // MySQL 1364
    /NOT NULL constraint failed: [^.\s]+\.(\S+)/, // SQLite
  ]
  for (const p of patterns) {
    const m = p.exec(message)
    if (m) return m[1].replace(/""/g, '"')
  }
  return null
}

/** What to do about a row too big for one statement (errno 1153, or found before sending it). */
export const RAISE_MAX_PACKET = "raise max_allowed_packet on the replica's server, then send the dead letter back (cqrs dead-letters retry)"

/** Classify a database error (see the file's comment for the three classes). */
export function classifyDbError(e: unknown): DbErrorInfo {
  const f = inspect(e)
  const own = e instanceof Error ? e.message : String(e)
  const message = (f.message ?? own).replace(/\s+/g, ' ').trim()
  const column = f.column ?? (f.message ? columnInMessage(f.message) : null)
  // An adapter's originalCode first; else a driver's own code (a pg or mariadb error not converted).
  const code = f.code ?? f.codes.find((c) => dialectOf(c) !== null) ?? null
  let cls = code ? classOfCode(code) : null
  if (cls === null) {
    const unavailable = f.kinds.some((k) => UNAVAILABLE_KINDS.has(k)) || f.codes.some((c) => UNAVAILABLE_CODES.has(c) || classOfCode(c) === 'unavailable') || f.texts.some((t) => UNAVAILABLE_TEXT.test(t))
    cls = unavailable ? 'unavailable' : 'transient'
  }
  return { class: cls, code: code ?? f.codes[0] ?? null, message, column }
}

/** The op's columns and values, to name what a permanent error was about. */
export type OpValues = ReadonlyMap<string, unknown>

const show = (v: unknown): string => {
  if (v === null || v === undefined) return 'NULL'
  if (v instanceof Date) return v.toISOString()
  if (typeof v === 'string') return JSON.stringify(v.length > 200 ? `${v.slice(0, 200)}…` : v)
  if (typeof v === 'object') {
    const text = JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)) ?? String(v)
    return text.length > 200 ? `${text.slice(0, 200)}…` : text
  }
  return String(v)
}
const digitsBeforePoint = (v: unknown): number => {
  const t = typeof v === 'number' || typeof v === 'bigint' ? String(v) : typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) ? v : typeof v === 'object' && v !== null && /^-?\d+(\.\d+)?$/.test(String(v)) ? String(v) : ''
  return t ? t.replace(/^-/, '').split('.')[0].replace(/^0+/, '').length : -1
}

/**
 * The column a permanent error is about: the one the database named, else the op's column whose
 * value the message quotes, is too long for the `varchar(n)` it names, or is the widest number for
 * an overflow. Null when nothing points at one column.
 */
export function columnOfError(info: DbErrorInfo, values: OpValues): string | null {
  if (info.column) {
    if (values.has(info.column)) return info.column
    // MariaDB names a column check constraint `table.column`.
    const tail = info.column.split('.').pop()!
    if (values.has(tail)) return tail
  }
  const m = info.message
  const constraint = /CONSTRAINT `([^`]+)` failed/.exec(m)?.[1] ?? /check constraint "([^"]+)"/.exec(m)?.[1]
  if (constraint) {
    const tail = constraint.split('.').pop()!
    if (values.has(tail)) return tail
    // PostgreSQL names a column check `<table>_<column>_check`: the longest column name it ends with.
    const hit = [...values.keys()].filter((c) => tail.endsWith(`_${c}_check`)).sort((a, b) => b.length - a.length)[0]
    if (hit) return hit
  }
  const quoted = /: "((?:[^"\\]|\\.)*)"$/.exec(m)?.[1] ?? /^value "([^"]*)" is out of range/.exec(m)?.[1] ?? /value: '([^']*)'/.exec(m)?.[1]
  if (quoted !== undefined) {
    for (const [c, v] of values) if (v !== null && v !== undefined && (String(v) === quoted || (v instanceof Date && v.toISOString() === quoted))) return c
  }
  const width = /character(?: varying)?\((\d+)\)/.exec(m)?.[1]
  if (width) {
    for (const [c, v] of values) if (typeof v === 'string' && [...v].length > Number(width)) return c
  }
  if (/out of range|overflow/i.test(m)) {
    let best: string | null = null
    let most = 0
    for (const [c, v] of values) {
      const d = digitsBeforePoint(v)
      if (d > most) [best, most] = [c, d]
    }
    return best
  }
  return null
}

/**
 * The dead-letter reason of a permanent error: the database's message, the column and the op's
 * value for it, e.g. `numeric field overflow (22003); column balance, value 123456789012345678.5`.
 */
export function permanentReason(info: DbErrorInfo, values: OpValues | undefined): string {
  const code = info.code ? ` (${info.code})` : ''
  if (info.code === '1153') return `${info.message}${code}; this message's row is too big for one statement: ${RAISE_MAX_PACKET}`
  const column = values ? columnOfError(info, values) : info.column
  if (!column) return `${info.message}${code}; the replica's column cannot hold this message's value`
  const value = values?.has(column) ? `, value ${show(values.get(column))}` : ''
  return `${info.message}${code}; column ${column}${value}`
}
