/**
 * The diff pipe formats of PROTOCOL.md ("CLI formats"), as pure functions, so a stage of ours can face
 * a django-cqrs stage on either side:
 *
 *   diff-master   line 1 `<cqrs_id>,<timestamp>`, then per batch a JSON array of `[pk, revision]`
 *   diff-replica  line 1 `<cqrs_id>,<timestamp>,<queue>`, then per batch a JSON array of pks
 *   deleted-diff-* line 1 `<cqrs_id>,<timestamp>`, then per batch a JSON array of pks
 *
 * Pks keep their JSON type: numbers for int and bigint (exact beyond 2^53), strings for uuid and text.
 * An empty batch may be written as `[]` or left out; both read the same.
 *
 * `diff-master --hash` (ours only; django-cqrs's stages do not read it): line 2 is the hash spec, a
 * JSON object `{"hash":"sha256-16","keys":[["name","String"],["balance","Decimal"],...]}` naming the
 * hashed keys with the master's kind of each, and each item is `[pk, revision, "<row hash>"]`
 * (row-hash.ts). diff-replica's output is the same with or without it.
 */
import { ExactDateTime } from './datetime.js'
import { LineError, type Line } from './dump-format.js'
import { parseJson, stringifyJson } from './json.js'
import type { ScalarKind } from './codec.js'
import type { HashedKeys } from './row-hash.js'

/** A primary key on the wire. */
export type WirePk = string | number | bigint

/** Line 1 of every diff format. `queue` is there only after diff-replica. */
export interface DiffHeader {
  cqrsId: string
  /** As written by the stage that started the pipe (django form `2026-11-23 03:39:06.098044+00:00`). */
  timestamp: string
  queue?: string
}

const NAME = /^[\w.-]+$/

/** The timestamp of a header, in django's `str(datetime)` form. */
export function diffTimestamp(d: Date = new Date()): string {
  return ExactDateTime.fromDate(d).toWire()
}

export function formatDiffHeader(h: DiffHeader): string {
  return h.queue === undefined ? `${h.cqrsId},${h.timestamp}` : `${h.cqrsId},${h.timestamp},${h.queue}`
}

/**
 * Read line 1. `expectQueue` true: the header must name a queue (diff-sync's input); false: a queue
 * is tolerated and kept (a stage may be fed the output of the next one by mistake; it is still clear).
 */
export function parseDiffHeader(text: string, expectQueue = false): DiffHeader {
  const parts = text.trim().split(',')
  const [cqrsId, timestamp, queue] = parts
  if (parts.length < 2 || parts.length > 3 || !NAME.test(cqrsId ?? '') || !timestamp?.trim())
    throw new LineError(1, `a diff starts with '<cqrs_id>,<timestamp>' (or '<cqrs_id>,<timestamp>,<queue>' after diff-replica); got ${JSON.stringify(text.slice(0, 80))}`)
  if (queue !== undefined && !NAME.test(queue)) throw new LineError(1, `the queue in the header must be a queue name; got ${JSON.stringify(queue)}`)
  if (expectQueue && queue === undefined)
    throw new LineError(1, `the header '${text.trim()}' names no queue: diff-sync reads the output of diff-replica ('<cqrs_id>,<timestamp>,<queue>'), not of diff-master; or pass --queue`)
  return queue === undefined ? { cqrsId, timestamp: timestamp.trim() } : { cqrsId, timestamp: timestamp.trim(), queue }
}

/** The one hash the spec line can name today. */
export const HASH_NAME = 'sha256-16'

const KINDS = new Set<ScalarKind>(['String', 'Int', 'BigInt', 'Float', 'Decimal', 'Boolean', 'DateTime', 'Date', 'Json', 'Bytes', 'Enum'])

/** Line 2 of `diff-master --hash`. */
export function formatHashSpec(keys: HashedKeys): string {
  return JSON.stringify({ hash: HASH_NAME, keys })
}

/** Whether a line after the header is the hash spec (a JSON object) rather than a batch (an array). */
export const isHashSpec = (text: string): boolean => text.trimStart().startsWith('{')

