/**
 * Runs the library's own SQL (outbox claims, replica batches). Prisma's raw queries cost several
 * times the SQL itself when a parameter is large (a 200-row JSON batch: ~12 ms against ~3 ms), so on
 * PostgreSQL and MySQL the hot paths talk to a driver adapter of their own, made from the client's
 * adapter factory (a separate, small pool). SQLite, and clients without an adapter, go through Prisma.
 */
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Writable } from 'node:stream'
import { openAdapter, pgClientOf, pgPoolOf, type AdapterConnection, type AdapterTransaction } from './internals.js'

export interface SqlRunner {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>
  execute(sql: string, params?: unknown[]): Promise<number>
  /** Run `fn` in one transaction; commit if it resolves, roll back if it throws. */
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>, options?: { isolationLevel?: 'READ COMMITTED' }): Promise<T>
  /**
   * PostgreSQL inside a transaction only: run `COPY ... FROM STDIN` with `data` (COPY text lines);
   * returns the rows copied. Absent where the runner cannot (other databases, Prisma's raw queries).
   */
  copyIn?(sql: string, data: string | Buffer): Promise<number>
  /**
   * PostgreSQL: the output of `COPY ... TO STDOUT`, chunk by chunk, on a connection of its own (one
   * statement, one snapshot). `settings` are set for the statement alone (`SET LOCAL` in a read-only
   * transaction around it). Throws where the runner cannot (no pg driver adapter).
   */
  copyOut?(sql: string, settings?: Record<string, string>): AsyncIterable<Buffer>
  /**
   * PostgreSQL and MySQL (their driver adapters): a connection of the runner's own pool that takes
   * several statements per round trip. Null where the runner cannot (SQLite, Prisma's raw queries).
   */
  session?(): Promise<SqlSession | null>
  close(): Promise<void>
}

/**
 * A pooled connection taking several statements (no parameters) in one round trip: on PostgreSQL one
 * simple query (a failed statement skips the rest), on MySQL pipelined queries. A statement's rows
 * come back with values as text or the driver's plain types, never parsed as JSON.
 */
export interface SqlSession {
  /** Run `statements` in order; the rows of each. */
  run(statements: string[]): Promise<Array<Array<Record<string, unknown>>>>
  /** Back to the pool; with an error, the connection is closed instead (which rolls back). */
  release(error?: Error): void
  /** PostgreSQL: the names of the statements PREPAREd on this connection ({@link runSessionScript}). */
  readonly prepared?: Set<string>
}

/**
 * Run `script` (PostgreSQL statements without parameters, `;`-separated, in a `BEGIN ... COMMIT` of
 * its own) as one simple-query message on a session of `runner`: one round trip for all of them;
 * each statement's rows (values as text). A script that fails is rolled back (the statements after
 * the failed one were skipped, and its transaction stays open and aborted). Null where the runner has
 * no session: the caller sends the statements one by one.
 */
export function runScript(runner: SqlRunner, script: string): Promise<Array<Array<Record<string, unknown>>> | null> {
  return runSessionScript(runner, () => ({ script, prepares: [], skip: 0 }))
}

/**
 * {@link runScript} of a script `build` makes for the session's connection, given the names of the
 * statements PREPAREd on it; the rows of its statements after the first `skip` (its BEGIN and
 * PREPAREs). Once the script succeeded, the names it `prepares` are recorded on the connection.
 * After a failure the record is read again from the connection, and the error thrown: where the
 * connection did not hold what was recorded ({@link preparedStatementTrouble}: a pooler that hands
 * each transaction another server connection, a `DISCARD ALL`), for the caller to go on without.
 */
export async function runSessionScript(
  runner: SqlRunner,
  build: (prepared: ReadonlySet<string>) => { script: string; prepares: string[]; skip: number },
): Promise<Array<Array<Record<string, unknown>>> | null> {
  const session = await runner.session?.()
  if (!session) return null
  let broken: Error | undefined
  const prepared = session.prepared ?? new Set<string>()
  const { script, prepares, skip } = build(prepared)
  try {
    const rows = await session.run([script])
    for (const name of prepares) prepared.add(name)
    return rows.slice(skip)
  } catch (e) {
    await session.run(['ROLLBACK']).catch((err: Error) => (broken = err))
    // A PREPARE outlives the rollback of its transaction: which ones ran before the failure, the
    // connection itself says (so the next script does not prepare them again, which would fail).
    if (session.prepared && (prepares.length > 0 || preparedStatementTrouble(e))) {
      prepared.clear()
      if (!broken) {
        const rows = await session.run([`SELECT name FROM pg_prepared_statements WHERE left(name, 5) = 'cqrs_'`]).catch((err: Error) => ((broken = err), [[]]))
        for (const r of rows[0] ?? []) prepared.add(String(r.name))
      }
    }
    throw e
  } finally {
    session.release(broken)
  }
}

