/**
 * G6, master side: what cqrs-sync publishes has the shape of what django-cqrs publishes, so a Django
 * replica reads it: same keys, same value types, same routing. Compared with the captures in
 * test/fixtures/django-cqrs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { CollectorTransport } from '../support/collector.js'
import { createTestDatabase, type TestDatabase } from '../support/databases.js'
import { fixture } from '../support/fixtures.js'
import { masterClient } from '../support/master.js'

const typeOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v)
const shape = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeOf(v)]))

describe('wire compatibility with django-cqrs (PostgreSQL master)', () => {
  let db: TestDatabase
  let prisma: any
  const transport = new CollectorTransport()

  beforeAll(async () => {
    db = await createTestDatabase('postgresql', 'wire')
    prisma = await masterClient(await db.client(), {
      transport,
      logger: silentLogger,
      relay: { enabled: false },
      models: {
        // Django replicas name keys after model fields: columns here, and the FK under the relation's name.
        author: { cqrsId: 'author', keys: 'column' },
        book: { cqrsId: 'book', fields: { id: 'id', title: 'title', authorId: 'author', price: 'price', publishedAt: 'published_at' }, trackedFields: ['title', 'price'] },
      },
    })
  })
  afterAll(async () => {
    await prisma?.$cqrs.close()
    await db?.drop()
  })

  const published = async () => {
    await prisma.$cqrs.flush()
    const out = transport.published.map((m) => ({ routingKey: m.routingKey, body: JSON.parse(m.body) }))
    transport.clear()
    return out
  }

  it('a SAVE of a new author has the keys and value types of save-create.json', async () => {
    await prisma.author.create({ data: { name: 'Author 0', externalId: '593e94de-aae7-4eed-8e91-a9a32f1abd3b', nickname: 'nick-0', balance: '0.10', lastSeen: new Date(), birthDate: new Date('1951-02-02'), profile: { a: 1 } } })
    const [ours] = await published()
    const theirs = fixture('save-create.json')
    const body = JSON.parse(theirs.body)
    expect(ours.routingKey).toBe(theirs.routing_key)
    expect(Object.keys(ours.body)).toEqual(Object.keys(body))
    expect(Object.keys(ours.body.instance_data).sort()).toEqual(Object.keys(body.instance_data).sort())
    // Where the fixture has a value (not null), ours has the same JSON type.
    const theirTypes = shape({ ...body.instance_data, birth_date: '1951-02-02', last_seen: body.instance_data.cqrs_updated, profile: {} })
    expect(shape(ours.body.instance_data)).toEqual(theirTypes)
    expect(ours.body.instance_data.cqrs_updated).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?\+00:00$/)
    expect(ours.body.instance_data.birth_date).toBe('1951-02-02')
  })

  it('an update with tracked fields has the shape of save-update-previous-data.json', async () => {
    const a = await prisma.author.create({ data: { name: 'A', externalId: 'x' } })
    const b = await prisma.book.create({ data: { title: 'Book 1-0', authorId: a.id, price: '9.99', publishedAt: new Date() } })
    await published()
    await prisma.book.update({ where: { id: b.id }, data: { title: 'Book 1-0 (2nd ed.)', price: '11.49' } })
    const [ours] = await published()
    const theirs = JSON.parse(fixture('save-update-previous-data.json').body)
    expect(Object.keys(ours.body.instance_data).sort()).toEqual(Object.keys(theirs.instance_data).sort())
    expect(shape(ours.body.instance_data)).toEqual(shape(theirs.instance_data))
    expect(ours.body.previous_data).toEqual({ title: 'Book 1-0', price: 9.99 })
    expect(ours.body.instance_data).toMatchObject({ cqrs_revision: 1, title: 'Book 1-0 (2nd ed.)', author: a.id, price: 11.49 })
  })

  it('a DELETE has the shape of delete.json', async () => {
    const a = await prisma.author.create({ data: { name: 'D', externalId: 'd' } })
    const b = await prisma.book.create({ data: { title: 'gone', authorId: a.id } })
    await published()
    await prisma.book.delete({ where: { id: b.id } })
    const [ours] = await published()
    const theirs = JSON.parse(fixture('delete.json').body)
    expect(Object.keys(ours.body.instance_data).sort()).toEqual(Object.keys(theirs.instance_data).sort())
    expect(shape(ours.body)).toEqual({ ...shape(theirs), expires: 'null' })
  })
})
