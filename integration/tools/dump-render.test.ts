/**
 * bulk-dump's PostgreSQL fast path (lines rendered by the database) gives the same JSON, value for
 * value and key for key, as the JS path (instanceData + formatDumpLine), for every scalar kind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolveMasterOptions } from '../../src/config/master-options.js'
import { formatDumpLine } from '../../src/core/dump-format.js'
import { dumpRows } from '../../src/master/dump.js'
import { modelsOf } from '../../src/prisma/internals.js'
import { buildPlans, findModel } from '../../src/prisma/model-plans.js'
import { pgDumpLineSql, RowScanner } from '../../src/prisma/row-scanner.js'
import { createTestDatabase, type TestDatabase } from '../support/databases.js'

describe('bulk-dump lines rendered by PostgreSQL', () => {
  let db: TestDatabase
  let prisma: any
  beforeAll(async () => {
    db = await createTestDatabase('postgresql', 'render')
    prisma = await db.client()
    const big = 2n ** 62n + 3n
    await prisma.author.createMany({
      data: [
        { name: 'Ann "quoted" \\ back/slash é ✓', externalId: 'e1', balance: '12.50', birthDate: new Date('1951-02-02'), lastSeen: new Date('2026-11-23T03:36:52.912Z'), profile: { tags: ['a', 'b'], n: { k: 1.5 } }, nickname: null },
        { name: 'Bob', externalId: 'e2', balance: '0', lastSeen: new Date('2026-11-23T03:36:52Z'), isActive: false },
        { name: 'Cy\nnew line', externalId: 'e3', balance: '-7.25', rating: -3 },
      ],
    })
    await prisma.ledger.create({ data: { id: big, amount: -big, note: 'big' } })
    await prisma.tag.create({ data: { name: 'tag' } })
    await prisma.setting.create({ data: { key: "k'1", value: 'v' } })
  })
  afterAll(async () => db?.drop())

  it.each([
    ['author', 'Author', { keys: 'column' as const }],
    ['ledger', 'Ledger', {}],
    ['tag', 'Tag', {}],
    ['setting', 'Setting', {}],
  ])('%s: same values as the JS path', async (cqrsId, model, extra) => {
    const options = resolveMasterOptions({ transport: { publish: async () => {} }, models: { [model]: { cqrsId, ...extra } } })
    const metas = modelsOf(prisma)
    const plan = [...buildPlans(metas, options).values()][0]
    const scanner = new RowScanner(prisma, findModel(metas, model)!, { pkField: plan.pkField, revisionField: plan.revisionField })
    try {
      const slow: string[] = []
      for await (const page of dumpRows({ source: scanner, plan, ctx: { tx: prisma, model, operation: 'test' }, batchSize: 2 })) for (const r of page.rows) slow.push(formatDumpLine(r))
      // Both database paths: one COPY TO STDOUT, and keyset pages (where COPY cannot be had).
      let copied = ''
      let counted = 0
      for await (const chunk of scanner.dumpLineChunks(plan, 2)!) {
        copied += chunk.text.toString()
        counted += chunk.rows
      }
      const fast = copied.split('\n').slice(0, -1)
      expect(counted).toBe(fast.length)
      const paged: string[] = []
      for await (const lines of scanner.dumpLinePages(pgDumpLineSql(findModel(metas, model)!, plan)!, 2)) paged.push(...lines)
      expect(paged).toEqual(fast)
      expect(fast.length).toBe(slow.length)
      expect(fast.length).toBeGreaterThan(0)
      // Same keys in the same order, and the same values (big numbers compared as text).
      const parse = (l: string) => JSON.parse(l.replace(/:(-?\d{16,})/g, ':"$1"'))
      fast.forEach((line, i) => {
        expect(Object.keys(parse(line))).toEqual(Object.keys(parse(slow[i])))
        expect(parse(line)).toEqual(parse(slow[i]))
      })
    } finally {
      await scanner.close()
    }
  })
})
