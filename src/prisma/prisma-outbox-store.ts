import type { Logger } from '../core/logger.js'
import type { ClaimOptions, OutboxEvents, OutboxRow, OutboxStore, SnapshotHolder } from '../master/outbox-store.js'
import type { ModelMeta, Provider } from './internals.js'
import { ClaimFloor } from './claim-floor.js'
import { listenForOutbox, outboxLeaderSql, outboxNotifyInstalledSql, triggerState, type OutboxColumns } from './outbox-notify.js'
import { traceColumnOf } from './outbox-trace.js'
import { quoteIdent } from './sql.js'
import { sqlRunner, type SqlRunner, type SqlSession } from './sql-runner.js'

/**
 * The outbox on PostgreSQL, MySQL/MariaDB and SQLite through a Prisma client.
 * Claiming locks the oldest rows with `FOR UPDATE` (not SKIP LOCKED): a second relay waits for the
 * first to commit instead of taking younger rows, so events of one row leave in order and none twice.
 * SQLite has one writer: a dummy write takes the write lock first. A relay that dies mid-batch has its
 * transaction rolled back by the database, and its rows are taken by the next claim.
 */
export class PrismaOutboxStore implements OutboxStore {
  private readonly table: string
  private readonly col: (field: string) => string
  private readonly sql: SqlRunner
  /** Outboxes migrated before the trace column existed still work, without trace context. */
  private readonly traced: boolean
  /** PostgreSQL: where claims start looking (see claim-floor.ts). */
  private readonly floor = new ClaimFloor()

  constructor(
    private readonly client: any,
    private readonly provider: Provider,
    private readonly meta: ModelMeta,
    /**
     * PostgreSQL: LISTEN for the outbox trigger's NOTIFY (see outbox-notify.ts): `true` for a separate
     * relay; `'row-trigger'` (the in-process relay, which its own commits kick) only while the
     * row-level trigger is installed, to lead or follow (it looks for it every `recheckEveryMs`).
     */
    private readonly options: { listen?: boolean | 'row-trigger'; electEveryMs?: number; recheckEveryMs?: number } = {},
  ) {
    this.sql = sqlRunner(client, provider)
    this.table = quoteIdent(provider, meta.table)
    this.traced = traceColumnOf(meta) !== null
    this.col = (field) => quoteIdent(provider, meta.fields.find((f) => f.name === field)?.column ?? field)
  }

  /** PostgreSQL only: its `FOR UPDATE` never waits for rows the WHERE clause leaves out. */
  get pipelines(): boolean {
    return this.provider === 'postgresql'
  }

  async claim(limit: number, publish: (rows: OutboxRow[]) => Promise<void>, options: ClaimOptions = {}): Promise<number> {
    const session = this.provider === 'sqlite' ? null : await this.sql.session?.()
    if (session) return this.claimInSession(session, limit, publish, options)
    const { table, col } = this
    // A cheap look without a transaction first: an idle relay polls often.
    const peek = await this.sql.query(`SELECT ${col('id')} FROM ${table} LIMIT 1`)
    if (peek.length === 0) return 0
    // SQLite: Prisma's adapter has one connection, and a query made outside any transaction while this
    // one is open runs inside it. So a failed publish does not roll back (which would take such a
    // write with it): the transaction has changed nothing yet, it commits, and the error is rethrown.
    let failed: { error: unknown } | null = null
    const claimed = await this.sql.transaction(
      async (tx) => {
        if (this.provider === 'sqlite') await tx.execute(`UPDATE ${table} SET ${col('pk')} = ${col('pk')} WHERE ${col('id')} = -1`)
        const rows = (await tx.query<ClaimedRow>(this.claimSql(limit, options, null))).map(outboxRow)
        if (rows.length === 0) return 0
        try {
          await publish(rows)
        } catch (error) {
          if (this.provider !== 'sqlite') throw error
          failed = { error }
          return 0
        }
        await tx.execute(this.deleteSql(rows.map((r) => r.id)))
        return rows.length
      },
      // MySQL: no gap locks, so the user's inserts into the outbox never wait for a relay.
      this.provider === 'mysql' ? { isolationLevel: 'READ COMMITTED' } : {},
    )
    if (failed) throw (failed as { error: unknown }).error
    return claimed
  }

