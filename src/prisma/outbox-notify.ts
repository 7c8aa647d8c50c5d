/**
 * Wakes, and on PostgreSQL feeds, a separate relay at commit: a row-level trigger on the outbox sends
 * each new row with `NOTIFY cqrs_outbox` (as JSON; a row over the 8,000-byte limit sends an empty
 * payload instead), and the relay LISTENs on a connection of its own. PostgreSQL delivers a
 * notification only when its transaction commits, in commit order, so a rolled-back write sends
 * nothing.
 *
 * One relay per database takes the rows (the leader: the one holding a session advisory lock on its
 * LISTEN connection) and publishes them as they arrive, without claiming them first; it deletes them
 * once the broker confirmed them. Other relays (followers) claim only rows left in the outbox for a
 * while, so they never publish a row the leader has in flight, and one of them takes the lead when
 * the leader's session ends. An empty payload (an outsized row, or the statement-level trigger of
 * earlier versions) makes the relay claim, as it does after (re)connecting.
 * Every relay keeps polling as a safety net: a notification lost while the LISTEN connection was down
 * (or an outbox without the trigger) costs at most one poll interval, never an event.
 */
import type { Logger } from '../core/logger.js'
import type { OutboxEvents, OutboxRow, RelayRole } from '../master/outbox-store.js'
import { openAdapter, pgPoolOf, type AdapterConnection } from './internals.js'
import { quoteIdent } from './sql.js'

/** The channel the trigger notifies and the relay listens on. */
export const OUTBOX_CHANNEL = 'cqrs_outbox'

const FUNCTION = 'cqrs_outbox_notify'
const TRIGGER = 'cqrs_outbox_notify'
/** The high half of the leader's advisory lock key ('cqrs'); the low half is the outbox table's oid. */
const LOCK_CLASS = 0x63717273n
/** PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more. */
const MAX_PAYLOAD = 8000

/**
 * Statements that install (or refresh) the outbox's NOTIFY trigger on PostgreSQL. Idempotent; for a
 * migration (`cqrs triggers` prints them) or to apply directly (`cqrs triggers --apply`).
 */
export function outboxNotifySql(outboxTable = 'cqrs_outbox'): string[] {
  const table = quoteIdent('postgresql', outboxTable)
  return [
    // Row-level: the outbox table's oid (one channel serves every outbox of the database, in any
    // schema), then the row itself (row_to_json names every column, whatever the outbox has), so
    // that the leading relay publishes it without reading it back. Sent at commit. The function also
    // serves the statement-level trigger of earlier versions, with an empty payload.
    `CREATE OR REPLACE FUNCTION ${FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $cqrs$
DECLARE
  payload text := '';
BEGIN
  IF TG_LEVEL = 'ROW' THEN
    payload := TG_RELID::text || ' ' || row_to_json(NEW)::text;
    IF octet_length(payload) >= ${MAX_PAYLOAD} THEN
      payload := '';
    END IF;
  END IF;
  PERFORM pg_notify('${OUTBOX_CHANNEL}', payload);
  RETURN NULL;
END $cqrs$`,
    `DROP TRIGGER IF EXISTS ${TRIGGER} ON ${table}`,
    `CREATE TRIGGER ${TRIGGER} AFTER INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION ${FUNCTION}()`,
  ]
}

/**
 * SQL that returns one row when the outbox's NOTIFY trigger is installed: `row_level` true for this
 * version's trigger, false for the statement-level one of earlier versions (which wakes, but sends
 * no rows); `relid`, the outbox table's oid (as text), which the row-level trigger's payloads start with.
 */
export function outboxNotifyInstalledSql(outboxTable = 'cqrs_outbox'): string {
  return `SELECT (tgtype::int & 1) = 1 AS row_level, tgrelid::oid::text AS relid FROM pg_trigger WHERE tgname = '${TRIGGER}' AND tgrelid = to_regclass('${quoteIdent('postgresql', outboxTable).replace(/'/g, "''")}')`
}

