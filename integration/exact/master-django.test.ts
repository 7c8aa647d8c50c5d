/**
 * Issue 9, the Django mode (`keys: 'django'`): every event reads as a django-cqrs master's for the same
 * model. Compared with the captures: the same keys in the same order, a foreign key under its
 * relation's name (`author`), `previous_data` by attribute name (`author_id`), every tracked field null
 * on create and only the changed ones on update, null when nothing is tracked. Both capture modes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseJson, RawJson } from '../../src/core/json.js'
import { silentLogger } from '../../src/core/logger.js'
import { cqrsMaster, installCaptureTriggers } from '../../src/prisma/cqrs-master.js'
import { CollectorTransport } from '../support/collector.js'
import { createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases.js'
import { fixture } from '../support/fixtures.js'

const captured = (name: string) => parseJson(fixture(name).body) as any
const text = (v: unknown) => (v instanceof RawJson ? v.text : v === null ? null : String(v))

const models = {
  author: { cqrsId: 'author', keys: 'django' as const },
  // The captured Django Book has these fields (ours also has is_public).
  book: { cqrsId: 'book', keys: 'django' as const, fields: ['id', 'title', 'authorId', 'price', 'publishedAt'], trackedFields: ['title', 'authorId', 'price'] },
}

for (const capture of ['extension', 'trigger'] as const) {
  describe.runIf(DIALECTS.includes('postgresql'))(`the Django mode, ${capture} capture`, () => {
    let db: TestDatabase
    let prisma: any
    const transport = new CollectorTransport()
    beforeAll(async () => {
      db = await createTestDatabase('postgresql', 'django')
      const base = await db.client()
      if (capture === 'trigger') await installCaptureTriggers(base, { models })
      prisma = base.$extends(cqrsMaster({ transport, logger: silentLogger, capture, relay: { enabled: false }, models }))
    })
    afterAll(async () => {
      await prisma?.$cqrs.close()
      await db?.drop()
    })
    const published = async () => {
      await prisma.$cqrs.flush()
      const out = transport.published.map((m) => parseJson(m.body) as any)
      transport.clear()
      return out
    }

    it('a create with a foreign key and tracked fields reads as save-create-tracked-fk.json', async () => {
      const a = await prisma.author.create({ data: { name: 'Author 0', externalId: 'x' } })
      await published()
      await prisma.book.create({ data: { title: 'Book 1-0', authorId: a.id, price: '9.99', publishedAt: new Date() } })
      const [ours] = await published()
      const theirs = captured('save-create-tracked-fk.json')
      expect(Object.keys(ours)).toEqual(Object.keys(theirs))
      expect(Object.keys(ours.instance_data)).toEqual(Object.keys(theirs.instance_data))
      expect(ours.instance_data.author).toBe(a.id)
      expect(ours.previous_data).toEqual(theirs.previous_data)
      expect(Object.keys(ours.previous_data)).toEqual(['title', 'author_id', 'price'])
    })

    it('an update sends only the changed tracked fields, as save-update-previous-data.json', async () => {
      const a = await prisma.author.create({ data: { name: 'A', externalId: 'y' } })
      const b = await prisma.book.create({ data: { title: 'Book 1-0', authorId: a.id, price: '9.99', publishedAt: new Date() } })
      await published()
      await prisma.book.update({ where: { id: b.id }, data: { title: 'Book 1-0 (2nd ed.)', price: '11.49' } })
      const [ours] = await published()
      const theirs = captured('save-update-previous-data.json')
      expect(Object.keys(ours.instance_data)).toEqual(Object.keys(theirs.instance_data))
      expect(Object.keys(ours.previous_data)).toEqual(Object.keys(theirs.previous_data))
      expect({ title: ours.previous_data.title, price: text(ours.previous_data.price) }).toEqual({ title: 'Book 1-0', price: '9.99' })
      expect(text(ours.instance_data.price)).toBe('11.49')
      // Nothing tracked changed: an empty previous_data, as django-cqrs's tracker gives.
      await prisma.book.update({ where: { id: b.id }, data: { publishedAt: new Date() } })
      const [quiet] = await published()
      expect(quiet.previous_data).toEqual({})
    })

    it('a model without tracked fields reads as save-update-json-microseconds.json', async () => {
      const a = await prisma.author.create({ data: { name: 'Author 0', externalId: '593e94de-aae7-4eed-8e91-a9a32f1abd3b', balance: '0.01', lastSeen: new Date(), profile: { updated: true, rating: 1 } } })
      await published()
      await prisma.author.update({ where: { id: a.id }, data: { nickname: 'updated' } })
      const [ours] = await published()
      const theirs = captured('save-update-json-microseconds.json')
      expect(Object.keys(ours)).toEqual(Object.keys(theirs))
      expect(Object.keys(ours.instance_data)).toEqual(Object.keys(theirs.instance_data))
      expect(ours.previous_data).toBeNull()
      expect(text(ours.instance_data.balance)).toBe('0.01')
      expect(ours.instance_data.profile).toEqual({ updated: true, rating: 1 })
    })
  })
}