  /**
   * PostgreSQL and MySQL: the same claim in two round trips instead of five or six (peek, BEGIN,
   * SELECT, DELETE, COMMIT; MySQL's isolation level first): the statements up to the locking SELECT go
   * as one message, and once published `DELETE ...; COMMIT` as one. An empty claim costs its COMMIT.
   * On PostgreSQL the commit does not wait for its WAL flush (`synchronous_commit` off for this
   * transaction alone): if PostgreSQL crashes before the flush, the deletion is lost and the rows are
   * published again, as after a relay crash (at least once; the replica's version gate drops the
   * copies). A later commit cannot survive that crash without it (the WAL is flushed in order), and
   * the user's own writes keep their setting, so G1 holds.
   */
  private async claimInSession(session: SqlSession, limit: number, publish: (rows: OutboxRow[]) => Promise<void>, options: ClaimOptions): Promise<number> {
    // The claim's rows stay locked while it publishes (its transaction idle meanwhile). A relay that
    // stops there (frozen, or cut off by a network partition, its connection still open as far as the
    // server knows) would keep them locked from every other relay, and stall the outbox, for as long
    // as TCP takes to notice (hours): the server ends such a transaction instead, well after the
    // publish would have timed out. PostgreSQL for this transaction alone; MariaDB and MySQL for the
    // session, set back once the claim ends: MariaDB's limit on an idle transaction, and on MySQL,
    // which has none, its limit on an idle session (`wait_timeout`: the server closes the connection,
    // which rolls the transaction back).
    const idleLimitMs = Math.max(15_000, 3 * Math.ceil(options.publishWithinMs ?? 5000))
    const idleLimit = this.provider !== 'mysql' ? null : (await this.isMariadb()) ? 'idle_transaction_timeout' : 'wait_timeout'
    const begin =
      this.provider === 'postgresql'
        ? ['BEGIN', 'SET LOCAL synchronous_commit TO off', `SET LOCAL idle_in_transaction_session_timeout = ${idleLimitMs}`]
        : [...(idleLimit ? [`SET SESSION ${idleLimit} = ${Math.ceil(idleLimitMs / 1000)}`] : []), 'SET TRANSACTION ISOLATION LEVEL READ COMMITTED', 'BEGIN']
    const end = idleLimit ? [`SET SESSION ${idleLimit} = DEFAULT`] : []
    // PostgreSQL 13+: the claim starts above the floor, and the xids read around it let the floor move (claim-floor.ts).
    // Not for a claim of old rows alone (a follower's), which passes the young ones below its reach.
    const floored = this.provider === 'postgresql' && !options.olderThanMs && (await this.snapshotsReadable()) ? this.floor.start(performance.now(), options.fromStart) : null
    const claim = this.claimSql(limit, options, floored?.floor ?? null)
    let clean = false
    let committed = false
    try {
      const results = await session.run(floored ? [...begin, XMIN_SQL, claim, XMAX_SQL] : [...begin, claim])
      const rows = (results[begin.length + (floored ? 1 : 0)] as unknown as ClaimedRow[]).map(outboxRow)
      if (rows.length > 0) {
        try {
          await publish(rows)
        } catch (error) {
          await session.run(['ROLLBACK', ...end])
          clean = true
          throw error
        }
      }
      await session.run([...(rows.length > 0 ? [this.deleteSql(rows.map((r) => r.id))] : []), 'COMMIT', ...end])
      clean = committed = true
      if (floored) this.floor.done(floored.ticket, xid(results[begin.length]), xid(results[begin.length + 2]), rows.map((r) => r.id), rows.length < limit)
      return rows.length
    } finally {
      // Its rows are back in the outbox, perhaps below the floor.
      if (!committed) this.floor.reset()
      // A connection left inside the transaction is closed, which rolls it back.
      session.release(clean ? undefined : new Error('outbox claim did not finish its transaction'))
    }
  }

  private snapshots: Promise<boolean> | null = null
  private mariadb: Promise<boolean> | null = null

