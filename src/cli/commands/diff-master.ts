import type { Command } from 'commander'
import { diffTimestamp, formatBatch, formatDiffHeader, formatHashSpec } from '../../core/diff-format.js'
import { diffMaster, diffMasterHashed, hashedKeys } from '../../master/diff-master.js'
import { Progress } from '../progress.js'
import { EXIT, runCommand } from '../run-command.js'
import { batchSize, exitAfter, masterModel, openOutput, progressWanted, usageExit } from '../tool-support.js'

const EXAMPLES = `
Output: line 1 '<cqrs_id>,<timestamp>', then per batch a JSON array of [pk, revision] pairs (the
django-cqrs cqrs_diff_master format). Pipe it into 'cqrs diff-replica' on the replica side.
With --hash, line 2 names the hashed keys and each item is [pk, revision, hash] (a hash of the row's
values), so diff-replica also finds rows that differ at the same revision; only our diff-replica reads
it. --hash-keys limits the hash to the keys a replica stores.
Exit: 0 done, 2 error, 64 bad usage.

Examples:
  cqrs diff-master --cqrs-id author | ssh replica 'cqrs diff-replica' | cqrs diff-sync
  cqrs diff-master --cqrs-id author -o author.diff --progress
  cqrs diff-master --cqrs-id author --hash | cqrs diff-replica | cqrs diff-sync
  cqrs diff-master --cqrs-id author --hash-keys name,balance | cqrs diff-replica | cqrs diff-sync
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
      .option('--hash', "add a hash of each row's values, to find rows that differ at the same revision")
      .option('--hash-keys <keys>', 'hash only these wire keys (comma-separated; implies --hash)')
      .addHelpText('after', EXAMPLES),
  ).action((opts, cmd: Command) =>
    exitAfter(runCommand(cmd, async (ctx) => {
      const m = await masterModel(ctx, opts.cqrsId)
      const total = await m.source.count()
      const out = openOutput(opts.output)
      const progress = new Progress({ label: 'cqrs diff-master', enabled: progressWanted(opts.progress), total })
      const keys = opts.hash || opts.hashKeys ? hashedKeys(m.plan, opts.hashKeys?.split(',').map((k: string) => k.trim()).filter(Boolean)) : null
      await out.write(`${formatDiffHeader({ cqrsId: m.plan.cqrsId, timestamp: diffTimestamp() })}\n`)
      if (keys) await out.write(`${formatHashSpec(keys)}\n`)
      let rows = 0
      const size = batchSize(opts.batch, 5000)
      const batches = keys ? diffMasterHashed({ source: m.source, plan: m.plan, batchSize: size, keys, ctx: m.buildContext('diff-master') }) : diffMaster({ source: m.source, plan: m.plan, batchSize: size })
      for await (const pairs of batches) {
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
