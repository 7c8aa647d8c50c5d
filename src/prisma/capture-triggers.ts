import { ConfigError } from '../core/errors.js'
import type { ModelPlan } from '../master/model-plan.js'
import type { ModelMeta, Provider } from './internals.js'
import { outboxWakeSql } from './outbox-notify.js'
import { captureTriggerSql, dropTriggerSql, expectedTriggerNames, listTriggersSql, triggerBaseName, type OutboxTarget } from './trigger-sql.js'

export interface TriggerTarget {
  meta: ModelMeta
  plan: ModelPlan
}

/**
 * Every statement that installs the capture triggers of these models (for a migration file),
 * starting with drops of the capture triggers installed now (an older column list would capture twice),
 * and on PostgreSQL the outbox's wake-up trigger (see outbox-notify.ts).
 */
export async function captureTriggersScript(client: any, provider: Provider, targets: TriggerTarget[], outbox: OutboxTarget): Promise<string[]> {
  const out: string[] = []
  for (const { meta, plan } of targets) {
    for (const name of await existing(client, provider, meta)) out.push(dropTriggerSql(provider, meta, name))
    out.push(...captureTriggerSql(provider, meta, plan, outbox))
  }
  return [...out, ...outboxTriggers(provider, outbox)]
}

/** The outbox's own triggers that come with the capture triggers: PostgreSQL's wake-up trigger. */
const outboxTriggers = (provider: Provider, outbox: OutboxTarget) => (provider === 'postgresql' ? outboxWakeSql(outbox.table) : [])

async function existing(client: any, provider: Provider, meta: ModelMeta): Promise<string[]> {
  const rows: Array<{ name: string }> = await client.$queryRawUnsafe(listTriggersSql(provider, meta))
  const prefix = `${triggerBaseName(meta)}_`
  return rows.map((r) => String(r.name)).filter((n) => n.startsWith(prefix))
}

/** Install (or refresh) capture triggers: drop ours that are outdated, create the current ones. */
export async function applyCaptureTriggers(client: any, provider: Provider, targets: TriggerTarget[], outbox: OutboxTarget): Promise<string[]> {
  const done: string[] = []
  for (const { meta, plan } of targets) {
    for (const name of await existing(client, provider, meta)) await client.$executeRawUnsafe(dropTriggerSql(provider, meta, name))
    for (const sql of captureTriggerSql(provider, meta, plan, outbox)) await client.$executeRawUnsafe(sql)
    done.push(meta.name)
  }
  for (const sql of outboxTriggers(provider, outbox)) await client.$executeRawUnsafe(sql)
  return done
}

/** Throw a ConfigError naming the fix when a model's capture triggers are missing or outdated. */
export async function assertCaptureTriggers(client: any, provider: Provider, targets: TriggerTarget[], outbox: OutboxTarget): Promise<void> {
  const problems: string[] = []
  for (const { meta, plan } of targets) {
    const have = new Set(await existing(client, provider, meta))
    const missing = expectedTriggerNames(provider, meta, plan, outbox).filter((n) => !have.has(n))
    if (missing.length) problems.push(`${meta.name} (missing ${missing.join(', ')}${[...have].length ? '; the installed ones are for other columns or options' : ''})`)
  }
  if (problems.length)
    throw new ConfigError(
      `capture: 'trigger' (the default) needs the capture triggers in the database, and these are missing or outdated: ${problems.join('; ')}. ` +
        'Add them to your migrations with `npx cqrs triggers --migration` and migrate (or install them now with `npx cqrs triggers --apply`, or installCaptureTriggers(prisma, options)); ' +
        "on MySQL and SQLite again after every schema change of a master model. To capture without triggers, set capture: 'extension' (about a third of the write rate).",
    )
}