/** Read line 2 of `diff-master --hash`. */
export function parseHashSpec(line: Line): HashedKeys {
  let v: any
  try {
    v = JSON.parse(line.text)
  } catch (e) {
    throw new LineError(line.line, `the hash spec is not valid JSON (${(e as Error).message})`)
  }
  if (v?.hash !== HASH_NAME) throw new LineError(line.line, `unknown hash ${JSON.stringify(v?.hash)}; this version reads '${HASH_NAME}' (is diff-master newer than diff-replica?)`)
  const keys = v.keys
  if (!Array.isArray(keys) || !keys.length || !keys.every((k: unknown) => Array.isArray(k) && k.length === 2 && typeof k[0] === 'string' && KINDS.has(k[1])))
    throw new LineError(line.line, `the hash spec's keys must be [key, kind] pairs with kinds among ${[...KINDS].join(', ')}; got ${JSON.stringify(keys)?.slice(0, 80)}`)
  return keys as HashedKeys
}

/** One batch line: a JSON array, big integers exact. */
export function formatBatch(items: ReadonlyArray<WirePk | readonly [WirePk, number] | readonly [WirePk, number, string]>): string {
  return stringifyJson(items)
}

function parseArray(line: Line): unknown[] {
  let v: unknown
  try {
    v = parseJson(line.text)
  } catch (e) {
    throw new LineError(line.line, `not valid JSON (${(e as Error).message}); starts with ${JSON.stringify(line.text.slice(0, 60))}`)
  }
  if (!Array.isArray(v)) throw new LineError(line.line, `a batch line is a JSON array; got ${JSON.stringify(v)?.slice(0, 60)}`)
  return v
}

const isPk = (v: unknown): v is WirePk => typeof v === 'string' || typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))

/** A batch of diff-master: `[[pk, revision], ...]`, or `[[pk, revision, hash], ...]` after `--hash`. */
export function parsePairBatch(line: Line): Array<[WirePk, number] | [WirePk, number, string]> {
  const items = parseArray(line)
  items.forEach((it, i) => {
    if (!Array.isArray(it) || it.length < 2 || it.length > 3 || !isPk(it[0]) || typeof it[1] !== 'number' || !Number.isInteger(it[1]) || (it.length === 3 && typeof it[2] !== 'string'))
      throw new LineError(line.line, `item ${i + 1} must be [pk, revision] (pk a string or an integer, revision an integer), or [pk, revision, hash] after diff-master --hash; got ${stringifyJson(it).slice(0, 60)}`)
  })
  return items as Array<[WirePk, number] | [WirePk, number, string]>
}

/** A batch of pks (diff-replica, deleted-diff-replica, deleted-diff-master). */
export function parsePkBatch(line: Line): WirePk[] {
  const items = parseArray(line)
  items.forEach((it, i) => {
    if (!isPk(it)) throw new LineError(line.line, `item ${i + 1} must be a pk (a string or an integer); got ${stringifyJson(it).slice(0, 60)}`)
  })
  return items as WirePk[]
}

/** A parsed batch line, or the error that line gave (the rest of the input is still read). */
export type Parsed<T> = { line: number; items: T } | LineError

/** Parse every batch line with `parse`; a bad line becomes a {@link LineError} in the stream, not a stop. */
export async function* parseBatches<T>(lines: AsyncIterable<Line>, parse: (l: Line) => T): AsyncIterable<Parsed<T>> {
  for await (const l of lines) {
    try {
      yield { line: l.line, items: parse(l) }
    } catch (e) {
      yield e instanceof LineError ? e : new LineError(l.line, (e as Error).message)
    }
  }
}

/**
 * Each parsed batch with its pks decoded by `decode`; a bad line, or pks that do not decode, pass on
 * as a {@link LineError} (the stages report it and go on).
 */
export async function* decodedBatches<T>(batches: AsyncIterable<Parsed<T>>, decode: (line: number, items: T) => unknown[]): AsyncIterable<{ line: number; items: T; pks: unknown[] } | LineError> {
  for await (const b of batches) {
    if (b instanceof LineError) {
      yield b
      continue
    }
    try {
      yield { line: b.line, items: b.items, pks: decode(b.line, b.items) }
    } catch (e) {
      yield e as LineError
    }
  }
}
