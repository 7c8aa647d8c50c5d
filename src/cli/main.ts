import { Command } from 'commander'
import { registerBulkDump } from './commands/bulk-dump.ts'
import { registerBulkLoad } from './commands/bulk-load.ts'
import { registerDeletedDiffMaster } from './commands/deleted-diff-master.ts'
import { registerDeletedDiffReplica } from './commands/deleted-diff-replica.ts'
import { registerDeletedSyncReplica } from './commands/deleted-sync-replica.ts'
import { registerDiffMaster } from './commands/diff-master.ts'
import { registerDiffReplica } from './commands/diff-replica.ts'
import { registerDiffSync } from './commands/diff-sync.ts'
import { registerStatus } from './commands/status.ts'
import { registerSync } from './commands/sync.ts'
import { registerConsume } from './commands/consume.ts'
import { registerDeadLetters } from './commands/dead-letters.ts'
import { registerRelay } from './commands/relay.ts'
import { registerTriggers } from './commands/triggers.ts'

/** `cqrs`: every command parses argv, calls the library, prints, and sets the exit code. */
export function buildProgram(): Command {
  const program = new Command('cqrs')
    .description('cqrs-sync: keep read-only replicas of Prisma models in sync between services (django-cqrs compatible)')
    .option('-c, --config <file>', 'config file (env CQRS_CONFIG; default ./cqrs.config.ts)')
    .showHelpAfterError()
  registerConsume(program)
  registerRelay(program)
  registerBulkDump(program)
  registerBulkLoad(program)
  registerSync(program)
  registerDiffMaster(program)
  registerDiffReplica(program)
  registerDiffSync(program)
  registerDeletedDiffReplica(program)
  registerDeletedDiffMaster(program)
  registerDeletedSyncReplica(program)
  registerStatus(program)
  registerDeadLetters(program)
  registerTriggers(program)
  return program
}

await buildProgram().parseAsync(process.argv)
