/**
 * Capture triggers, as pure functions returning SQL statements (printable with `cqrs triggers`,
 * applied with `installCaptureTriggers()`). With `capture: 'trigger'` the database itself writes a
 * row image to the outbox in the statement that changes the row, so a write costs one round trip,
 * and raw SQL and nested writes are captured too. The relay turns row images into messages.
 */
import type { ModelPlan } from '../master/model-plan.js'
import type { ModelMeta, Provider } from './internals.js'
import { traceColumnOf } from './outbox-trace.js'
import { quoteIdent } from './sql.js'

export const ROW_IMAGE = 1

const lit = (s: string) => `'${s.replace(/'/g, "''")}'`

/**
 * A short, stable tag of what the triggers do, kept in their names so an outdated install is noticed:
 * a hash of the statements themselves (columns on MySQL and SQLite, tracked fields, the outbox's
 * columns, cqrs_id). PostgreSQL's capture serialises the row generically, so adding a column there
 * changes nothing and needs no reinstall.
 */
function tagOf(statements: string[]): string {
  let h = 0
  for (const c of statements.join('\n')) h = (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0
  return h.toString(36).padStart(6, '0').slice(0, 6)
}

/**
 * What the write's request left for the capture (correlation id, trace context): set per transaction
 * by the extension when there is something to carry (`sessionContextSql`), read by the trigger.
 * PostgreSQL: transaction-local settings; MySQL: user variables the extension resets before the
 * transaction ends. SQLite has neither: its triggers carry none.
 */
const CONTEXT_KEYS = { correlationId: 'cqrs.correlation_id', traceContext: 'cqrs.trace_context' } as const
const mysqlVar = (key: string) => `@${key.replace('.', '_')}`

/** The SQL expression, inside a trigger, of one context value (NULL when the write carried none). */
function contextExpr(provider: Provider, key: string): string {
  if (provider === 'postgresql') return `NULLIF(current_setting(${lit(key)}, true), '')`
  if (provider === 'mysql') return mysqlVar(key)
  return 'NULL'
}

/** Statements that set (or, with nulls, clear) the context in the current transaction. */
export function sessionContextSql(provider: Provider, values: { correlationId: string | null; traceContext: string | null }): Array<{ sql: string; args: unknown[] }> {
  const entries = Object.entries(CONTEXT_KEYS).map(([k, key]) => [key, values[k as keyof typeof CONTEXT_KEYS]] as const)
  if (provider === 'postgresql') return [{ sql: `SELECT ${entries.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, true)`).join(', ')}`, args: entries.flatMap(([key, v]) => [key, v ?? '']) }]
  if (provider === 'mysql') return [{ sql: `SET ${entries.map(([key]) => `${mysqlVar(key)} = ?`).join(', ')}`, args: entries.map(([, v]) => v) }]
  return []
}

export const triggerBaseName = (meta: ModelMeta) => `cqrs_${meta.table}`

/** Statements that (re)create the capture triggers of one master model. Idempotent. */
export function captureTriggerSql(provider: Provider, meta: ModelMeta, plan: ModelPlan, outbox: OutboxTarget): string[] {
  return captureStatements(provider, meta, plan, outbox, triggerTag(provider, meta, plan, outbox))
}

/** The tag of the triggers these options install: the hash of their statements, names left blank. */
const triggerTag = (provider: Provider, meta: ModelMeta, plan: ModelPlan, outbox: OutboxTarget) => tagOf(captureStatements(provider, meta, plan, outbox, ''))

/** The outbox the triggers write: its table, and its trace-context column (null in outboxes migrated before traces). */
export interface OutboxTarget {
  table: string
  traceColumn: string | null
}

/** The outbox target of a Prisma outbox model. */
export function outboxTargetOf(meta: ModelMeta): OutboxTarget {
  return { table: meta.table, traceColumn: traceColumnOf(meta) }
}

function captureStatements(provider: Provider, meta: ModelMeta, plan: ModelPlan, outbox: OutboxTarget, tag: string): string[] {
  const q = (n: string) => quoteIdent(provider, n)
  const col = (field: string) => meta.fields.find((f) => f.name === field)!.column
  const t = q(meta.table)
  const rev = q(col(plan.revisionField))
  const pk = q(col(plan.pkField))
  const base = triggerBaseName(meta)
  const out = q(outbox.table)
  const cidExpr = contextExpr(provider, CONTEXT_KEYS.correlationId)
  const traceCol = outbox.traceColumn && provider !== 'sqlite' ? `, ${q(outbox.traceColumn)}` : ''
  const traceVal = traceCol ? `, ${contextExpr(provider, CONTEXT_KEYS.traceContext)}` : ''
  const cid = lit(plan.cqrsId)
  const produce = plan.produce
  const needOld = plan.trackedFields.length > 0 || !!plan.filter
  if (provider === 'postgresql') {
    const fn = q(`${base}_capture`)
    const image = (op: string) =>
      `json_build_object('op', ${lit(op)}, 'new', ${op === 'D' ? 'NULL' : 'row_to_json(NEW)'}, 'old', ${op === 'I' || (op === 'U' && !needOld) ? 'NULL' : 'row_to_json(OLD)'}, 'cid', ${cidExpr})::text`
    const insert = (op: string, row: string) => `INSERT INTO ${out} (cqrs_id, pk, routing_key, format, body${traceCol}) VALUES (${cid}, ${row}.${pk}::text, ${cid}, ${ROW_IMAGE}, ${image(op)}${traceVal});`
    return [
      `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $cqrs$
BEGIN
  IF TG_WHEN = 'BEFORE' THEN
    -- A write that did not raise the revision itself (raw SQL, a nested write) gets it raised here.
    IF NEW.${rev} = OLD.${rev} THEN NEW.${rev} := OLD.${rev} + 1; END IF;
    RETURN NEW;
  END IF;
  ${
    produce
      ? `IF TG_OP = 'INSERT' THEN ${insert('I', 'NEW')}
  ELSIF TG_OP = 'UPDATE' THEN ${insert('U', 'NEW')}
  ELSE ${insert('D', 'OLD')}
  END IF;`
      : ''
  }
  RETURN NULL;
END $cqrs$`,
      ...dropAll(provider, meta),
      // WHEN: an update that raised the revision itself (every Prisma update) does not call the function at all.
      `CREATE TRIGGER ${q(`${base}_bump`)} BEFORE UPDATE ON ${t} FOR EACH ROW WHEN (NEW.${rev} = OLD.${rev}) EXECUTE FUNCTION ${fn}()`,
      ...(produce ? [`CREATE TRIGGER ${q(`${base}_capture_${tag}`)} AFTER INSERT OR UPDATE OR DELETE ON ${t} FOR EACH ROW EXECUTE FUNCTION ${fn}()`] : []),
    ]
  }
  // MySQL/MariaDB and SQLite cannot turn a row into JSON generically: list the columns.
  const obj = (row: 'NEW' | 'OLD') =>
    `${provider === 'mysql' ? 'JSON_OBJECT' : 'json_object'}(${meta.fields
      .map((f) => {
        const v = `${row}.${q(f.column)}`
        const value = f.kind === 'Bytes' ? `HEX(${v})` : f.kind === 'Json' ? (provider === 'sqlite' ? `json(${v})` : `JSON_EXTRACT(${v}, '$')`) : v
        return `${lit(f.column)}, ${value}`
      })
      .join(', ')})`
  const json = provider === 'mysql' ? 'JSON_OBJECT' : 'json_object'
  const cidPart = provider === 'mysql' ? `, 'cid', ${cidExpr}` : ''
  const image = (op: 'I' | 'U' | 'D') => `${json}('op', ${lit(op)}, 'new', ${op === 'D' ? 'NULL' : obj('NEW')}, 'old', ${op === 'I' || (op === 'U' && !needOld) ? 'NULL' : obj('OLD')}${cidPart})`
  const insert = (op: 'I' | 'U' | 'D') => `INSERT INTO ${out} (cqrs_id, pk, routing_key, format, body${traceCol}) VALUES (${cid}, ${op === 'D' ? 'OLD' : 'NEW'}.${pk}, ${cid}, ${ROW_IMAGE}, ${image(op)}${traceVal})`
  const ops: Array<['I' | 'U' | 'D', string]> = [
    ['I', 'INSERT'],
    ['U', 'UPDATE'],
    ['D', 'DELETE'],
  ]
  const stmts = [...dropAll(provider, meta)]
  if (provider === 'mysql') {
    stmts.push(`CREATE TRIGGER ${q(`${base}_bump`)} BEFORE UPDATE ON ${t} FOR EACH ROW SET NEW.${rev} = IF(NEW.${rev} = OLD.${rev}, OLD.${rev} + 1, NEW.${rev})`)
    if (produce) for (const [op, ev] of ops) stmts.push(`CREATE TRIGGER ${q(`${base}_${op.toLowerCase()}_${tag}`)} AFTER ${ev} ON ${t} FOR EACH ROW ${insert(op)}`)
  } else if (produce) {
    // SQLite cannot assign NEW in a trigger: the revision of a raw-SQL update is not raised (README).
    for (const [op, ev] of ops) stmts.push(`CREATE TRIGGER ${q(`${base}_${op.toLowerCase()}_${tag}`)} AFTER ${ev} ON ${t} FOR EACH ROW BEGIN ${insert(op)}; END`)
  }
  return stmts
}

/** Drop every capture trigger of a model, whatever its column tag (names are listed from the catalog at install). */
function dropAll(provider: Provider, meta: ModelMeta): string[] {
  const q = (n: string) => quoteIdent(provider, n)
  const base = triggerBaseName(meta)
  if (provider === 'postgresql') return [`DROP TRIGGER IF EXISTS ${q(`${base}_bump`)} ON ${q(meta.table)}`]
  return provider === 'mysql' ? [`DROP TRIGGER IF EXISTS ${q(`${base}_bump`)}`] : []
}

/** The catalog query listing every trigger on the model's table (filtered by name prefix in JS). */
export function listTriggersSql(provider: Provider, meta: ModelMeta): string {
  if (provider === 'postgresql') return `SELECT tgname::text AS name FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = to_regclass(${lit(quoteIdent(provider, meta.table))})`
  if (provider === 'mysql') return `SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = ${lit(meta.table)}`
  return `SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ${lit(meta.table)}`
}

export function dropTriggerSql(provider: Provider, meta: ModelMeta, name: string): string {
  const q = (n: string) => quoteIdent(provider, n)
  return provider === 'postgresql' ? `DROP TRIGGER IF EXISTS ${q(name)} ON ${q(meta.table)}` : `DROP TRIGGER IF EXISTS ${q(name)}`
}

/** The trigger names a model's capture must have (the install check compares the catalog with these). */
export function expectedTriggerNames(provider: Provider, meta: ModelMeta, plan: ModelPlan, outbox: OutboxTarget): string[] {
  const base = triggerBaseName(meta)
  const tag = triggerTag(provider, meta, plan, outbox)
  const bump = provider === 'sqlite' ? [] : [`${base}_bump`]
  if (!plan.produce) return bump
  if (provider === 'postgresql') return [...bump, `${base}_capture_${tag}`]
  return [...bump, ...['i', 'u', 'd'].map((op) => `${base}_${op}_${tag}`)]
}
