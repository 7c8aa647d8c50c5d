import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { batched, formatDumpHeader, formatDumpLine, LineError, parseDumpHeader, parseDumpLine, readByteLineBlocks, readLineBlocks, readLines, splitHead, splitHeadBlocks } from '../../src/core/dump-format.js'
import { RawJson, stringifyJson } from '../../src/core/json.js'

const PROTOCOL = process.env.CQRS_PROTOCOL_DIR ?? join(import.meta.dirname, '..', 'fixtures', 'django-cqrs')

async function* chunks(...parts: string[]) {
  for (const p of parts) yield Buffer.from(p)
}
const collect = async <T>(it: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

describe('readLines', () => {
  it('splits across chunk borders, counts blank lines, takes CRLF and a missing final newline', async () => {
    const lines = await collect(readLines(chunks('ab', 'c\n\nde', 'f\r\n', 'g')))
    expect(lines).toEqual([
      { line: 1, text: 'abc' },
      { line: 3, text: 'def' },
      { line: 4, text: 'g' },
    ])
  })

  it('keeps multi-byte characters split between chunks', async () => {
    const buf = Buffer.from('{"name":"Åsa"}\n')
    async function* split() {
      yield buf.subarray(0, 10)
      yield buf.subarray(10)
    }
    // Buffers are decoded per chunk; a split character must not be mangled.
    const [l] = await collect(readLines(split()))
    expect(parseDumpLine(l)).toEqual({ name: 'Åsa' })
  })

  it('splitHead gives line 1 and the rest of the same stream', async () => {
    const { head, rest } = await splitHead(readLines(chunks('author\n{"id":1}\n{"id":2}')))
    expect(head).toEqual({ line: 1, text: 'author' })
    expect((await collect(rest)).map((l) => l.line)).toEqual([2, 3])
    expect((await splitHead(readLines(chunks('')))).head).toBeUndefined()
  })

  it('reads the same lines a chunk at a time (bulk-load), line 1 apart', async () => {
    const parts = ['author\n{"id":1}\r\n\n{"i', 'd":2}\n', '{"id":3}']
    const { head, rest } = await splitHeadBlocks(readLineBlocks(chunks(...parts)))
    expect(head).toEqual({ line: 1, text: 'author' })
    const blocks = await collect(rest)
    expect(blocks.map((b) => b.map((l) => l.line))).toEqual([[2], [4], [5]])
    expect(blocks.flat()).toEqual((await collect(readLines(chunks(...parts)))).slice(1))
    const empty = await splitHeadBlocks(readLineBlocks(chunks('')))
    expect(empty.head).toBeUndefined()
    expect(await collect(empty.rest)).toEqual([])
  })

  it('gives bulk-load the bytes of each line, without its line end, decoding them only when asked', async () => {
    const parts = [Buffer.from('author\r'), Buffer.from('\n{"name":"Å'), Buffer.from([0x73, 0x61, 0x22, 0x7d, 0x0a, 0x0a, 0x7b, 0xff, 0x7d, 0x0d, 0x0a]), Buffer.from('{"id":3}\r')]
    async function* raw() {
      yield* parts
    }
    const lines = (await collect(readByteLineBlocks(raw()))).flat()
    expect(lines.map((l) => [l.line, l.bytes.toString('latin1', l.start, l.end)])).toEqual([
      [1, 'author'],
      [2, '{"name":"Ã\x85sa"}'],
      [4, '{\xff}'],
      [5, '{"id":3}'],
    ])
    // As a decoder of the whole stream reads them: a character split between chunks whole, a byte that is not UTF-8 as U+FFFD.
    expect(lines.map((l) => l.text)).toEqual(['author', '{"name":"Åsa"}', '{\ufffd}', '{"id":3}'])
  })

  it('batched groups items', async () => {
    expect(await collect(batched(chunks('a', 'b', 'c'), 2))).toHaveLength(2)
  })
})

describe('dump format', () => {
  it('reads the django-cqrs dump: cqrs_id, then instance_data objects, no final newline', async () => {
    const text = readFileSync(join(PROTOCOL, 'author.dump'), 'utf8')
    expect(text.endsWith('\n')).toBe(false)
    const { head, rest } = await splitHead(readLines(chunks(text)))
    expect(parseDumpHeader(head!.text)).toBe('author')
    const rows = (await collect(rest)).map(parseDumpLine)
    expect(rows).toHaveLength(7)
    expect(rows[1]).toMatchObject({ id: 5, birth_date: '1951-02-02', balance: 1.01, profile: { tags: ['peer', 'x1'] }, cqrs_revision: 0 })
  })

  it('writes each row as stringifyJson would, big numbers exact', () => {
    const row = { cqrs_revision: 3, cqrs_updated: '2026-11-23 03:36:52.912000+00:00', id: 12345678901234567890n, price: new RawJson('10.50'), ok: true, none: null, skip: undefined, json: { a: [1, { b: 9007199254740993n }], s: 'x"y' }, text: 'line\nbreak' }
    expect(formatDumpLine(row)).toBe(stringifyJson(row))
    expect(formatDumpLine(row)).toContain('"id":12345678901234567890')
    expect(formatDumpLine(row)).toContain('"b":9007199254740993')
    expect(formatDumpLine({})).toBe('{}')
    expect(formatDumpHeader('author')).toBe('author')
  })

  it('round-trips a line with a bigint beyond 2^53', () => {
    const line = formatDumpLine({ id: 9007199254740993n, cqrs_revision: 0 })
    expect(parseDumpLine({ line: 2, text: line })).toEqual({ id: 9007199254740993n, cqrs_revision: 0 })
  })

  it('names the line and the problem of a bad row', () => {
    expect(() => parseDumpLine({ line: 7, text: '{"id": 1,' })).toThrow(/^line 7: not valid JSON/)
    expect(() => parseDumpLine({ line: 8, text: '[1,2]' })).toThrow(/line 8: a dump row must be a JSON object/)
    const e = (() => {
      try {
        parseDumpLine({ line: 9, text: '42' })
      } catch (err) {
        return err
      }
    })()
    expect(e).toBeInstanceOf(LineError)
    expect((e as LineError).line).toBe(9)
  })

  it('refuses a header that is not a cqrs_id', () => {
    expect(() => parseDumpHeader('{"id":1}')).toThrow(/line 1: a dump starts with its cqrs_id/)
    expect(parseDumpHeader(' author \r')).toBe('author')
  })
})
