import { describe, expect, it } from 'vitest'
import { parseSchemaAttributes } from '../../src/prisma/internals.js'

describe('parseSchemaAttributes: what only the schema text says', () => {
  const schema = `
model Book {
  id          Int       @id @default(autoincrement())
  price       Decimal   @default(0) @db.Decimal(18, 2)
  rate        Decimal   @db.Decimal(38,18)
  plain       Decimal
  seenAt      DateTime? @map("seen_at") @db.Timestamptz(6) // a comment @db.Date
  day         DateTime  @db.Date
  authorId    Int       @map("author_id")
  author      Author    @relation(fields: [authorId], references: [id], onDelete: Cascade)
}`
  const book = parseSchemaAttributes(schema).get('Book')!

  it('reads the native type and a decimal scale (the master sends decimals with it)', () => {
    expect(book.fields.get('price')).toMatchObject({ nativeType: 'Decimal(18, 2)', scale: 2 })
    expect(book.fields.get('rate')).toMatchObject({ nativeType: 'Decimal(38,18)', scale: 18 })
    expect(book.fields.get('plain')?.scale).toBeUndefined()
    expect(book.fields.get('seenAt')).toMatchObject({ nativeType: 'Timestamptz(6)', dateOnly: false })
    expect(book.fields.get('day')).toMatchObject({ nativeType: 'Date', dateOnly: true })
  })

  it("reads a relation's key fields (the Django mode sends a foreign key under the relation's name)", () => {
    expect(book.fields.get('author')?.relationFields).toEqual(['authorId'])
    expect(book.fields.get('authorId')?.relationFields).toBeUndefined()
  })
})