/**
 * A PostgreSQL error that says the connection does not hold the prepared statements recorded for it
 * (no such statement, or one of that name already there), or that one cannot be prepared as written.
 */
export function preparedStatementTrouble(e: unknown): boolean {
  const code = (e as { code?: unknown }).code
  return code === '26000' || code === '42P05' || code === '42P18' || code === '42P08' || (code === '0A000' && /cached plan/.test(String((e as Error).message)))
}

/** Per pooled pg connection, the statements PREPAREd on it (a connection the pool replaces starts empty). */
const PREPARED = new WeakMap<object, Set<string>>()

/** Every column as the text PostgreSQL sent: no value is parsed by pg's type parsers (JSON, int8). */
const TEXT_TYPES = { getTypeParser: () => (text: string) => text }

const argTypes = (params: unknown[]) => params.map((p) => ({ scalarType: 'unknown' as const, arity: Array.isArray(p) ? ('list' as const) : ('scalar' as const) }))

/**
 * A driver adapter's error says only its kind (`ValueOutOfRange`); the database's own words are in its
 * cause. Put them in the message, which is what a user reads.
 */
function withDatabaseMessage(e: unknown): never {
  const cause = (e as { cause?: { originalMessage?: unknown; kind?: unknown } }).cause
  if (e instanceof Error && typeof cause?.originalMessage === 'string' && !e.message.includes(cause.originalMessage)) e.message = `${cause.originalMessage} (${e.message})`
  throw e
}

class AdapterQueries {
  constructor(protected readonly q: AdapterConnection | AdapterTransaction) {}
  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    const r = await this.q.queryRaw({ sql, args: params, argTypes: argTypes(params) }).catch(withDatabaseMessage)
    const names = r.columnNames
    const out: T[] = new Array(r.rows.length)
    for (let j = 0; j < r.rows.length; j++) {
      const row = r.rows[j]
      const o: Record<string, unknown> = {}
      for (let i = 0; i < names.length; i++) o[names[i]] = row[i]
      out[j] = o as T
    }
    return out
  }
  execute(sql: string, params: unknown[] = []): Promise<number> {
    return this.q.executeRaw({ sql, args: params, argTypes: argTypes(params) }).catch(withDatabaseMessage)
  }
}

/**
 * The slice of pg-copy-streams that COPY uses. It is an optional peer: imported on the first COPY,
 * so a user without it (MySQL, SQLite) can load the library, and typed here so the user's `tsc`
 * needs no types of it.
 */
interface PgCopyStreams {
  from(sql: string): Writable & { rowCount: number }
  to(sql: string): AsyncIterable<Buffer>
}

let copyStreams: Promise<PgCopyStreams> | undefined
function pgCopyStreams(): Promise<PgCopyStreams> {
  copyStreams ??= (import('pg-copy-streams') as Promise<unknown> as Promise<PgCopyStreams & { default?: PgCopyStreams }>).then(
    (m) => (typeof m.from === 'function' ? m : m.default!),
    (e) => {
      copyStreams = undefined
      throw new Error(`COPY on PostgreSQL needs the pg-copy-streams package (an optional peer of cqrs-sync): npm install pg-copy-streams. (${(e as Error).message})`)
    },
  )
  return copyStreams
}

class AdapterTxRunner extends AdapterQueries implements SqlRunner {
  readonly copyIn?: (sql: string, data: string | Buffer) => Promise<number>
  constructor(tx: AdapterTransaction) {
    super(tx)
    const pg = pgClientOf(tx)
    if (pg)
      this.copyIn = async (sql, data) => {
        const stream = pg.query((await pgCopyStreams()).from(sql))
        await pipeline(Readable.from([data]), stream)
        return stream.rowCount
      }
  }
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
    return fn(this) // already in one
  }
  async close() {}
}

