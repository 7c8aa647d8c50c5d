/**
 * The keyset scanner: pages in pk order for any pk type, a `where` through Prisma, and on PostgreSQL
 * the raw fast path giving exactly the rows (and so the instance_data) findMany gives.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolveMasterOptions } from '../../src/config/master-options.js'
import { formatDumpLine } from '../../src/core/dump-format.js'
import { instanceData } from '../../src/master/event-builder.js'
import { modelsOf } from '../../src/prisma/internals.js'
import { buildPlans } from '../../src/prisma/model-plans.js'
import { RowScanner } from '../../src/prisma/row-scanner.js'
import { createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases.js'

describe.each(DIALECTS)('row scanner on %s', (dialect) => {
  let db: TestDatabase
  let prisma: any
  const scanner = (model: string, pk = 'id') => new RowScanner(prisma, modelsOf(prisma).get(model)!, { pkField: pk, revisionField: 'cqrsRevision' })
  const all = async (s: RowScanner, o: Parameters<RowScanner['pages']>[0]) => {
    const pages: any[][] = []
    for await (const p of s.pages(o)) pages.push(p)
    return pages
  }

  beforeAll(async () => {
    db = await createTestDatabase(dialect, 'scan')
    prisma = await db.client()
    await prisma.author.createMany({
      data: Array.from({ length: 23 }, (_, i) => ({
        id: 100 - i * 3,
        name: `a${i}`,
        birthDate: i % 2 ? new Date(Date.UTC(1951, 1, 2)) : null,
        balance: i % 3 ? '12.50' : '0',
        lastSeen: new Date(Date.UTC(2026, 10, 23, 3, 36, 52, i)),
        ...(i % 4 ? { profile: { big: 1, nested: { list: [1, 'x', null] } } } : {}),
        externalId: `e${i}`,
        cqrsRevision: i,
      })),
    })
    await prisma.ledger.createMany({ data: [{ id: 9007199254740993n, amount: 2n ** 62n }, { id: 5n, amount: -1n, note: 'n' }] })
    await prisma.setting.createMany({ data: ['b', 'a,b', 'é', 'A', '"q"'].map((key, i) => ({ key, value: `v${i}` })) })
    if (dialect === 'postgresql') await db.exec(`UPDATE author SET last_seen = '2026-11-23 03:36:52.934567+00', cqrs_updated = '2026-11-23 03:36:52.000999+00' WHERE id = 100`)
  })
  afterAll(async () => db?.drop())

  it('pages in pk order without gaps or repeats, any page size', async () => {
    for (const batchSize of [1, 4, 23, 100]) {
      const pages = await all(scanner('Author'), { batchSize })
      const ids = pages.flat().map((r) => r.id)
      expect(ids).toEqual([...ids].sort((a, b) => a - b))
      expect(new Set(ids).size).toBe(23)
      expect(pages.every((p) => p.length <= batchSize)).toBe(true)
    }
    const settings = (await all(scanner('Setting', 'key'), { batchSize: 2 })).flat().map((r) => r.key)
    expect(new Set(settings).size).toBe(5)
    const ledger = (await all(scanner('Ledger'), { batchSize: 1 })).flat()
    expect(ledger.map((r) => r.id)).toEqual([5n, 9007199254740993n])
  })

  it('a where narrows the pages; keysOnly reads pk and revision', async () => {
    const rows = (await all(scanner('Author'), { batchSize: 2, where: { cqrsRevision: { gte: 20 } } })).flat()
    expect(rows.map((r) => r.cqrsRevision).sort()).toEqual([20, 21, 22])
    const keys = (await all(scanner('Author'), { batchSize: 5, keysOnly: true })).flat()
    expect(Object.keys(keys[0]).sort()).toEqual(['cqrsRevision', 'id'])
  })

  it('the raw fast path gives the rows findMany gives, to the byte on the wire', async () => {
    const metas = modelsOf(prisma)
    const plans = buildPlans(metas, resolveMasterOptions({ transport: { publish: async () => {} } as any, models: { author: { cqrsId: 'author' }, ledger: { cqrsId: 'ledger' }, setting: { cqrsId: 'setting' } } }))
    const ctx = { tx: prisma, model: '', operation: 'test' }
    for (const [model, pk, every] of [['Author', 'id', { id: { gt: -1 } }], ['Ledger', 'id', { id: { gt: 0 } }], ['Setting', 'key', { key: { not: '' } }]] as const) {
      const s = scanner(model, pk)
      const plan = plans.get(model)!
      // `where: {}` is every row: the fast path on PostgreSQL; a where that selects all goes through findMany.
      const fast = (await all(s, { batchSize: 7 })).flat()
      const slow = (await all(s, { batchSize: 7, where: every })).flat()
      const wire = async (rows: any[]) => Promise.all(rows.map(async (r) => formatDumpLine(await instanceData(plan, r, ctx))))
      expect(await wire(fast)).toEqual(await wire(slow))
    }
  })
})
