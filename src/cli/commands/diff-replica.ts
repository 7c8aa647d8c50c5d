import type { Command } from 'commander'
import { LineError, splitHead } from '../../core/dump-format.js'
import { formatBatch, formatDiffHeader, isHashSpec, parseBatches, parseDiffHeader, parseHashSpec, parsePairBatch } from '../../core/diff-format.js'
import { diffReplica } from '../../replica/diff-replica.js'
import { Progress } from '../progress.js'
import { EXIT, runCommand } from '../run-command.js'
import { exitAfter, lineReporter, openInput, openOutput, progressWanted, readPipe, replicaTable, usageExit } from '../tool-support.js'

const EXAMPLES = `
Input: the output of 'cqrs diff-master' (or django-cqrs's cqrs_diff_master). After 'diff-master
--hash', rows at the same revision whose values differ (hashed from this replica's column text) are
written too; a replica that lacks a hashed key refuses, naming the --hash-keys to use.
Output: line 1 '<cqrs_id>,<timestamp>,<this replica's queue>', then per batch a JSON array of the pks
that are missing here or at another revision. Pipe it into 'cqrs diff-sync' on the master side.
Exit: 0 no drift, 1 drift found (pks written, like diff(1)), 2 error or bad input lines, 64 bad usage.

Examples:
  cqrs diff-master --cqrs-id author | cqrs diff-replica | cqrs diff-sync
  cqrs diff-replica -i author.diff > author.drift; echo "drift: $?"
`

export function registerDiffReplica(program: Command): void {
  usageExit(
    program
      .command('diff-replica')
      .description('Stage 2 of the diff pipe: keep the master pks that are missing or stale in this replica')
      .option('-i, --input <file>', 'diff-master output, or - for stdin', '-')
      .option('-o, --output <file>', 'file to write, or - for stdout', '-')
      .option('--progress', 'progress lines on stderr even when it is not a terminal')
      .addHelpText('after', EXAMPLES),
  ).action((opts, cmd: Command) =>
    exitAfter(runCommand(cmd, async (ctx) => {
      const label = 'cqrs diff-replica'
      const input = openInput(opts.input)
      const { head, rest } = await readPipe(input, "diff-master's output ('<cqrs_id>,<timestamp>' on line 1)")
      const header = parseDiffHeader(head.text)
      const t = await replicaTable(ctx, header.cqrsId)
      // diff-master --hash puts its spec on line 2; the batches follow.
      const second = await splitHead(rest)
      const hash = second.head && isHashSpec(second.head.text) ? parseHashSpec(second.head) : undefined
      const batchLines = second.head && !hash ? prepend(second.head, second.rest) : second.rest
      const out = openOutput(opts.output)
      await out.write(`${formatDiffHeader({ cqrsId: header.cqrsId, timestamp: header.timestamp, queue: t.queue })}\n`)
      const bad = lineReporter(label)
      const progress = new Progress({ label, enabled: progressWanted(opts.progress), fraction: input.fraction })
      const tally = { missing: 0, stale: 0, changed: 0 }
      for await (const ev of diffReplica({ reader: t.reader, target: t.target, batches: parseBatches(batchLines, parsePairBatch), hash })) {
        if (ev instanceof LineError) {
          bad.report(ev)
          continue
        }
        if (ev.drifted.length) await out.write(`${formatBatch(ev.drifted)}\n`)
        tally.missing += ev.missing
        tally.stale += ev.stale
        tally.changed += ev.changed
        progress.add(ev.checked)
      }
      await out.close()
      const drift = tally.missing + tally.stale + tally.changed
      const changed = hash ? `, ${tally.changed} with other values` : ''
      progress.summary(`checked ${progress.done} rows of ${header.cqrsId}: ${drift ? `${drift} drifted (${tally.missing} missing, ${tally.stale} at another revision${changed})` : 'no drift'}${bad.count ? `; ${bad.count} bad lines` : ''}`)
      return bad.count ? EXIT.error : drift ? EXIT.drift : EXIT.ok
    })),
  )
}

async function* prepend<T>(first: T, rest: AsyncIterable<T>): AsyncIterable<T> {
  yield first
  yield* rest
}
