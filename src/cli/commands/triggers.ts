import type { Command } from 'commander'
import { captureTriggerStatements, installCaptureTriggers, outboxNotifyStatements } from '../../prisma/cqrs-master.js'
import { runCommand } from '../run-command.js'

const EXAMPLES = `
Examples:
  cqrs triggers > prisma/migrations/20261123_cqrs_triggers/migration.sql   # review, then migrate
  cqrs triggers --apply                                                     # install or refresh now
  cqrs triggers --notify-only --apply                                       # capture: 'extension' with a separate cqrs relay
Run it again after any schema change of a master model (the trigger lists its columns).
On PostgreSQL the output also holds the outbox's NOTIFY trigger, which wakes a separate
\`cqrs relay\` at commit instead of at its next poll.
`

export function registerTriggers(program: Command): void {
  program
    .command('triggers')
    .description("Print (or --apply) the capture triggers for the master models, for cqrsMaster({ capture: 'trigger' })")
    .option('--apply', 'install or refresh them in the master database now')
    .option('--notify-only', "only the outbox's NOTIFY trigger (PostgreSQL), for capture: 'extension' with a separate cqrs relay")
    .addHelpText('after', EXAMPLES)
    .action((opts, cmd: Command) =>
      runCommand(cmd, async (ctx) => {
        const { prisma, transport: _t, ...options } = await ctx.master()
        const notify = outboxNotifyStatements(prisma, options)
        if (opts.notifyOnly && notify.length === 0) process.stderr.write('cqrs triggers: the NOTIFY trigger is for PostgreSQL only; on this database the relay polls\n')
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
        process.stdout.write(`-- cqrs-sync capture triggers (cqrs triggers); regenerate after schema changes\n${statements.map((s) => `${s};\n`).join('\n')}`)
        return 0
      }),
    )
}
