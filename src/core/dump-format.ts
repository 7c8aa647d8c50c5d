/**
 * The bulk-dump format of PROTOCOL.md ("CLI formats"), as pure functions: line 1 is the cqrs_id, every
 * next line one JSON object like a SAVE's `instance_data`. django-cqrs writes no final newline; we
 * write one, and read both. Also the line splitter every pipe format reads with.
 */
import { parseJson, RawJson, stringifyJson } from './json.js'

/** A line of a pipe format that cannot be read; `line` is 1-based, as editors count. */
export class LineError extends Error {
  readonly code = 'CQRS_BAD_LINE'
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}`)
    this.name = 'LineError'
  }
}

/** One line of input with its 1-based number (empty lines are not yielded, but counted). */
export interface Line {
  line: number
  text: string
}

/**
 * Split a byte or text stream into lines (`\n` or `\r\n`), in constant memory. Blank lines are skipped
 * but keep the numbering, so an error can name the line a user sees in an editor.
 */
export async function* readLines(chunks: AsyncIterable<Buffer | string>): AsyncIterable<Line> {
  for await (const block of readLineBlocks(chunks)) yield* block
}

/**
 * {@link readLines}, the lines of each chunk at once: a reader of millions of lines (bulk-load) then
 * awaits once per chunk, not once per line.
 */
export async function* readLineBlocks(chunks: AsyncIterable<Buffer | string>): AsyncIterable<Line[]> {
  for await (const block of readByteLineBlocks(chunks)) yield block.map((l) => ({ line: l.line, text: l.text }))
}

/**
 * A line as the bytes it was read as, decoded (UTF-8, as a decoder of the whole stream would) only when
 * its text is asked for: bulk-load's hot path reads the bytes and writes them on to COPY.
 */
export class ByteLine implements Line {
  private decoded: string | undefined
  constructor(
    readonly line: number,
    /** The chunk the line is in; its bytes are [start, end), without the line end. */
    readonly bytes: Buffer,
    readonly start: number,
    readonly end: number,
  ) {}

  get text(): string {
    return (this.decoded ??= this.bytes.toString('utf8', this.start, this.end))
  }
}

/** {@link readLineBlocks} as {@link ByteLine}s: the one place lines are split. */
export async function* readByteLineBlocks(chunks: AsyncIterable<Buffer | string>): AsyncIterable<ByteLine[]> {
  // The start of a line the chunks so far did not end (a multi-byte character may be split there too).
  let rest: Buffer | undefined
  let n = 0
  let block: ByteLine[] = []
  const push = (buf: Buffer, start: number, nl: number) => {
    n++
    const end = nl > start && buf[nl - 1] === 13 ? nl - 1 : nl
    if (end > start) block.push(new ByteLine(n, buf, start, end))
  }
  for await (const chunk of chunks) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    let start = 0
    if (rest) {
      const nl = buf.indexOf(10)
      if (nl < 0) {
        rest = Buffer.concat([rest, buf])
        continue
      }
      // The line across the border gets bytes of its own; the chunk's other lines stay where they are.
      const first = Buffer.concat([rest, buf.subarray(0, nl + 1)])
      rest = undefined
      push(first, 0, first.length - 1)
      start = nl + 1
    }
    for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
      push(buf, start, nl)
      start = nl + 1
    }
    if (start < buf.length) rest = buf.subarray(start)
    if (block.length) {
      yield block
      block = []
    }
  }
  if (rest) {
    n++
    const end = rest[rest.length - 1] === 13 ? rest.length - 1 : rest.length
    const last = new ByteLine(n, rest, 0, end)
    if (last.text.trim()) yield [last]
  }
}

/** Line 1 apart from the rest, for {@link readLineBlocks}: as {@link splitHead}. */
export async function splitHeadBlocks<L extends Line>(blocks: AsyncIterable<L[]>): Promise<{ head: L | undefined; rest: AsyncIterable<L[]> }> {
  const it = blocks[Symbol.asyncIterator]()
  const first = await it.next()
  if (first.done) return { head: undefined, rest: (async function* () {})() }
  const [head, ...more] = first.value
  async function* rest() {
    if (more.length) yield more
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value
  }
  return { head, rest: rest() }
}

/**
 * Line 1 apart from the rest: `head` is undefined for an empty input. `rest` continues the same
 * iterator, so the input is read once, in order.
 */
export async function splitHead(lines: AsyncIterable<Line>): Promise<{ head: Line | undefined; rest: AsyncIterable<Line> }> {
  const it = lines[Symbol.asyncIterator]()
  const first = await it.next()
  return { head: first.done ? undefined : first.value, rest: { [Symbol.asyncIterator]: () => it } }
}

/** Batch an async iterable into arrays of at most `size` items. */
export async function* batched<T>(items: AsyncIterable<T>, size: number): AsyncIterable<T[]> {
  let batch: T[] = []
  for await (const it of items) {
    batch.push(it)
    if (batch.length >= size) {
      yield batch
      batch = []
    }
  }
  if (batch.length) yield batch
}

const CQRS_ID = /^[\w.-]+$/

/** Line 1 of a dump. */
export function formatDumpHeader(cqrsId: string): string {
  return cqrsId
}

/** Read line 1 of a dump: the cqrs_id alone. */
export function parseDumpHeader(text: string): string {
  const id = text.trim()
  if (!CQRS_ID.test(id))
    throw new LineError(1, `a dump starts with its cqrs_id alone on line 1 (letters, digits, _, . and -); got ${JSON.stringify(text.slice(0, 80))}. Was the file written by 'cqrs bulk-dump'?`)
  return id
}

const quotedKeys = new Map<string, string>()

/** True when a JSON value holds a bigint or a {@link RawJson} somewhere (native JSON.stringify cannot write those). */
function hasBigNumbers(v: unknown): boolean {
  if (typeof v === 'bigint' || v instanceof RawJson) return true
  if (typeof v !== 'object' || v === null) return false
  for (const x of Array.isArray(v) ? v : Object.values(v)) if (hasBigNumbers(x)) return true
  return false
}

/**
 * One row of a dump: `instance_data` as JSON, big numbers exact. The same text as `stringifyJson`,
 * written flat for speed (a dump is millions of these): native JSON.stringify for strings and for
 * nested values without big numbers.
 */
export function formatDumpLine(instanceData: Record<string, unknown>): string {
  let out = '{'
  for (const k in instanceData) {
    const v = instanceData[k]
    if (v === undefined) continue
    let key = quotedKeys.get(k)
    if (key === undefined) {
      key = `${JSON.stringify(k)}:`
      if (quotedKeys.size < 10_000) quotedKeys.set(k, key)
    }
    let text: string
    switch (typeof v) {
      case 'string':
        text = JSON.stringify(v)
        break
      case 'number':
        text = Number.isFinite(v) ? String(v) : 'null'
        break
      case 'boolean':
        text = v ? 'true' : 'false'
        break
      case 'bigint':
        text = v.toString()
        break
      case 'object':
        text = v === null ? 'null' : v instanceof RawJson ? v.text : hasBigNumbers(v) ? stringifyJson(v) : JSON.stringify(v)
        break
      default:
        text = 'null'
    }
    out += out.length === 1 ? key + text : `,${key}${text}`
  }
  return `${out}}`
}

/** Read one row line; throws {@link LineError} naming the line and what is wrong. */
export function parseDumpLine(line: Line): Record<string, unknown> {
  let v: unknown
  try {
    v = parseJson(line.text)
  } catch (e) {
    throw new LineError(line.line, `not valid JSON (${(e as Error).message}); starts with ${JSON.stringify(line.text.slice(0, 60))}`)
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new LineError(line.line, `a dump row must be a JSON object (a SAVE's instance_data); got ${Array.isArray(v) ? 'an array' : JSON.stringify(v)}`)
  return v as Record<string, unknown>
}

