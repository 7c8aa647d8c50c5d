import { mkdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import type { Command } from 'commander'
import { captureTriggerStatements, installCaptureTriggers, outboxNotifyStatements, outboxWakeStatements } from '../../prisma/cqrs-master.js'
import { ConfigError } from '../../core/errors.js'
import { providerOf } from '../../prisma/internals.js'
import { runCommand } from '../run-command.js'

const EXAMPLES = `
Examples:
  cqrs triggers --migration            # a new migration in prisma/migrations; then: npx prisma migrate dev (or deploy)
  cqrs triggers > prisma/migrations/20261123000000_cqrs_triggers/migration.sql   # the same, by hand
  cqrs triggers --apply                # install or refresh now, without a migration
  cqrs triggers --wake-only --apply    # only the outbox wake-up trigger (PostgreSQL; capture: 'extension')
  cqrs triggers --notify-only --apply  # only the outbox NOTIFY trigger (PostgreSQL), for the lowest lag
On MySQL and SQLite the triggers list the model's columns: run it again after a schema change of a
master model (the first write refuses to run with outdated triggers and says so). On PostgreSQL they
serialise the row whatever its columns; run it again when the master options of a model change
(cqrs_id, trackedFields, filter, produce). On PostgreSQL they come with the outbox's wake-up trigger:
commits wake a \`cqrs relay\` when it sleeps (and only then, so a busy relay costs commits nothing).
--notify adds the outbox's NOTIFY trigger (PostgreSQL),
which hands each row to the leading relay (one of the \`cqrs relay\`s and in-process relays of the
database) as it commits, for it to publish without a claim. Its cost: PostgreSQL
lets notifying commits through one at a time (a cluster-wide lock held through the WAL flush), which
cut 16 clients' one-row inserts to 0.28x in pgbench (README, "Choices we made").
`

/** Prisma's migration folder name: a UTC timestamp, then the name (`20261203131500_cqrs_triggers`). */
const migrationFolder = (now: Date) => `${now.toISOString().replace(/[-:T]/g, '').slice(0, 14)}_cqrs_triggers`

export function registerTriggers(program: Command): void {
  program
    .command('triggers')
    .description("Print, write as a Prisma migration (--migration) or install (--apply) the capture triggers of the master models (capture: 'trigger', the default)")
    .option('--apply', 'install or refresh them in the master database now')
    .option('--migration [dir]', 'write them as a new migration folder in dir (default prisma/migrations) for prisma migrate')
    .option('--notify', "add the outbox's NOTIFY trigger (PostgreSQL): each row goes to the leading relay as it commits (lag of a few ms, at a cost in write rate; see the README)")
    .option('--notify-only', "only the outbox's NOTIFY trigger (PostgreSQL), e.g. to add it to capture triggers installed before, or for capture: 'extension'")
    .option('--wake-only', "only the outbox's wake-up trigger (PostgreSQL; the capture triggers come with it), for capture: 'extension' with a separate `cqrs relay`")
    .addHelpText('after', EXAMPLES)
    .action((opts, cmd: Command) =>
      runCommand(cmd, async (ctx) => {
        const { prisma, transport: _t, ...options } = await ctx.master()
        if (opts.wakeOnly && (opts.notify || opts.notifyOnly)) throw new ConfigError('cqrs triggers: --wake-only installs the wake-up trigger alone; leave out --notify/--notify-only (or --wake-only)')
        const only = opts.notifyOnly || opts.wakeOnly
        const notify = opts.notify || opts.notifyOnly ? outboxNotifyStatements(prisma, options) : opts.wakeOnly ? outboxWakeStatements(prisma, options) : []
        const what = opts.wakeOnly ? 'wake-up trigger' : 'NOTIFY trigger'
        if ((opts.notify || only) && notify.length === 0) process.stderr.write(`cqrs triggers: the outbox ${what} is for PostgreSQL only; on this database the relay polls\n`)
        if (opts.apply) {
          if (!only) {
            const models = await installCaptureTriggers(prisma, options)
            process.stderr.write(`cqrs triggers: installed capture triggers for ${models.join(', ')}${providerOf(prisma) === 'postgresql' ? ', and the outbox wake-up trigger' : ''}\n`)
          }
          for (const sql of notify) await prisma.$executeRawUnsafe(sql)
          if (notify.length) process.stderr.write(`cqrs triggers: installed the outbox ${what}\n`)
          return 0
        }
        const statements = [...(only ? [] : await captureTriggerStatements(prisma, options)), ...notify]
        const script = `-- cqrs-sync capture triggers (cqrs triggers); regenerate after schema changes\n${statements.map((s) => `${s};\n`).join('\n')}`
        if (opts.migration) {
          const dir = join(typeof opts.migration === 'string' ? opts.migration : 'prisma/migrations', migrationFolder(new Date()))
          mkdirSync(dir, { recursive: true })
          const file = join(dir, 'migration.sql')
          writeFileSync(file, script, { flag: 'wx' })
          process.stderr.write(`cqrs triggers: wrote ${relative(process.cwd(), file) || file}; apply it with npx prisma migrate dev (or migrate deploy)\n`)
          process.stdout.write(`${file}\n`)
          return 0
        }
        process.stdout.write(script)
        return 0
      }),
    )
}