  /** MySQL provider: whether the server is MariaDB (which has `idle_transaction_timeout`; MySQL does not). Read once. */
  private isMariadb(): Promise<boolean> {
    this.mariadb ??= this.sql.query<{ v: string }>('SELECT VERSION() AS v').then(
      (rows) => /mariadb/i.test(String(rows[0]?.v ?? '')),
      () => ((this.mariadb = null), false), // asked again next time
    )
    return this.mariadb
  }

  /** PostgreSQL 13 or newer has `pg_current_snapshot()`; on an older one claims keep no floor. Read once. */
  private snapshotsReadable(): Promise<boolean> {
    this.snapshots ??= this.sql.query<{ ok: boolean }>(`SELECT current_setting('server_version_num')::int >= 130000 AS ok`).then(
      (rows) => rows[0]?.ok === true,
      () => ((this.snapshots = null), false), // asked again next time
    )
    return this.snapshots
  }

  /**
   * The oldest `limit` rows (above `floor`), locked (but on SQLite, whose single writer the claim
   * holds already).
   */
  private claimSql(limit: number, options: ClaimOptions, floor: bigint | null): string {
    const { table, col } = this
    const lock = this.provider === 'sqlite' ? '' : ' FOR UPDATE'
    // Ids come from the database (integers), so they are inlined as they are.
    const where = [
      ...(floor === null ? [] : [`${col('id')} > ${floor.toString()}`]),
      ...(options.exclude?.length ? [`${col('id')} NOT IN (${options.exclude.map((id) => BigInt(id).toString()).join(',')})`] : []),
      // PostgreSQL only (a follower's claim; see RelayRole).
      ...(options.olderThanMs ? [`${col('createdAt')} < CURRENT_TIMESTAMP - make_interval(secs => ${Math.floor(options.olderThanMs) / 1000})`] : []),
    ]
    const trace = this.traced ? `, ${col('traceContext')} AS trace_context` : ''
    return `SELECT ${col('id')} AS id, ${col('cqrsId')} AS cqrs_id, ${col('routingKey')} AS routing_key, ${col('format')} AS format, ${col('body')} AS body${trace} FROM ${table}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${col('id')} LIMIT ${Math.floor(limit)}${lock}`
  }

  /** Ids come from the database (integers), so they are inlined as they are. */
  private deleteSql(ids: ReadonlyArray<bigint | number>): string {
    return `DELETE FROM ${this.table} WHERE ${this.col('id')} IN (${ids.join(',')})`
  }

  /** PostgreSQL with `listen`: the outbox trigger's NOTIFY wakes (or feeds) the relay; elsewhere a no-op (poll only). */
  async watch(events: OutboxEvents, logger: Logger): Promise<() => Promise<void>> {
    if (this.provider !== 'postgresql' || !this.options.listen) return async () => {}
    const column = (field: string) => this.meta.fields.find((f) => f.name === field)?.column ?? field
    const columns: OutboxColumns = { id: column('id'), cqrsId: column('cqrsId'), routingKey: column('routingKey'), format: column('format'), body: column('body'), traceContext: traceColumnOf(this.meta) }
    const { electEveryMs, recheckEveryMs } = this.options
    const listener = await listenForOutbox(this.client, this.meta.table, events, logger, { columns, electEveryMs, recheckEveryMs, rowTriggerOnly: this.options.listen === 'row-trigger' })
    return async () => listener?.close()
  }

  /**
   * Delete published rows by id. PostgreSQL: in one round trip, and like a claim's deletion without
   * waiting for its WAL flush (a deletion lost to a crash publishes the rows again: at least once).
   */
  async deletePublished(ids: ReadonlyArray<bigint | number>): Promise<void> {
    if (ids.length === 0) return
    const sql = this.deleteSql(ids)
    const session = this.provider === 'postgresql' ? await this.sql.session?.() : null
    if (!session) {
      await this.sql.execute(sql)
      return
    }
    let error: Error | undefined
    try {
      await session.run(['BEGIN', 'SET LOCAL synchronous_commit TO off', sql, 'COMMIT'])
    } catch (e) {
      error = e as Error
      throw e
    } finally {
      // A connection that failed mid-transaction is closed, which rolls it back.
      session.release(error)
    }
  }

  close(): Promise<void> {
    return this.sql.close()
  }

