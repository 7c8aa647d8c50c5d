import type { Command } from 'commander'
import { diffTimestamp, formatBatch, formatDiffHeader } from '../../core/diff-format.js'
import { replicaPks } from '../../replica/diff-replica.js'
import { Progress } from '../progress.js'
import { EXIT, runCommand } from '../run-command.js'
import { batchSize, exitAfter, openOutput, progressWanted, replicaTable, usageExit } from '../tool-support.js'

const EXAMPLES = `
Output: line 1 '<cqrs_id>,<timestamp>', then per batch a JSON array of this replica's pks (the
django-cqrs cqrs_deleted_diff_replica format). Pipe it into 'cqrs deleted-diff-master'.
Exit: 0 done, 2 error, 64 bad usage.

Examples:
  cqrs deleted-diff-replica --cqrs-id author | cqrs deleted-diff-master | cqrs deleted-sync-replica
`

export function registerDeletedDiffReplica(program: Command): void {
  usageExit(
    program
      .command('deleted-diff-replica')
      .description('Stage 1 of the deleted-diff pipe: list every pk of the replica table, in batches')
      .requiredOption('--cqrs-id <id>', 'the cqrs_id whose replica table to list')
      .option('-o, --output <file>', 'file to write, or - for stdout', '-')
      .option('--batch <n>', 'pks per line (env CQRS_TOOLS_BATCH; default 5000)')
      .option('--progress', 'progress lines on stderr even when it is not a terminal')
      .addHelpText('after', EXAMPLES),
  ).action((opts, cmd: Command) =>
    exitAfter(runCommand(cmd, async (ctx) => {
      const t = await replicaTable(ctx, opts.cqrsId)
      const out = openOutput(opts.output)
      const progress = new Progress({ label: 'cqrs deleted-diff-replica', enabled: progressWanted(opts.progress), total: await t.reader.count() })
      await out.write(`${formatDiffHeader({ cqrsId: opts.cqrsId, timestamp: diffTimestamp() })}\n`)
      for await (const pks of replicaPks({ reader: t.reader, target: t.target, batchSize: batchSize(opts.batch, 5000) })) {
        await out.write(`${formatBatch(pks)}\n`)
        progress.add(pks.length)
      }
      await out.close()
      progress.summary(`listed ${progress.done} replica rows of ${opts.cqrsId}`)
      return EXIT.ok
    })),
  )
}
