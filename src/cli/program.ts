import { Command } from 'commander'
import { COMMANDS, commandNamed } from './commands.js'

/**
 * `cqrs`: every command parses argv, calls the library, prints, and sets the exit code. Only the
 * command that `args` names is loaded; the others are listed (name and description) for `--help`.
 */
export async function buildProgram(args: readonly string[] = process.argv.slice(2)): Promise<Command> {
  const program = new Command('cqrs')
    .description('cqrs-sync: keep read-only replicas of Prisma models in sync between services (django-cqrs compatible)')
    .option('-c, --config <file>', 'config file (env CQRS_CONFIG; default ./cqrs.config.ts)')
    .showHelpAfterError()
  const wanted = commandNamed(args)
  for (const entry of COMMANDS) {
    if (entry === wanted) (await entry.load())(program)
    else program.command(entry.name).description(entry.description)
  }
  return program
}