class AdapterRunner extends AdapterQueries implements SqlRunner {
  constructor(private readonly adapter: AdapterConnection) {
    super(adapter)
  }
  async transaction<T>(fn: (tx: SqlRunner) => Promise<T>, options: { isolationLevel?: 'READ COMMITTED' } = {}): Promise<T> {
    const my = mariadbPoolOf(this.adapter)
    if (my) return this.mariadbTransaction(my, fn, options.isolationLevel)
    const tx = await this.adapter.startTransaction(options.isolationLevel)
    // The adapter contract: without a "phantom query" the caller sends COMMIT/ROLLBACK itself.
    const finish = async (sql: 'COMMIT' | 'ROLLBACK') => {
      if (!tx.options.usePhantomQuery) await tx.executeRaw({ sql, args: [], argTypes: [] })
      await (sql === 'COMMIT' ? tx.commit() : tx.rollback())
    }
    let result: T
    try {
      result = await fn(new AdapterTxRunner(tx))
    } catch (e) {
      await finish('ROLLBACK').catch(() => tx.rollback().catch(() => {}))
      throw e
    }
    await finish('COMMIT')
    return result
  }
  async *copyOut(sql: string, settings: Record<string, string> = {}): AsyncIterable<Buffer> {
    const pool = pgPoolOf(this.adapter)
    if (!pool) throw new Error('COPY TO needs the pg driver adapter (@prisma/adapter-pg)')
    const client = await pool.connect()
    const local = Object.entries(settings)
    let end: 'done' | 'stopped' | Error = 'stopped'
    try {
      if (local.length) {
        await client.query('BEGIN READ ONLY')
        for (const [name, value] of local) await client.query(`SELECT set_config('${name.replace(/'/g, "''")}', '${value.replace(/'/g, "''")}', true)`)
      }
      for await (const chunk of client.query((await pgCopyStreams()).to(sql))) yield chunk
      if (local.length) await client.query('COMMIT')
      end = 'done'
    } catch (e) {
      end = e as Error
      throw e
    } finally {
      // A COPY left unread (the caller stopped early) leaves the connection mid-protocol: drop it.
      client.release(end === 'done' ? undefined : end === 'stopped' ? true : end)
    }
  }
  async session(): Promise<SqlSession | null> {
    const pg = pgPoolOf(this.adapter)
    if (pg) {
      const client = (await pg.connect()) as unknown as PgSimpleClient
      let prepared = PREPARED.get(client)
      if (!prepared) PREPARED.set(client, (prepared = new Set()))
      return {
        run: async (statements) => {
          const r = await client.query({ text: statements.join('; '), types: TEXT_TYPES })
          return (Array.isArray(r) ? r : [r]).map((x) => x.rows)
        },
        release: (error) => client.release(error),
        prepared,
      }
    }
    const my = mariadbPoolOf(this.adapter)
    if (!my) return null
    const conn = await my.getConnection()
    return {
      // The driver pipelines queries issued together on one connection (its default).
      run: (statements) => Promise.all(statements.map((sql) => conn.query(sql).then((r) => (Array.isArray(r) ? r : [])))),
      release: (error) => void endConnection(conn, !!error),
    }
  }
  /**
   * MySQL/MariaDB: the transaction on a connection of the adapter's pool driven by the `mariadb` driver
   * itself, without the adapter's work per call and per value (it doubled a replica batch's CPU).
   * Statements go on the driver's text protocol (`query`, the values escaped into the SQL), whatever
   * the adapter's `useTextProtocol`: for a replica batch's multi-row upsert the server spends a
   * quarter less CPU than on a prepared statement with thousands of bound values, and every value
   * we send is already text, a number or bytes (driverValue), so both protocols store the same
   * (integration/exact/replica-edge-values.test.ts checks it on MariaDB). Errors carry the database's
   * code and message as the adapter's do ({@link asAdapterError}).
   */
  private async mariadbTransaction<T>(my: MariadbPool, fn: (tx: SqlRunner) => Promise<T>, isolationLevel?: string): Promise<T> {
    const conn = await my.getConnection().catch(asAdapterError)
    // Sent now, awaited by the first statement (MariadbTx.run), which goes out behind them when it
    // reads: one round trip less.
    const begun = (isolationLevel ? conn.query(`SET TRANSACTION ISOLATION LEVEL ${isolationLevel}`).then(() => conn.query('BEGIN')) : conn.query('BEGIN')).catch(asAdapterError)
    begun.catch(() => {}) // awaited below
    const tx = new MariadbTx(conn, begun)
    let broken = false
    try {
      const result = await fn(tx)
      await begun
      await conn.query('COMMIT').catch(asAdapterError)
      return result
    } catch (e) {
      await conn.query('ROLLBACK').catch(() => (broken = true))
      throw e
    } finally {
      await endConnection(conn, broken)
    }
  }
  close(): Promise<void> {
    return this.adapter.dispose()
  }
}

/** A transaction of {@link AdapterRunner.mariadbTransaction}. */
class MariadbTx implements SqlRunner {
  constructor(
    private readonly conn: MariadbConnection,
    private readonly begun: Promise<unknown>,
  ) {}
  /**
   * A statement, its result once BEGIN has succeeded too. A read goes out at once, pipelined behind
   * BEGIN (had BEGIN failed, it ran on its own and changed nothing); a write only after BEGIN.
   */
  private async run(sql: string, params: unknown[]): Promise<unknown> {
    if (!READ.test(sql)) await this.begun
    const result = this.conn.query(sql, params).catch(asAdapterError)
    result.catch(() => {}) // BEGIN's error comes first
    await this.begun
    return result
  }
  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.run(sql, params)) as T[]
  }
  async execute(sql: string, params: unknown[] = []): Promise<number> {
    const r = (await this.run(sql, params)) as { affectedRows?: number }
    return Number(r.affectedRows ?? 0)
  }
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
    return fn(this) // already in one
  }
  async close() {}
}

