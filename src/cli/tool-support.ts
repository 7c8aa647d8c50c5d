/**
 * What the operating tools' commands (bulk-dump/load, sync, the diff pipes, status) share: the
 * master model or replica table of a cqrs_id (opened by the library, src/prisma/master-tools.ts and
 * replica-tools.ts), reading input and writing output streams, the exit-code rule for usage errors,
 * and reporting bad lines.
 */
import { createReadStream, createWriteStream, statSync } from 'node:fs'
import { once } from 'node:events'
import type { Command } from 'commander'
import { positiveInt, setting } from '../config/settings.js'
import { ConfigError, didYouMean } from '../core/errors.js'
import { readByteLineBlocks, readLines, splitHead, splitHeadBlocks, type ByteLine, type Line, type LineError } from '../core/dump-format.js'
import type { MasterModel } from '../prisma/master-tools.js'
import type { ReplicaTable } from '../prisma/replica-tools.js'
import type { RowScanner } from '../prisma/row-scanner.js'
import type { CliContext } from './context.js'
import { EXIT } from './run-command.js'

/** Commander's own usage errors exit 64 (EX_USAGE), so they never read as "drift found" (1). */
export function usageExit(cmd: Command): Command {
  return cmd.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT.usage))
}

/** `--batch` with the one precedence rule: flag > env CQRS_BATCH_SIZE > default. */
export const batchSize = (flag: string | undefined, fallback: number): number => setting({ name: 'batch', env: 'CQRS_TOOLS_BATCH', default: fallback, parse: positiveInt('--batch') }, flag, undefined)

/** Progress lines when stderr is a terminal or `--progress` was given. */
export const progressWanted = (flag: unknown): boolean => !!flag || !!process.stderr.isTTY

/** The master model replicated as `cqrsId`; a wrong id names the known ones. */
export async function masterModel(ctx: CliContext, cqrsId: string): Promise<MasterModel> {
  return (await ctx.masterTools()).model(cqrsId)
}

/** The master model of `cqrsId` with its `--filter` checked and the matching rows counted (dump, sync). */
export async function filteredMaster(ctx: CliContext, cqrsId: string, filter: string | undefined) {
  const m = await masterModel(ctx, cqrsId)
  const where = parseFilter(filter, m.source)
  return { m, where, total: await checkedCount(m.source, where) }
}

/** The replica table that receives `cqrsId`; a wrong id names the known ones. */
export async function replicaTable(ctx: CliContext, cqrsId: string): Promise<ReplicaTable> {
  return (await ctx.replicaTools()).table(cqrsId)
}

export interface Input {
  chunks: AsyncIterable<Buffer | string>
  /** Share of the file read so far (files only), for time-left estimates. */
  fraction(): number | undefined
  name: string
}

/** `-` is stdin; a file that is not there is a clear error, not a stack. */
export function openInput(path: string | undefined): Input {
  if (!path || path === '-') return { chunks: process.stdin, fraction: () => undefined, name: 'stdin' }
  let size: number
  try {
    const st = statSync(path)
    if (!st.isFile()) throw new ConfigError(`${path} is not a file`)
    size = st.size
  } catch (e) {
    if (e instanceof ConfigError) throw e
    throw new ConfigError(`Cannot read ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}. Give a dump file written by 'cqrs bulk-dump', or - for stdin.`)
  }
  const stream = createReadStream(path, { highWaterMark: 1 << 20 })
  let read = 0
  async function* chunks() {
    for await (const c of stream) {
      read += (c as Buffer).length
      yield c as Buffer
    }
  }
  return { chunks: chunks(), fraction: () => (size ? read / size : undefined), name: path }
}

export interface Output {
  write(text: string | Buffer): Promise<void>
  close(): Promise<void>
}

/** stdout (`-` or nothing) or a file; waits for the reader when it is slower (constant memory). */
export function openOutput(path: string | undefined): Output {
  const toFile = !!path && path !== '-'
  const stream = toFile ? createWriteStream(path!) : process.stdout
  let failed: Error | undefined
  stream.on('error', (e: NodeJS.ErrnoException) => {
    failed = e.code === 'EPIPE' ? new ConfigError('the reader of stdout went away (EPIPE); output is incomplete') : new ConfigError(`cannot write ${toFile ? path : 'stdout'}: ${e.message}`)
  })
  return {
    async write(text) {
      if (failed) throw failed
      if (!stream.write(text) && !failed) await drained(stream)
      if (failed) throw failed
    },
    async close() {
      if (toFile) {
        stream.end()
        await once(stream, 'finish').catch(() => {})
      }
      if (failed) throw failed
    },
  }
}

