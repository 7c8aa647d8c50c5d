/**
 * Wakes, and on PostgreSQL feeds, a separate relay at commit.
 *
 * The wake-up trigger (installed with the capture triggers): one relay per outbox (the leader, as
 * below) is woken by commits while it waits for them, and only then. While it waits it holds an
 * advisory lock; the trigger, deferred to the commit, tries to share that lock and sends
 * `NOTIFY cqrs_outbox_wake` when it cannot. A commit that can share it holds it until the commit has
 * ended, so a relay that takes the lock to go to sleep waits for the commits in flight, and then looks
 * once more: no commit is missed between its last look and its sleep. A busy relay holds no lock, so
 * under load commits notify nothing (a notifying commit takes a lock shared by the whole cluster, see
 * the README). The other relays claim and poll as without a trigger.
 *
 * The NOTIFY trigger (opt-in, for the lowest lag): a row-level trigger on the outbox sends
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
import type { OutboxEvents, OutboxRow, OutboxSleeper, RelayRole } from '../master/outbox-store.js'
import { openAdapter, pgPoolOf, type AdapterConnection } from './internals.js'
import { quoteIdent } from './sql.js'

/** The channel the trigger notifies and the relay listens on. */
export const OUTBOX_CHANNEL = 'cqrs_outbox'
/** The channel of the wake-up trigger: its payload is the outbox table's oid. */
export const WAKE_CHANNEL = 'cqrs_outbox_wake'
const WAKE = 'cqrs_outbox_wake'
/**
 * The first key of the advisory lock a relay waiting for commits holds ('cqrw'), the second being the
 * outbox table's oid as an int4 (what `oid::int` gives, negative past 2^31).
 */
const WAKE_LOCK_CLASS = 0x63717277
/** How long a relay going to sleep waits for the commits in flight before it polls instead. */
const ARM_TIMEOUT_MS = 200

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
 * Statements that install (or refresh) the outbox's wake-up trigger on PostgreSQL (see above).
 * Idempotent; part of what `cqrs triggers` installs there.
 */
export function outboxWakeSql(outboxTable = 'cqrs_outbox'): string[] {
  const table = quoteIdent('postgresql', outboxTable)
  return [
    // Deferred to the commit, so that the shared lock is held from just before the commit to its end
    // (not through the rest of a long transaction, which would hold back a relay going to sleep).
    `CREATE OR REPLACE FUNCTION ${WAKE}() RETURNS trigger LANGUAGE plpgsql AS $cqrs$
BEGIN
  -- A relay waiting for commits holds this lock: a commit that cannot share it wakes that relay.
  IF NOT pg_try_advisory_xact_lock_shared(${WAKE_LOCK_CLASS}, TG_RELID::int) THEN
    PERFORM pg_notify('${WAKE_CHANNEL}', TG_RELID::text);
  END IF;
  RETURN NULL;
END $cqrs$`,
    `DROP TRIGGER IF EXISTS ${WAKE} ON ${table}`,
    `CREATE CONSTRAINT TRIGGER ${WAKE} AFTER INSERT ON ${table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${WAKE}()`,
  ]
}

/**
 * SQL that returns a row for each of the outbox's triggers that wake relays: `name` (the NOTIFY
 * trigger or the wake-up trigger); `row_level`, for the NOTIFY trigger, true for this version's,
 * false for the statement-level one of earlier versions (which wakes, but sends no rows); `relid`,
 * the outbox table's oid (as text), which the row-level trigger's payloads start with.
 */
