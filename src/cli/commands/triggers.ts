import type { Command } from 'commander'
import { captureTriggerStatements, installCaptureTriggers } from '../../prisma/cqrs-master.js'
import { runCommand } from '../run-command.js'

const EXAMPLES = `
Examples:
  cqrs triggers > prisma/migrations/20261123_cqrs_triggers/migration.sql   # review, then migrate
  cqrs triggers --apply                                                     # install or refresh now
Run it again after any schema change of a master model (the trigger lists its columns).
`

export function registerTriggers(program: Command): void {
  program
    .command('triggers')
    .description("Print (or --apply) the capture triggers for the master models, for cqrsMaster({ capture: 'trigger' })")
    .option('--apply', 'install or refresh them in the master database now')
    .addHelpText('after', EXAMPLES)
    .action((opts, cmd: Command) =>
      runCommand(cmd, async (ctx) => {
        const { prisma, transport: _t, ...options } = await ctx.master()
        if (opts.apply) {
          const models = await installCaptureTriggers(prisma, options)
          process.stderr.write(`cqrs triggers: installed capture triggers for ${models.join(', ')}\n`)
          return 0
        }
        const statements = await captureTriggerStatements(prisma, options)
        process.stdout.write(`-- cqrs-sync capture triggers (cqrs triggers); regenerate after schema changes\n${statements.map((s) => `${s};\n`).join('\n')}`)
        return 0
      }),
    )
}