/**
 * A `mariadb` driver error as @prisma/adapter-mariadb throws it: the database's errno and message in
 * `cause` (`originalCode`, `originalMessage`), which the replica's error classification and the
 * dead-letter reason read, and the message {@link withDatabaseMessage} gives an adapter's error. Other errors
 * (a socket's) pass as they are, as the adapter passes them.
 */
function asAdapterError(e: unknown): never {
  const d = e as { errno?: unknown; sqlMessage?: unknown }
  if (typeof d?.errno !== 'number' || (typeof d.sqlMessage !== 'string' && d.sqlMessage !== null)) throw e
  const originalMessage = typeof d.sqlMessage === 'string' ? d.sqlMessage : 'N/A'
  return withDatabaseMessage(Object.assign(new Error(`errno ${d.errno}`), { name: 'DriverAdapterError', cause: { originalCode: String(d.errno), originalMessage } }))
}

/** Back to the pool, or closed when it may be left mid-transaction (closing rolls back): never reused broken. */
function endConnection(conn: MariadbConnection, broken: boolean): Promise<void> {
  return Promise.resolve(broken ? conn.destroy() : conn.release()).catch(() => {})
}

/** A pg client's simple query with a types override: one result per statement (an array when several). */
interface PgSimpleClient {
  query(q: { text: string; types: typeof TEXT_TYPES }): Promise<{ rows: Array<Record<string, string | null>> } | Array<{ rows: Array<Record<string, string | null>> }>>
  release(error?: Error): void
}

/** The slice of a mariadb pool connection a session uses. */
interface MariadbConnection {
  query(sql: string, params?: unknown[]): Promise<unknown>
  release(): Promise<void>
  destroy(): void | Promise<void>
}

/** A statement that only reads (a locking read included). */
const READ = /^\s*SELECT\b/i

interface MariadbPool {
  getConnection(): Promise<MariadbConnection>
}

/** The mariadb pool behind @prisma/adapter-mariadb; null for another adapter (or a changed one). */
function mariadbPoolOf(adapter: AdapterConnection): MariadbPool | null {
  const a = adapter as unknown as { provider?: string; underlyingDriver?: () => unknown }
  if (a.provider !== 'mysql' || typeof a.underlyingDriver !== 'function') return null
  const pool = a.underlyingDriver() as { getConnection?: unknown } | undefined
  return pool && typeof pool.getConnection === 'function' ? (pool as MariadbPool) : null
}

/** Through Prisma's raw queries (SQLite; a client without an adapter; inside a Prisma transaction). */
export class PrismaRunner implements SqlRunner {
  constructor(
    readonly client: any,
    private readonly txOptions = { timeout: 60_000, maxWait: 30_000 },
  ) {}
  query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.client.$queryRawUnsafe(sql, ...params)
  }
  async execute(sql: string, params: unknown[] = []): Promise<number> {
    return Number(await this.client.$executeRawUnsafe(sql, ...params))
  }
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>, options: { isolationLevel?: 'READ COMMITTED' } = {}): Promise<T> {
    if (typeof this.client.$transaction !== 'function') return fn(this) // a transaction client already
    return this.client.$transaction((tx: any) => fn(new PrismaRunner(tx)), { ...this.txOptions, ...(options.isolationLevel ? { isolationLevel: 'ReadCommitted' } : {}) })
  }
  async close() {}
}

/**
 * A runner for `client`: its own adapter connection on PostgreSQL and MySQL (opened lazily, closed by
 * `close()`), Prisma otherwise.
 */
export function sqlRunner(client: any, provider: string): SqlRunner {
  if (provider === 'sqlite') return new PrismaRunner(client)
  let opened: Promise<SqlRunner> | null = null
  const get = () =>
    (opened ??= openAdapter(client).then((a) => (a ? new AdapterRunner(a) : new PrismaRunner(client)), (e) => {
      opened = null
      throw e
    }))
  return {
    query: async (sql, params) => (await get()).query(sql, params),
    execute: async (sql, params) => (await get()).execute(sql, params),
    transaction: async (fn, options) => (await get()).transaction(fn, options),
    async *copyOut(sql, settings) {
      const r: SqlRunner = await get()
      if (!r.copyOut) throw new Error('COPY TO needs the pg driver adapter (@prisma/adapter-pg)')
      yield* r.copyOut(sql, settings)
    },
    async session() {
      const r: SqlRunner = await get()
      return r.session ? r.session() : null
    },
    async close() {
      if (opened) await (await opened.catch(() => null))?.close()
      opened = null
    },
  }
}
