import { Command } from 'commander'
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
  registerDeadLetters(program)
  registerTriggers(program)
  return program
}

await buildProgram().parseAsync(process.argv)
