import { describe, expect, it } from 'vitest'
import { librarySchema, SCHEMA_PROVIDERS } from '../../src/prisma/library-schema.js'

describe('librarySchema (cqrs schema)', () => {
  it.each(SCHEMA_PROVIDERS)('gives both tables for %s, as Prisma models and as SQL', (provider) => {
    const models = librarySchema(provider, 'prisma')
    expect(models).toMatch(/model CqrsOutbox \{[\s\S]*@@map\("cqrs_outbox"\)/)
    expect(models).toMatch(/model CqrsTombstone \{[\s\S]*@@map\("cqrs_tombstone"\)/)
    const sql = librarySchema(provider, 'sql')
    expect(sql).toMatch(/CREATE TABLE cqrs_outbox/)
    expect(sql).toMatch(/CREATE TABLE cqrs_tombstone/)
  })

  it('names the providers it knows when given another', () => {
    expect(() => librarySchema('oracle', 'sql')).toThrow(/Unknown provider 'oracle': use postgresql, mysql, sqlite/)
  })
})
