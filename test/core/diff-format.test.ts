import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { diffTimestamp, formatBatch, formatDiffHeader, parseBatches, parseDiffHeader, parsePairBatch, parsePkBatch } from '../../src/core/diff-format.js'
import { LineError, readLines, splitHead } from '../../src/core/dump-format.js'

const PROTOCOL = process.env.CQRS_PROTOCOL_DIR ?? join(import.meta.dirname, '..', 'fixtures', 'django-cqrs')
const fixture = (name: string) => readFileSync(join(PROTOCOL, name), 'utf8')

async function read(text: string) {
  async function* one() {
    yield text
  }
  const { head, rest } = await splitHead(readLines(one()))
  const lines = []
  for await (const l of rest) lines.push(l)
  return { head: head!, lines }
}

describe('diff formats against the django-cqrs outputs', () => {
  it('diff-master.out: header, then [pk, revision] pairs', async () => {
    const { head, lines } = await read(fixture('diff-master.out'))
    expect(parseDiffHeader(head.text)).toEqual({ cqrsId: 'author', timestamp: '2026-11-23 03:39:06.098044+00:00' })
    expect(parsePairBatch(lines[0])).toEqual([[4, 0], [5, 0], [1, 2], [2, 2], [6, 0], [7, 0], [8, 0]])
  })

  it('diff-replica.out: header with the queue, then pks', async () => {
    const { head, lines } = await read(fixture('diff-replica.out'))
    expect(parseDiffHeader(head.text, true)).toEqual({ cqrsId: 'author', timestamp: '2026-11-23 03:39:06.098044+00:00', queue: 'replica' })
    expect(parsePkBatch(lines[0])).toEqual([8, 1, 2])
  })

  it('deleted-diff-replica.out and deleted-diff-master.out: header, then pks', async () => {
    const r = await read(fixture('deleted-diff-replica.out'))
    expect(parseDiffHeader(r.head.text).cqrsId).toBe('author')
    expect(parsePkBatch(r.lines[0])).toEqual([4, 5, 6, 7, 999, 1, 2, 8])
    const m = await read(fixture('deleted-diff-master.out'))
    expect(parsePkBatch(m.lines[0])).toEqual([999])
  })

  it('writes what it reads, byte for byte', () => {
    const text = fixture('diff-master.out')
    const [header, batch] = text.split('\n')
    expect(formatDiffHeader(parseDiffHeader(header))).toBe(header)
    expect(formatBatch(parsePairBatch({ line: 2, text: batch }))).toBe(batch)
    const replica = fixture('diff-replica.out').split('\n')[0]
    expect(formatDiffHeader(parseDiffHeader(replica))).toBe(replica)
  })
})

describe('diff formats', () => {
  it('the timestamp has the django form', () => {
    expect(diffTimestamp(new Date('2026-11-23T03:39:06.098Z'))).toBe('2026-11-23 03:39:06.098000+00:00')
    expect(diffTimestamp(new Date('2026-11-23T03:39:06Z'))).toBe('2026-11-23 03:39:06+00:00')
  })

  it('keeps pk types: big integers exact, uuids and text as strings', () => {
    const line = formatBatch([[9007199254740993n, 1], ['0b7e1c1e-54b3-4a43-9d6b-000000000001', 0], ['a,b"c', 2]])
    expect(line).toBe('[[9007199254740993,1],["0b7e1c1e-54b3-4a43-9d6b-000000000001",0],["a,b\\"c",2]]')
    expect(parsePairBatch({ line: 2, text: line })[0][0]).toBe(9007199254740993n)
    expect(parsePkBatch({ line: 2, text: '[]' })).toEqual([])
  })

  it('a bad header or line says which line and what is wrong', () => {
    expect(() => parseDiffHeader('author')).toThrow(/line 1: a diff starts with '<cqrs_id>,<timestamp>'/)
    expect(() => parseDiffHeader('author,2026-11-23 03:39:06+00:00', true)).toThrow(/names no queue/)
    expect(() => parsePairBatch({ line: 4, text: '[[1,2],[3]]' })).toThrow(/^line 4: item 2 must be \[pk, revision\]/)
    expect(() => parsePairBatch({ line: 5, text: '[[1.5,2]]' })).toThrow(/line 5: item 1/)
    expect(() => parsePkBatch({ line: 6, text: '[1, null]' })).toThrow(/line 6: item 2 must be a pk/)
    expect(() => parsePkBatch({ line: 7, text: '{"a":1}' })).toThrow(/line 7: a batch line is a JSON array/)
    expect(() => parsePkBatch({ line: 8, text: '[1,' })).toThrow(/line 8: not valid JSON/)
  })

  it('parseBatches turns a bad line into a LineError and reads on', async () => {
    async function* lines() {
      yield { line: 2, text: '[1,2]' }
      yield { line: 3, text: 'oops' }
      yield { line: 4, text: '[3]' }
    }
    const out = []
    for await (const b of parseBatches(lines(), parsePkBatch)) out.push(b)
    expect(out[0]).toEqual({ line: 2, items: [1, 2] })
    expect(out[1]).toBeInstanceOf(LineError)
    expect((out[1] as LineError).line).toBe(3)
    expect(out[2]).toEqual({ line: 4, items: [3] })
  })
})
