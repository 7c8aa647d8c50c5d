import type { Command } from 'commander'
import { positiveInt, setting } from '../../config/settings.js'
import { cqrsReplica } from '../../prisma/cqrs-replica.js'
import { listDeadLetters, purgeDeadLetters, retryDeadLetters, type DeadLetterSelector } from '../../replica/dead-letters.js'
import { runtime } from '../../transport/runtime-transport.js'
import type { CliContext } from '../context.js'
import { runCommand } from '../run-command.js'

const EXAMPLES = `
Examples:
  cqrs dead-letters list                     # what failed, why, how often
  cqrs dead-letters list --json | jq .reason
  cqrs dead-letters retry --id 3f2a...       # after fixing the cause
  cqrs dead-letters retry --cqrs-id account
  cqrs dead-letters purge --all
`

async function replicaQueue(ctx: CliContext) {
  const options = await ctx.replicaOptions()
  const transport = runtime(options.transport ?? (await ctx.transport()))
  ctx.onClose(() => transport.close())
  const replica = cqrsReplica({ ...options, transport, logger: options.logger ?? ctx.logger })
  return { transport, spec: replica.spec }
}

const selector = (o: { id?: string[]; cqrsId?: string[]; all?: boolean }): DeadLetterSelector => ({ ids: o.id, cqrsIds: o.cqrsId, all: o.all })

export function registerDeadLetters(program: Command): void {
  const dl = program.command('dead-letters').description("Inspect, retry or purge the replica's dead-letter queue (dead_letter_<queue>)").addHelpText('after', EXAMPLES)
  dl.command('list')
    .description('List dead letters without removing them')
    .option('--limit <n>', 'most to show (default 100)')
    .option('--json', 'one JSON object per line, with the body')
    .action((opts, cmd: Command) =>
      runCommand(cmd, async (ctx) => {
        const { transport, spec } = await replicaQueue(ctx)
        const limit = setting({ name: 'limit', default: 100, parse: positiveInt('--limit') }, opts.limit, undefined)
        const items = await listDeadLetters(transport, spec, limit)
        for (const d of items) {
          if (opts.json) process.stdout.write(`${JSON.stringify(d)}\n`)
          else process.stdout.write(`${d.id}\t${d.cqrsId}\t${String(d.pk)}\t${d.signal ?? '-'}\tattempts=${d.attempts ?? '?'}\t${d.lastFailedAt ?? '-'}\t${d.reason ?? d.lastError ?? '-'}\n`)
        }
        process.stderr.write(`${items.length} dead letter(s) in dead_letter_${spec.queue}${items.length === limit ? ` (showing the first ${limit}; --limit for more)` : ''}\n`)
        return 0
      }),
    )
  for (const [name, what] of [
    ['retry', 'Send dead letters back to the queue (retries reset, expiry cleared)'],
    ['purge', 'Delete dead letters for good'],
  ] as const) {
    dl.command(name)
      .description(what)
      .option('--id <ids...>', 'dead-letter ids (from list)')
      .option('--cqrs-id <ids...>', 'every dead letter of these cqrs_ids')
      .option('--all', 'every dead letter')
      .action((opts, cmd: Command) =>
        runCommand(cmd, async (ctx) => {
          const { transport, spec } = await replicaQueue(ctx)
          const n = await (name === 'retry' ? retryDeadLetters : purgeDeadLetters)(transport, spec, selector(opts))
          process.stderr.write(`${name === 'retry' ? 'retried' : 'purged'} ${n} dead letter(s) of queue ${spec.queue}\n`)
          return 0
        }),
      )
  }
}