/** Resolves on 'drain', or on 'error' (reported by the stream's own error listener). */
function drained(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done)
      stream.off('error', done)
      resolve()
    }
    stream.on('drain', done)
    stream.on('error', done)
  })
}

/** Bad lines go to stderr with their number, as `cqrs <cmd>: line N: reason`; the first 100 of them. */
export function lineReporter(label: string): { report(e: LineError): void; readonly count: number } {
  let count = 0
  return {
    report(e) {
      count++
      if (count <= 100) process.stderr.write(`${label}: ${e.message}\n`)
      else if (count === 101) process.stderr.write(`${label}: more bad lines; only the count is reported from here\n`)
    },
    get count() {
      return count
    },
  }
}

/**
 * `--filter`: a JSON Prisma `where` object for the model, never SQL. Top-level keys are checked here
 * (with a did-you-mean); Prisma checks the rest when {@link checkedCount} runs it.
 */
export function parseFilter(text: string | undefined, source: RowScanner): Record<string, unknown> | undefined {
  if (text === undefined) return undefined
  let where: unknown
  try {
    where = JSON.parse(text)
  } catch (e) {
    throw new ConfigError(`--filter must be a JSON object (a Prisma where), e.g. '{"id":{"gte":100}}'; ${(e as Error).message}`)
  }
  if (typeof where !== 'object' || where === null || Array.isArray(where)) throw new ConfigError(`--filter must be a JSON object (a Prisma where), e.g. '{"id":{"gte":100}}'; got ${text}`)
  const meta = source.meta
  const allowed = [...meta.fields.map((f) => f.name), ...meta.relations.map((r) => r.name), 'AND', 'OR', 'NOT']
  for (const key of Object.keys(where)) {
    if (!allowed.includes(key)) throw new ConfigError(`--filter: ${meta.name} has no field '${key}'; fields: ${meta.fields.map((f) => f.name).join(', ')} (and AND, OR, NOT).${didYouMean(key, allowed)}`)
  }
  return where as Record<string, unknown>
}

/** Count the rows a filter selects; Prisma's validation error becomes one readable line. */
export async function checkedCount(source: RowScanner, where: Record<string, unknown> | undefined): Promise<number> {
  try {
    return await source.count(where)
  } catch (e) {
    const err = e as Error
    if (err.name === 'PrismaClientValidationError') {
      const reason = err.message.split('\n').map((l) => l.trim()).filter(Boolean).pop()
      throw new ConfigError(`--filter is not a valid Prisma where for ${source.meta.name}: ${reason}`)
    }
    throw e
  }
}

/** Line 1 and the rest of a pipe input; an empty input is an error that says what was expected. */
export async function readPipe(input: Input, expected: string): Promise<{ head: Line; rest: AsyncIterable<Line> }> {
  const { head, rest } = await splitHead(readLines(input.chunks))
  if (!head) throw new ConfigError(`${input.name} is empty: expected ${expected}`)
  return { head, rest }
}

/** {@link readPipe}, the rest a chunk's lines at a time (bulk-load: no await per line; lines as bytes, {@link ByteLine}). */
export async function readPipeBlocks(input: Input, expected: string): Promise<{ head: ByteLine; rest: AsyncIterable<ByteLine[]> }> {
  const { head, rest } = await splitHeadBlocks(readByteLineBlocks(input.chunks))
  if (!head) throw new ConfigError(`${input.name} is empty: expected ${expected}`)
  return { head, rest }
}

/**
 * Let the process exit once a tool command is done, even if a database driver still holds the event
 * loop: the MariaDB pool can keep connections it was still opening when Prisma's $disconnect ended
 * it, and a CLI in a pipeline must not hang there. The exit code set by runCommand stays.
 */
export async function exitAfter(done: Promise<void>): Promise<void> {
  await done
  setTimeout(() => process.exit(), 1000).unref()
}