/** The advisory lock key the leader of the outbox `relid` holds (one leader per outbox table). */
function leaderLockKey(relid: string): bigint {
  return (LOCK_CLASS << 32n) | BigInt(relid)
}

/**
 * SQL for the session that leads the outbox `relid` (holds its lock): pid, application_name,
 * client_addr and backend_start; no row when none leads. A bigint advisory key shows in pg_locks
 * as classid (high half), objid (low half) and objsubid 1.
 */
export function outboxLeaderSql(relid: string): string {
  const key = leaderLockKey(relid)
  return `SELECT a.pid, a.application_name, host(a.client_addr) AS client_addr, a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND l.classid = ${key >> 32n} AND l.objid = ${key & 0xffffffffn} AND l.objsubid = 1 LIMIT 1`
}

/** The outbox's columns, by what they hold, as named in the table (a notification's JSON keys). */
export interface OutboxColumns {
  id: string
  cqrsId: string
  routingKey: string
  format: string
  body: string
  traceContext: string | null
}

/**
 * A notification's payload as a row of the outbox whose oid is `relid`; `'claim'` when it carries
 * none (empty: an outsized row or the statement-level trigger) or one this relay cannot take exactly
 * (an id past 2^53), so that the relay claims instead; `'other'` for a row of another outbox of the
 * database (another schema's), which its own relays publish.
 */
export function parseOutboxPayload(payload: string | undefined, cols: OutboxColumns, relid: string): OutboxRow | 'claim' | 'other' {
  if (!payload) return 'claim'
  const space = payload.indexOf(' ')
  if (space < 0 || payload.charCodeAt(space + 1) !== 123 /* { */) return 'claim'
  if (payload.slice(0, space) !== relid) return 'other'
  let o: Record<string, unknown>
  try {
    o = JSON.parse(payload.slice(space + 1))
  } catch {
    return 'claim'
  }
  const id = o[cols.id]
  const cqrsId = o[cols.cqrsId]
  const routingKey = o[cols.routingKey]
  const body = o[cols.body]
  const format = o[cols.format]
  if (!Number.isSafeInteger(id) || typeof cqrsId !== 'string' || typeof routingKey !== 'string' || typeof body !== 'string' || typeof format !== 'number') return 'claim'
  const trace = cols.traceContext ? o[cols.traceContext] : null
  return { id: id as number, cqrsId, routingKey, format, body, traceContext: typeof trace === 'string' ? trace : null }
}

/** A running LISTEN; `close()` stops it, gives up the lead and releases its connection. */
export interface OutboxListener {
  close(): Promise<void>
}

interface ListenClient {
  query(sql: string): Promise<{ rows: any[] }>
  on(event: 'notification', fn: (msg: { channel: string; payload?: string }) => void): unknown
  on(event: 'error' | 'end', fn: (err?: Error) => void): unknown
  removeAllListeners(event?: string): unknown
  release(err?: Error | boolean): void
}

export interface ListenOptions {
  /** The outbox's column names, to read the rows that notifications carry. */
  columns: OutboxColumns
  /** How often a follower tries to take the lead (default 1,000 ms). */
  electEveryMs?: number
  /** How often the relay looks whether the outbox's NOTIFY trigger changed (default 5,000 ms). */
  recheckEveryMs?: number
  /**
   * LISTEN only with the row-level trigger, to lead or follow (an in-process relay, which its own
   * commits kick): without it, hold no connection and only look for the trigger now and then.
   */
  rowTriggerOnly?: boolean
}

/** The outbox's NOTIFY trigger as a relay saw it: the row-level one (with the outbox's oid), the statement-level one of earlier versions, or none. */
export type TriggerState = { level: 'row'; relid: string } | { level: 'statement' } | { level: 'none' }

/** A row of {@link outboxNotifyInstalledSql} (or none) as a {@link TriggerState}. */
export const triggerState = (row: { row_level: boolean; relid: string } | undefined): TriggerState => (!row ? { level: 'none' } : row.row_level ? { level: 'row', relid: String(row.relid) } : { level: 'statement' })
const sameTrigger = (a: TriggerState, b: TriggerState) => a.level === b.level && (a.level !== 'row' || a.relid === (b as { relid: string }).relid)
const describeTrigger = (t: TriggerState) => (t.level === 'row' ? 'the row-level trigger' : t.level === 'statement' ? 'the statement-level trigger of an earlier version' : 'no trigger')