/**
 * Takes the whitespace out of JSON text outside its strings, chunk by chunk (a string may span two
 * chunks), keeping the newlines between lines: PostgreSQL writes a json/jsonb value inside
 * `row_to_json` as `{"a": 1}`, the JS path writes `{"a":1}`, and a dump's bytes must not depend on
 * its path. JSON strings hold no raw control characters, so a newline is always a line end.
 */
export class JsonCompactor {
  private inString = false
  private escaped = false

  /** The chunk without whitespace outside strings (bytes in, bytes out; UTF-8 continuation bytes pass). */
  push(chunk: Buffer): Buffer {
    const out = Buffer.allocUnsafe(chunk.length)
    const len = chunk.length
    let n = 0
    let i = 0
    let inString = this.inString
    if (this.escaped && len) {
      out[n++] = chunk[i++] // the escaped byte after a backslash that ended the last chunk
      this.escaped = false
    }
    // Two tight loops, inside a string and outside (the state in locals): it runs over every byte of a
    // dump, and this is twice as fast as one loop testing the state at each byte.
    while (i < len) {
      if (inString) {
        let c = 0
        while (i < len) {
          c = chunk[i++]
          out[n++] = c
          if (c === 34 /* " */ || c === 92 /* \ */) break
        }
        if (c === 34) inString = false
        else if (c === 92) {
          if (i < len) out[n++] = chunk[i++]
          else this.escaped = true
        }
      } else {
        while (i < len) {
          const c = chunk[i++]
          if (c === 34) {
            out[n++] = c
            inString = true
            break
          }
          if (c !== 32 && c !== 9 && c !== 13) out[n++] = c
        }
      }
    }
    this.inString = inString
    return out.subarray(0, n)
  }
}