export function outboxNotifyInstalledSql(outboxTable = 'cqrs_outbox'): string {
  return `SELECT tgname::text AS name, (tgtype::int & 1) = 1 AS row_level, tgrelid::oid::text AS relid FROM pg_trigger WHERE tgname IN ('${TRIGGER}', '${WAKE}') AND tgrelid = to_regclass('${quoteIdent('postgresql', outboxTable).replace(/'/g, "''")}')`
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

/**
 * The outbox's triggers as a relay saw them, by what they call for: the row-level NOTIFY trigger (with
 * the outbox's oid; the wake-up trigger beside it changes nothing), else the wake-up trigger (idem),
 * else the statement-level NOTIFY trigger of earlier versions, or none.
 */
export type TriggerState = { level: 'row'; relid: string } | { level: 'wake'; relid: string } | { level: 'statement' } | { level: 'none' }

/** The rows of {@link outboxNotifyInstalledSql} as a {@link TriggerState}. */
export function triggerState(rows: ReadonlyArray<{ name: string; row_level: boolean; relid: string }>): TriggerState {
  const notify = rows.find((r) => r.name === TRIGGER)
  if (notify?.row_level) return { level: 'row', relid: String(notify.relid) }
  const wake = rows.find((r) => r.name === WAKE)
  if (wake) return { level: 'wake', relid: String(wake.relid) }
  return notify ? { level: 'statement' } : { level: 'none' }
}
const relidOf = (t: TriggerState) => (t.level === 'row' || t.level === 'wake' ? t.relid : null)
const sameTrigger = (a: TriggerState, b: TriggerState) => a.level === b.level && relidOf(a) === relidOf(b)
const describeTrigger = (t: TriggerState) => (t.level === 'row' ? 'the row-level NOTIFY trigger' : t.level === 'wake' ? 'the wake-up trigger' : t.level === 'statement' ? 'the statement-level trigger of an earlier version' : 'no trigger')

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
  /** The connection whose relay is woken by commits (the wake-up trigger's leader), when this one is. */
  let sleeperConn: ListenClient | null = null

  const setRole = (r: RelayRole) => {
    if (r === role) return
    role = r
    events.role?.(r)
  }

  /** The relay no longer sleeps on `conn` (or on any connection): it polls, until it leads again. */
  const dropSleeper = (conn?: ListenClient) => {
    if (!sleeperConn || (conn && sleeperConn !== conn)) return
    sleeperConn = null
    events.sleeper?.(null)
  }

  /**
   * How the relay leading on `conn` sleeps until a commit (the wake-up trigger): it holds the wake
   * lock while it sleeps. Taking it waits for the commits that shared it (in flight); commits after
   * that cannot share it, and notify.
   */
  const sleeperOn = (conn: ListenClient, relid: string): OutboxSleeper => {
    const key = `${WAKE_LOCK_CLASS}, ${relid}::oid::int`
    let held = false
    return {
      get armed() {
        return held
      },
      arm: async () => {
        if (held) return true
        if (closed || current !== conn) return false
        try {
          // Waits at most ARM_TIMEOUT_MS (the session's lock_timeout): a commit holding it longer is
          // one whose deferred trigger ran early (SET CONSTRAINTS ... IMMEDIATE); the relay polls.
          await conn.query(`SELECT pg_advisory_lock(${key})`)
        } catch {
          return false
        }
        held = !closed && current === conn
        return held
      },
      disarm: () => {
        if (!held) return
        held = false
        if (!closed && current === conn) conn.query(`SELECT pg_advisory_unlock(${key})`).catch(() => {})
      },
    }
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
    dropSleeper(conn)
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
    return triggerState(conn ? (await conn.query(sql)).rows : await client.$queryRawUnsafe(sql))
  }

  /**
   * LISTEN on `conn`: as the leader of the outbox (the row-level trigger: rows as they commit; the
   * wake-up trigger: a wake-up when this relay sleeps), or alone (the statement-level trigger of
   * earlier versions, or none).
   */
  const listen = async (conn: ListenClient, trigger: TriggerState, leading: boolean): Promise<void> => {
    const relid = relidOf(trigger)
    const wake = leading && trigger.level === 'wake'
    const channel = wake ? WAKE_CHANNEL : OUTBOX_CHANNEL
    // One handler, also when a LISTEN that failed is tried again.
    conn.removeAllListeners('notification')
    conn.on('notification', (msg) => {
      if (msg.channel !== channel) return
      // Another outbox of the database (another schema's) wakes its own relays.
      if (wake) return msg.payload === relid ? events.wake() : undefined
      const row = leading && relid && events.row ? parseOutboxPayload(msg.payload, options.columns, relid) : 'claim'
      if (row === 'claim') events.wake()
      else if (row !== 'other') events.row!(row)
    })
    if (wake) await conn.query(`SET lock_timeout = ${ARM_TIMEOUT_MS}`)
    await conn.query(`LISTEN ${channel}`)
    if (closed || current !== conn) return
    setRole(leading && !wake ? 'leader' : 'alone')
    if (leading) watchLead(conn)
    if (wake && relid) {
      sleeperConn = conn
      events.sleeper?.(sleeperOn(conn, relid))
    }
    logger.info(
      wake
        ? 'cqrs relay: listening for outbox wake-ups, leading: commits wake this relay while it waits for them'
        : leading
          ? 'cqrs relay: listening for outbox notifications, leading: this relay publishes rows as they commit'
          : 'cqrs relay: listening for outbox notifications',
      { channel },
    )
    // Whatever was committed while we were not listening is found now, not at the next poll.
    events.wake()
  }

  /** A follower: try to take the lead every electEveryMs, on its own connection. */
  const elect = (conn: ListenClient, trigger: TriggerState & { relid: string }) => {
    const { relid } = trigger
    electTimer = setTimeout(async () => {
      electTimer = undefined
      if (closed || current !== conn) return
      // Without a broker, leave the lead to a relay that can publish.
      if (!canLead()) return elect(conn, trigger)
      try {
        const won = (await conn.query(tryLead(relid))).rows[0]?.leader === true
        if (closed || current !== conn) return
        if (won) await listen(conn, trigger, true)
        else elect(conn, trigger)
      } catch {
        // A lost connection is reconnected by its 'error' handler; anything else (a LISTEN that failed
        // after the lock was won, too): try again later.
        const leadingHere = role === 'leader' || sleeperConn === conn
        if (!closed && current === conn && !leadingHere) elect(conn, trigger)
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
      logger.info(`cqrs relay: the outbox's triggers that wake relays changed (${describeTrigger(seen)}, now ${describeTrigger(now)}); this relay takes the part it calls for`)
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
        dropSleeper(conn)
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
        logger.warn(
          'cqrs relay: the outbox has no trigger that wakes relays (neither the wake-up trigger nor the NOTIFY trigger), so this relay finds new events by polling only; add the output of `cqrs triggers` to a migration (it installs the wake-up trigger with the capture triggers), or install the wake-up trigger alone with `cqrs triggers --wake-only --apply`',
        )
      }
      if (trigger.level === 'statement' && !toldStatementLevel) {
        toldStatementLevel = true
        logger.info('cqrs relay: the outbox NOTIFY trigger is the statement-level one of an earlier version: commits wake this relay, which then claims their rows; reinstall it (`cqrs triggers --notify-only --apply`) to have rows published as they commit')
      }
      const relid = relidOf(trigger)
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
        const rows = trigger.level === 'row'
        // With the wake-up trigger, followers claim every row, as relays without a trigger do.
        setRole(rows ? 'follower' : 'alone')
        logger.info(
          !canLead()
            ? `cqrs relay: without its broker, this relay leaves the lead to another; it publishes the rows ${rows ? 'left behind' : 'its polls find'}, and may lead once it has its broker again`
            : rows
              ? 'cqrs relay: another relay leads on this outbox (it publishes rows as they commit); this one publishes the rows left behind, and takes the lead if that relay goes'
              : 'cqrs relay: another relay leads on this outbox (commits wake it); this one publishes the rows its polls find, and takes the lead if that relay goes',
        )
        elect(conn, { ...trigger, relid })
        return
      }
      await listen(conn, trigger, leading)
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
      dropSleeper()
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
