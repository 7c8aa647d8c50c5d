import type { Command } from 'commander'
import { diffTimestamp, formatBatch, formatDiffHeader } from '../../core/diff-format.js'
import { diffMaster } from '../../master/diff-master.js'
import { Progress } from '../progress.js'
import { EXIT, runCommand } from '../run-command.js'
import { batchSize, exitAfter, masterModel, openOutput, progressWanted, usageExit } from '../tool-support.js'

const EXAMPLES = `
Output: line 1 '<cqrs_id>,<timestamp>', then per batch a JSON array of [pk, revision] pairs (the
django-cqrs cqrs_diff_master format). Pipe it into 'cqrs diff-replica' on the replica side.
Exit: 0 done, 2 error, 64 bad usage.

Examples:
  cqrs diff-master --cqrs-id author | ssh replica 'cqrs diff-replica' | cqrs diff-sync
  cqrs diff-master --cqrs-id author -o author.diff --progress
`

export function registerDiffMaster(program: Command): void {
  usageExit(
    program
      .command('diff-master')
      .description('Stage 1 of the diff pipe: list every master row as [pk, revision], in batches')
      .requiredOption('--cqrs-id <id>', 'the cqrs_id of the master model')
      .option('-o, --output <file>', 'file to write, or - for stdout', '-')
      .option('--batch <n>', 'pairs per line (env CQRS_TOOLS_BATCH; default 5000)')
      .option('--progress', 'progress lines on stderr even when it is not a terminal')
      .addHelpText('after', EXAMPLES),
  ).action((opts, cmd: Command) =>
    exitAfter(runCommand(cmd, async (ctx) => {
      const m = await masterModel(ctx, opts.cqrsId)
      const total = await m.source.count()
      const out = openOutput(opts.output)
      const progress = new Progress({ label: 'cqrs diff-master', enabled: progressWanted(opts.progress), total })
      await out.write(`${formatDiffHeader({ cqrsId: m.plan.cqrsId, timestamp: diffTimestamp() })}\n`)
      let rows = 0
      for await (const pairs of diffMaster({ source: m.source, plan: m.plan, batchSize: batchSize(opts.batch, 5000) })) {
        if (pairs.length) await out.write(`${formatBatch(pairs)}\n`)
        rows += pairs.length
        progress.add(pairs.length)
      }
      await out.close()
      progress.summary(`listed ${rows} rows of ${m.plan.cqrsId}`)
      return EXIT.ok
    })),
  )
}