/**
 * LISTEN for outbox notifications on a dedicated connection from `client`'s pg driver adapter. With
 * the row-level trigger installed, the relays of one database elect a leader (see above): the leader
 * gets each committed row (`events.row`), or a wake-up for a notification without one; a follower
 * LISTENs to nothing and tries to take the lead every `electEveryMs`. With the statement-level trigger
 * of earlier versions, or none, every relay is woken (`events.wake`), as before (with
 * `rowTriggerOnly`, not at all). After the connection is lost it reconnects with backoff and wakes the
 * relay once (notifications sent meanwhile are gone). Every `recheckEveryMs` it looks at the trigger
 * again: installed, dropped or replaced while the relay runs, it takes the part the trigger now calls
 * for (a leader whose trigger was dropped would otherwise wait for notifications that never come).
 * Returns null where LISTEN is not available (not the pg driver adapter); the relay then polls only.
 */
export async function listenForOutbox(client: any, outboxTable: string, events: OutboxEvents, logger: Logger, options: ListenOptions): Promise<OutboxListener | null> {
  let adapter: AdapterConnection | null
  try {
    adapter = await openAdapter(client)
  } catch (e) {
    logger.warn('cqrs relay: cannot open a connection for LISTEN; polling only', { error: e as Error })
    return null
  }
  const pool = adapter && pgPoolOf(adapter)
  if (!adapter || !pool) {
    await adapter?.dispose()
    return null
  }
  let closed = false
  let current: ListenClient | null = null
  let timer: NodeJS.Timeout | undefined
  let electTimer: NodeJS.Timeout | undefined
  let recheckTimer: NodeJS.Timeout | undefined
  let leadTimer: NodeJS.Timeout | undefined
  let backoff = 100
  let warnedNoTrigger = false
  let toldStatementLevel = false
  let role: RelayRole | null = null
  /** The trigger as the last (re)connect saw it; null until then. */
  let seen: TriggerState | null = null
  /** Connections given up on purpose (the trigger changed): their end is no loss. */
  const retired = new WeakSet<ListenClient>()

  const setRole = (r: RelayRole) => {
    if (r === role) return
    role = r
    events.role?.(r)
  }

  /** One leader per outbox table: the advisory lock's key holds the table's oid. */
  const tryLead = (relid: string) => `SELECT pg_try_advisory_lock(${leaderLockKey(relid)}) AS leader`
  const canLead = () => events.canLead?.() ?? true

  /** Give up `conn` on purpose (and with it the LISTEN and the lead), to set up anew. */
  const retire = (conn: ListenClient) => {
    retired.add(conn)
    if (current === conn) current = null
    clearTimeout(electTimer)
    clearTimeout(leadTimer)
    conn.removeAllListeners('notification')
    // Destroyed: ending its session frees the advisory lock at once.
    try {
      conn.release(true)
    } catch {}
    // Until it leads again, the relay claims every row (as after a lost connection).
    if (role === 'leader') setRole('alone')
    backoff = 100
  }

  /** A leader looks every electEveryMs whether it may still lead (see OutboxEvents.canLead); if not, it gives the lead up. */
  const watchLead = (conn: ListenClient) => {
    clearTimeout(leadTimer)
    leadTimer = setTimeout(() => {
      leadTimer = undefined
      if (closed || current !== conn || role !== 'leader') return
      if (canLead()) return watchLead(conn)
      logger.info('cqrs relay: lost its broker while leading; gives up the lead, for a relay that can publish to take')
      retire(conn)
      void connect()
    }, options.electEveryMs ?? 1000)
    leadTimer.unref?.()
  }

  /** The trigger as it is now, read on `conn`, or through the relay's own Prisma client (no connection of ours held). */
  const readTrigger = async (conn: ListenClient | null): Promise<TriggerState> => {
    const sql = outboxNotifyInstalledSql(outboxTable)
    return triggerState(conn ? (await conn.query(sql)).rows[0] : (await client.$queryRawUnsafe(sql))[0])
  }

  /** LISTEN on `conn`, which leads the outbox `relid` (row-level trigger) or is alone. */
  const listen = async (conn: ListenClient, relid: string | null): Promise<void> => {
    const leading = relid !== null
    conn.on('notification', (msg) => {
      if (msg.channel !== OUTBOX_CHANNEL) return
      const row = leading && events.row ? parseOutboxPayload(msg.payload, options.columns, relid) : 'claim'
      if (row === 'claim') events.wake()
      else if (row !== 'other') events.row!(row)
    })
    await conn.query(`LISTEN ${OUTBOX_CHANNEL}`)
    if (closed || current !== conn) return
    setRole(leading ? 'leader' : 'alone')
    if (leading) watchLead(conn)
    logger.info(leading ? 'cqrs relay: listening for outbox notifications, leading: this relay publishes rows as they commit' : 'cqrs relay: listening for outbox notifications', { channel: OUTBOX_CHANNEL })
    // Whatever was committed while we were not listening is found now, not at the next poll.
    events.wake()
  }

  /** A follower: try to take the lead every electEveryMs, on its own connection. */
  const elect = (conn: ListenClient, relid: string) => {
    electTimer = setTimeout(async () => {
      electTimer = undefined
      if (closed || current !== conn) return
      // Without a broker, leave the lead to a relay that can publish.
      if (!canLead()) return elect(conn, relid)
      try {
        const won = (await conn.query(tryLead(relid))).rows[0]?.leader === true
        if (closed || current !== conn) return
        if (won) await listen(conn, relid)
        else elect(conn, relid)
      } catch {
        // A lost connection is reconnected by its 'error' handler; anything else: try again later.
        if (!closed && current === conn && role === 'follower') elect(conn, relid)
      }
    }, options.electEveryMs ?? 1000)
    electTimer.unref?.()
  }

  /**
   * Look at the trigger again every recheckEveryMs (on the LISTEN connection, or through the relay's
   * Prisma client when none is held); when it changed, give up the connection (and with it the lead)
   * and set up anew.
   */
  const recheck = () => {
    clearTimeout(recheckTimer)
    recheckTimer = setTimeout(async () => {
      recheckTimer = undefined
      if (closed || !seen) return
      const conn = current
      let now: TriggerState
      try {
        now = await readTrigger(conn)
      } catch {
        // A lost connection is reconnected by its 'error' handler (which schedules the next look); a
        // database away: look again later.
        if (!closed && current === conn) recheck()
        return
      }
      if (closed || current !== conn) return
      if (sameTrigger(now, seen)) return recheck()
      logger.info(`cqrs relay: the outbox's NOTIFY trigger changed (${describeTrigger(seen)}, now ${describeTrigger(now)}); this relay takes the part it calls for`)
      if (conn) retire(conn)
      void connect()
    }, options.recheckEveryMs ?? 5000)
    recheckTimer.unref?.()
  }

  /** Without the row-level trigger, a relay with rowTriggerOnly holds no connection: it looks again later. */
  const standBy = (trigger: TriggerState) => {
    seen = trigger
    setRole('alone')
    backoff = 100
    recheck()
  }

  const connect = async (): Promise<void> => {
    if (closed) return
    // An in-process relay looks first through its own client, and takes a connection only to LISTEN.
    const known = options.rowTriggerOnly ? await readTrigger(null).catch((): TriggerState => ({ level: 'none' })) : null
    if (closed) return
    if (known && known.level !== 'row') return standBy(known)
    let c: ListenClient | null = null
    let lost = false
    try {
      c = (await pool.connect()) as unknown as ListenClient
      const conn = c
      const onLost = (err?: Error) => {
        if (lost) return
        lost = true
        conn.removeAllListeners('notification')
        if (retired.has(conn)) return
        if (current === conn) current = null
        clearTimeout(electTimer)
        clearTimeout(recheckTimer)
        clearTimeout(leadTimer)
        // A client that failed is dropped from the pool, not reused.
        try {
          conn.release(err ?? true)
        } catch {}
        if (closed) return
        // A leader may have missed notifications: it claims everything until it leads again. A
        // follower stays one: the leader is most likely still there.
        if (role === 'leader') setRole('alone')
        logger.warn('cqrs relay: the LISTEN connection was lost; reconnecting (polling meanwhile)', { error: err, retryInMs: backoff })
        schedule()
      }
      conn.on('error', onLost)
      conn.on('end', () => onLost(new Error('connection ended')))
      // (Dropped since `known` was read: the next look finds it.)
      const trigger = known ?? (await readTrigger(conn).catch((): TriggerState => ({ level: 'none' })))
      // The server ends this session, and so frees the lead, about 25 s after the client goes silent
      // (a network partition), not after the system's two hours of TCP keepalive: keepalive probes
      // while it has nothing to send, and a user timeout for what it sent (notifications of commits)
      // and nobody acknowledged, which TCP would otherwise retransmit for some fifteen minutes, with
      // no probe meanwhile. (PostgreSQL 12 and newer; on an older one, the keepalive alone.)
      await conn.query('SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3; SET tcp_user_timeout = 25000').catch(() => {})
      if (trigger.level === 'none' && !warnedNoTrigger) {
        warnedNoTrigger = true
        logger.warn(`cqrs relay: the outbox has no NOTIFY trigger, so this relay finds new events by polling only; install it with \`cqrs triggers --notify-only --apply\` (or add the output of \`cqrs triggers --notify\` to a migration)`)
      }
      if (trigger.level === 'statement' && !toldStatementLevel) {
        toldStatementLevel = true
        logger.info('cqrs relay: the outbox NOTIFY trigger is the statement-level one of an earlier version: commits wake this relay, which then claims their rows; reinstall it (`cqrs triggers --notify-only --apply`) to have rows published as they commit')
      }
      const relid = trigger.level === 'row' ? trigger.relid : null
      const leading = relid !== null && canLead() && (await conn.query(tryLead(relid))).rows[0]?.leader === true
      if (lost) return
      if (closed) {
        conn.release(true)
        return
      }
      current = conn
      seen = trigger
      backoff = 100
      recheck()
      if (relid !== null && !leading) {
        setRole('follower')
        logger.info(
          canLead()
            ? 'cqrs relay: another relay leads on this outbox (it publishes rows as they commit); this one publishes the rows left behind, and takes the lead if that relay goes'
            : 'cqrs relay: without its broker, this relay leaves the lead to another; it publishes the rows left behind, and may lead once it has its broker again',
        )
        elect(conn, relid)
        return
      }
      await listen(conn, leading ? relid : null)
    } catch (e) {
      // A lost connection was released and a retry scheduled by its 'error' handler already.
      if (lost) return
      if (c) {
        lost = true
        if (current === c) current = null
        clearTimeout(recheckTimer)
        clearTimeout(leadTimer)
        try {
          c.release(e as Error)
        } catch {}
      }
      if (closed) return
      logger.warn('cqrs relay: LISTEN failed; retrying (polling meanwhile)', { error: e as Error, retryInMs: backoff })
      schedule()
    }
  }

  const schedule = () => {
    if (closed || timer) return
    timer = setTimeout(() => {
      timer = undefined
      void connect()
    }, backoff)
    timer.unref?.()
    backoff = Math.min(backoff * 2, 5000)
  }

  await connect()
  return {
    async close() {
      closed = true
      clearTimeout(timer)
      clearTimeout(electTimer)
      clearTimeout(recheckTimer)
      clearTimeout(leadTimer)
      const c = current
      current = null
      if (c) {
        c.removeAllListeners('notification')
        // Destroyed, not returned to the pool: ending its session gives up the lead (the advisory
        // lock) at once, for a follower to take.
        try {
          c.release(true)
        } catch {}
      }
      await adapter.dispose()
    },
  }
}