  /**
   * PostgreSQL: the outbox's trigger that wakes relays (`row`: the row-level NOTIFY trigger; `wake`:
   * the wake-up trigger; the `statement`-level NOTIFY trigger of earlier versions; or null) and the
   * session of the relay that leads (with the first two); elsewhere null.
   */
  async leadership(): Promise<OutboxLeadership | null> {
    if (this.provider !== 'postgresql') return null
    const trigger = triggerState(await this.sql.query<{ name: string; row_level: boolean; relid: string }>(outboxNotifyInstalledSql(this.meta.table)))
    if (trigger.level !== 'row' && trigger.level !== 'wake') return { notifyTrigger: trigger.level === 'none' ? null : 'statement', leader: null }
    const r = (await this.sql.query<{ pid: number; application_name: string | null; client_addr: string | null; backend_start: Date | string }>(outboxLeaderSql(trigger.relid)))[0]
    const leader = r ? { pid: Number(r.pid), application: r.application_name || null, clientAddr: r.client_addr ?? null, since: r.backend_start instanceof Date ? r.backend_start.toISOString() : String(r.backend_start) } : null
    return { notifyTrigger: trigger.level, leader }
  }

  /**
   * PostgreSQL: the client session of this database with the oldest transaction that holds a snapshot
   * (`backend_xmin`; sessions of other databases do not hold back this one's deleted rows); elsewhere null.
   */
  async oldestSnapshot(minAgeMs: number): Promise<SnapshotHolder | null> {
    if (this.provider !== 'postgresql') return null
    const rows = await this.sql.query<{ pid: number; age_ms: string | number; state: string | null; usename: string | null; application_name: string | null; query: string | null }>(
      `SELECT pid, (extract(epoch FROM clock_timestamp() - xact_start) * 1000)::bigint AS age_ms, state, usename, application_name, left(query, 120) AS query FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND backend_xmin IS NOT NULL AND pid <> pg_backend_pid() AND xact_start <= clock_timestamp() - make_interval(secs => $1::float8 / 1000) ORDER BY xact_start LIMIT 1`,
      [minAgeMs],
    )
    const r = rows[0]
    if (!r) return null
    return { pid: Number(r.pid), ageMs: Number(r.age_ms), state: r.state ?? 'unknown', user: r.usename, application: r.application_name || null, query: r.query ?? '' }
  }

  async backlog(): Promise<{ count: number; oldestAt: Date | null }> {
    const rows = await this.sql.query<{ n: bigint | number | string; oldest: Date | string | number | null }>(`SELECT COUNT(*) AS n, MIN(${this.col('createdAt')}) AS oldest FROM ${this.table}`)
    const r = rows[0]
    const oldest = r?.oldest == null ? null : r.oldest instanceof Date ? r.oldest : new Date(typeof r.oldest === 'number' ? r.oldest : String(r.oldest).replace(' ', 'T') + (/[zZ+]/.test(String(r.oldest).slice(10)) ? '' : 'Z'))
    return { count: Number(r?.n ?? 0), oldestAt: oldest }
  }
}

/**
 * The outbox's trigger that wakes relays (the row-level NOTIFY trigger, else the wake-up trigger, else
 * the statement-level NOTIFY trigger of earlier versions, or none) and its leading relay's session
 * (see PrismaOutboxStore.leadership).
 */
export interface OutboxLeadership {
  notifyTrigger: 'row' | 'wake' | 'statement' | null
  leader: { pid: number; application: string | null; clientAddr: string | null; since: string } | null
}

/** The oldest xid still running, and the next xid to be given out: read just before and just after a claim. */
const XMIN_SQL = 'SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS x'
const XMAX_SQL = 'SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x'
const xid = (rows: unknown): bigint => BigInt((rows as Array<{ x: string }>)[0].x)

/** A claimed row as a driver returns it: ids may come as text (int8), the format as text or a bigint. */
interface ClaimedRow {
  id: bigint | number | string
  cqrs_id: string
  routing_key: string
  format: number | bigint | string
  body: string
  trace_context?: string | null
}

function outboxRow(r: ClaimedRow): OutboxRow {
  return { id: typeof r.id === 'string' ? BigInt(r.id) : r.id, cqrsId: r.cqrs_id, routingKey: r.routing_key, format: Number(r.format), body: r.body, traceContext: r.trace_context ?? null }
}
