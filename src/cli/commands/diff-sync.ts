import type { Command } from 'commander'
import { LineError } from '../../core/dump-format.js'
import { parseBatches, parseDiffHeader, parsePkBatch } from '../../core/diff-format.js'
import { syncPks, syncRoutingKey } from '../../master/sync.js'
import { runtime } from '../../transport/runtime-transport.js'
import { Progress } from '../progress.js'
import { EXIT, runCommand } from '../run-command.js'
import { exitAfter, lineReporter, masterModel, openInput, progressWanted, readPipe, usageExit } from '../tool-support.js'

const EXAMPLES = `
Input: the output of 'cqrs diff-replica' (or django-cqrs's cqrs_diff_replica): line 1
'<cqrs_id>,<timestamp>,<queue>', then JSON arrays of pks. Each row is sent as SYNC to routing key
cqrs.<queue>.<cqrs_id>, so only that replica gets it; pks the master no longer has are skipped
(run the deleted-diff pipe for those).
Exit: 0 done, 2 error or bad input lines, 64 bad usage.

Examples:
  cqrs diff-master --cqrs-id author | cqrs diff-replica | cqrs diff-sync
  cqrs diff-sync -i author.drift --queue payments     # send to another queue than the header's
`

export function registerDiffSync(program: Command): void {
  usageExit(
    program
      .command('diff-sync')
      .description('Stage 3 of the diff pipe: send the drifted master rows as SYNC to the replica queue')
      .option('-i, --input <file>', 'diff-replica output, or - for stdin', '-')
      .option('--queue <name>', "send to this queue instead of the one in the header")
      .option('--progress', 'progress lines on stderr even when it is not a terminal')
      .addHelpText('after', EXAMPLES),
  ).action((opts, cmd: Command) =>
    exitAfter(runCommand(cmd, async (ctx) => {
      const label = 'cqrs diff-sync'
      const input = openInput(opts.input)
      const { head, rest } = await readPipe(input, "diff-replica's output ('<cqrs_id>,<timestamp>,<queue>' on line 1)")
      const header = parseDiffHeader(head.text, !opts.queue)
      const queue: string = opts.queue ?? header.queue
      const m = await masterModel(ctx, header.cqrsId)
      const transport = runtime(m.transport ?? (await ctx.transport()))
      ctx.onClose(() => transport.close())
      const bad = lineReporter(label)
      const progress = new Progress({ label, enabled: progressWanted(opts.progress), fraction: input.fraction })
      let published = 0
      let skipped = 0
      for await (const ev of syncPks({ source: m.source, plan: m.plan, transport, ctx: m.buildContext('diff-sync'), queue, batches: parseBatches(rest, parsePkBatch) })) {
        if (ev instanceof LineError) {
          bad.report(ev)
          continue
        }
        published += ev.published
        skipped += ev.skipped
        progress.add(ev.published + ev.skipped)
      }
      progress.summary(`sent ${published} SYNC messages of ${header.cqrsId} to queue ${queue} (routing key ${syncRoutingKey(header.cqrsId, queue)}); ${skipped} pks no longer on the master skipped${bad.count ? `; ${bad.count} bad lines` : ''}`)
      return bad.count ? EXIT.error : EXIT.ok
    })),
  )
}
