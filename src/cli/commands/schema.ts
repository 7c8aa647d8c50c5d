import type { Command } from 'commander'
import { librarySchema, SCHEMA_PROVIDERS } from '../../prisma/library-schema.js'
import { EXIT } from '../run-command.js'
import { usageExit } from '../tool-support.js'

const EXAMPLES = `
The models go into your Prisma schema (then migrate as usual); the SQL is what they migrate to, for
projects that write their migrations by hand. Masters need CqrsOutbox, replicas CqrsTombstone.
No config is read.

Examples:
  cqrs schema --provider postgresql >> prisma/schema.prisma
  cqrs schema --provider mysql --sql > migrations/0001_cqrs.sql
`

export function registerSchema(program: Command): void {
  usageExit(
    program
      .command('schema')
      .description("Print the library's tables (cqrs_outbox, cqrs_tombstone) as Prisma models, or as SQL with --sql")
      .option('--provider <name>', `${SCHEMA_PROVIDERS.join(', ')} (MariaDB is mysql)`, 'postgresql')
      .option('--sql', 'print the SQL instead of the Prisma models')
      .addHelpText('after', EXAMPLES),
  ).action((opts: { provider: string; sql?: boolean }) => {
    try {
      process.stdout.write(librarySchema(opts.provider, opts.sql ? 'sql' : 'prisma'))
    } catch (e) {
      process.stderr.write(`cqrs schema: ${(e as Error).message}\n`)
      process.exitCode = EXIT.usage
    }
  })
}
