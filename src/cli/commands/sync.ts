import type { Command } from 'commander'
import { syncRoutingKey, syncRows } from '../../master/sync.js'
import { runtime } from '../../transport/runtime-transport.js'
import { Progress } from '../progress.js'
import { EXIT, runCommand } from '../run-command.js'
import { batchSize, exitAfter, filteredMaster, progressWanted, usageExit } from '../tool-support.js'

const EXAMPLES = `
The filter is a Prisma where object for the model (validated against it; never SQL). '{}' is every row.
Without --queue the SYNCs go to every replica (routing key <cqrs_id>); with it, only to queue Q
(routing key cqrs.<Q>.<cqrs_id>). A replica applies a SYNC unless it holds a newer revision.
Exit: 0 done, 2 error (unknown cqrs_id, bad filter, broker), 64 bad usage.

Examples:
  cqrs sync --cqrs-id author --filter '{"id":{"in":[1,2,3]}}'
  cqrs sync --cqrs-id author --filter '{}' --queue payments
  cqrs sync --cqrs-id author --filter '{"cqrsUpdated":{"gte":"2026-11-01T00:00:00Z"}}' --progress
`

export function registerSync(program: Command): void {
  usageExit(
    program
      .command('sync')
      .description('Re-publish master rows as SYNC messages, to every replica or to one queue')
      .requiredOption('--cqrs-id <id>', 'the cqrs_id of the master model')
      .requiredOption('--filter <json>', "which rows: a Prisma where object, '{}' for all")
      .option('--queue <name>', 'send only to this replica queue')
      .option('--batch <n>', 'rows read and published per batch (env CQRS_TOOLS_BATCH; default 1000)')
      .option('--progress', 'progress lines on stderr even when it is not a terminal')
      .addHelpText('after', EXAMPLES),
  ).action((opts, cmd: Command) =>
    exitAfter(runCommand(cmd, async (ctx) => {
      const { m, where, total } = await filteredMaster(ctx, opts.cqrsId, opts.filter)
      const transport = runtime(m.transport ?? (await ctx.transport()))
      ctx.onClose(() => transport.close())
      const queue: string | null = opts.queue ?? null
      const progress = new Progress({ label: 'cqrs sync', enabled: progressWanted(opts.progress), total })
      let published = 0
      let skipped = 0
      for await (const b of syncRows({ source: m.source, plan: m.plan, transport, ctx: m.buildContext('sync'), queue, batchSize: batchSize(opts.batch, 1000), where })) {
        published += b.published
        skipped += b.skipped
        progress.add(b.published + b.skipped)
      }
      const to = queue ? `queue ${queue}` : 'every replica'
      progress.summary(`published ${published} SYNC messages of ${m.plan.cqrsId} to ${to} (routing key ${syncRoutingKey(m.plan.cqrsId, queue)})${skipped ? `; ${skipped} rows left out by the model's filter` : ''}`)
      return EXIT.ok
    })),
  )
}
