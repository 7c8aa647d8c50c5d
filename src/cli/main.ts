import { Command } from 'commander'
import { registerBulkDump } from './commands/bulk-dump.js'
import { registerBulkLoad } from './commands/bulk-load.js'
import { registerDeletedDiffMaster } from './commands/deleted-diff-master.js'
import { registerDeletedDiffReplica } from './commands/deleted-diff-replica.js'
import { registerDeletedSyncReplica } from './commands/deleted-sync-replica.js'
import { registerDiffMaster } from './commands/diff-master.js'
import { registerDiffReplica } from './commands/diff-replica.js'
import { registerDiffSync } from './commands/diff-sync.js'
import { registerStatus } from './commands/status.js'
import { registerSync } from './commands/sync.js'
import { registerConsume } from './commands/consume.js'
import { registerDeadLetters } from './commands/dead-letters.js'
import { registerRelay } from './commands/relay.js'
import { registerTriggers } from './commands/triggers.js'

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
