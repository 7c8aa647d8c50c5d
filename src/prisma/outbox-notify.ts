/**
 * Wakes a separate relay at commit on PostgreSQL: a statement-level trigger on the outbox sends
 * `NOTIFY cqrs_outbox`, and the relay LISTENs on a connection of its own. PostgreSQL delivers a
 * notification only when its transaction commits and folds identical ones of one transaction into
 * one, so a rolled-back write wakes nobody and a 1,000-row insert wakes the relay once.
 * The relay keeps polling as a safety net: a notification lost while the LISTEN connection was down
 * (or an outbox without the trigger) costs at most one poll interval, never an event.
 */
import type { Logger } from '../core/logger.js'
import { openAdapter, pgPoolOf, type AdapterConnection } from './internals.js'
import { quoteIdent } from './sql.js'

/** The channel the trigger notifies and the relay listens on. */
export const OUTBOX_CHANNEL = 'cqrs_outbox'

const FUNCTION = 'cqrs_outbox_notify'
const TRIGGER = 'cqrs_outbox_notify'

/**
 * Statements that install (or refresh) the outbox's NOTIFY trigger on PostgreSQL. Idempotent; for a
 * migration (`cqrs triggers` prints them) or to apply directly (`cqrs triggers --apply`).
 */
export function outboxNotifySql(outboxTable = 'cqrs_outbox'): string[] {
  const table = quoteIdent('postgresql', outboxTable)
  return [
    // Statement-level with an empty payload: PostgreSQL folds the notifications of one transaction
    // into one, so a bulk insert costs one notification, sent at commit.
    `CREATE OR REPLACE FUNCTION ${FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $cqrs$
BEGIN
  PERFORM pg_notify('${OUTBOX_CHANNEL}', '');
  RETURN NULL;
END $cqrs$`,
    `DROP TRIGGER IF EXISTS ${TRIGGER} ON ${table}`,
    `CREATE TRIGGER ${TRIGGER} AFTER INSERT ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION ${FUNCTION}()`,
  ]
}

/** SQL that returns one row when the outbox's NOTIFY trigger is installed. */
export function outboxNotifyInstalledSql(outboxTable = 'cqrs_outbox'): string {
  return `SELECT 1 AS ok FROM pg_trigger WHERE tgname = '${TRIGGER}' AND tgrelid = to_regclass('${quoteIdent('postgresql', outboxTable).replace(/'/g, "''")}')`
}

/** A running LISTEN; `close()` stops it and releases its connection. */
export interface OutboxListener {
  close(): Promise<void>
}

interface ListenClient {
  query(sql: string): Promise<{ rows: unknown[] }>
  on(event: 'notification', fn: (msg: { channel: string }) => void): unknown
  on(event: 'error' | 'end', fn: (err?: Error) => void): unknown
  removeAllListeners(event?: string): unknown
  release(err?: Error | boolean): void
}

/**
 * LISTEN for outbox notifications on a dedicated connection from `client`'s pg driver adapter, and
 * call `onWake` for each one. After the connection is lost it reconnects with backoff, LISTENs again
 * and calls `onWake` once (notifications sent meanwhile are gone). Returns null where LISTEN is not
 * available (not the pg driver adapter); the relay then polls only.
 */
export async function listenForOutbox(client: any, outboxTable: string, onWake: () => void, logger: Logger): Promise<OutboxListener | null> {
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
  let backoff = 100
  let checkedTrigger = false

  const connect = async (): Promise<void> => {
    if (closed) return
    let c: ListenClient | null = null
    let lost = false
    try {
      c = (await pool.connect()) as unknown as ListenClient
      const conn = c
      const onLost = (err?: Error) => {
        if (lost) return
        lost = true
        conn.removeAllListeners('notification')
        if (current === conn) current = null
        // A client that failed is dropped from the pool, not reused.
        try {
          conn.release(err ?? true)
        } catch {}
        if (closed) return
        logger.warn('cqrs relay: the LISTEN connection was lost; reconnecting (polling meanwhile)', { error: err, retryInMs: backoff })
        schedule()
      }
      conn.on('error', onLost)
      conn.on('end', () => onLost(new Error('connection ended')))
      conn.on('notification', (msg) => {
        if (msg.channel === OUTBOX_CHANNEL) onWake()
      })
      if (!checkedTrigger) {
        checkedTrigger = true
        const installed = (await conn.query(outboxNotifyInstalledSql(outboxTable)).catch(() => ({ rows: [1] }))).rows.length > 0
        if (!installed) logger.warn(`cqrs relay: the outbox has no NOTIFY trigger, so this relay finds new events by polling only; install it with \`cqrs triggers --notify-only --apply\` (or add the output of \`cqrs triggers\` to a migration)`)
      }
      await conn.query(`LISTEN ${OUTBOX_CHANNEL}`)
      if (lost) return
      if (closed) {
        await conn.query(`UNLISTEN ${OUTBOX_CHANNEL}`).catch(() => {})
        conn.release()
        return
      }
      current = conn
      backoff = 100
      logger.info('cqrs relay: listening for outbox notifications', { channel: OUTBOX_CHANNEL })
      // Whatever was committed while we were not listening is found now, not at the next poll.
      onWake()
    } catch (e) {
      // A lost connection was released and a retry scheduled by its 'error' handler already.
      if (lost) return
      if (c) {
        lost = true
        if (current === c) current = null
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
      const c = current
      current = null
      if (c) {
        c.removeAllListeners('notification')
        await c.query(`UNLISTEN ${OUTBOX_CHANNEL}`).catch(() => {})
        try {
          c.release()
        } catch {}
      }
      await adapter.dispose()
    },
  }
}
