import { mkdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import type { Command } from 'commander'
import { captureTriggerStatements, installCaptureTriggers, outboxNotifyStatements } from '../../prisma/cqrs-master.js'
import { runCommand } from '../run-command.js'

const EXAMPLES = `
Examples:
  cqrs triggers --migration            # a new migration in prisma/migrations; then: npx prisma migrate dev (or deploy)
  cqrs triggers > prisma/migrations/20261123000000_cqrs_triggers/migration.sql   # the same, by hand
  cqrs triggers --apply                # install or refresh now, without a migration
  cqrs triggers --notify-only --apply  # only the outbox NOTIFY trigger (PostgreSQL), for lag of a few ms
On MySQL and SQLite the triggers list the model's columns: run it again after a schema change of a
master model (the first write refuses to run with outdated triggers and says so). On PostgreSQL they
serialise the row whatever its columns; run it again when the master options of a model change
(cqrs_id, trackedFields, filter, produce). --notify adds the outbox's NOTIFY trigger (PostgreSQL),
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
    .addHelpText('after', EXAMPLES)
    .action((opts, cmd: Command) =>
      runCommand(cmd, async (ctx) => {
        const { prisma, transport: _t, ...options } = await ctx.master()
        const notify = opts.notify || opts.notifyOnly ? outboxNotifyStatements(prisma, options) : []
        if ((opts.notify || opts.notifyOnly) && notify.length === 0) process.stderr.write('cqrs triggers: the NOTIFY trigger is for PostgreSQL only; on this database the relay polls\n')
        if (opts.apply) {
          if (!opts.notifyOnly) {
            const models = await installCaptureTriggers(prisma, options)
            process.stderr.write(`cqrs triggers: installed capture triggers for ${models.join(', ')}\n`)
          }
          for (const sql of notify) await prisma.$executeRawUnsafe(sql)
          if (notify.length) process.stderr.write('cqrs triggers: installed the outbox NOTIFY trigger\n')
          return 0
        }
        const statements = [...(opts.notifyOnly ? [] : await captureTriggerStatements(prisma, options)), ...notify]
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
