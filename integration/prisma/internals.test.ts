/**
 * Pins every Prisma internal that src/prisma/internals.ts relies on (DESIGN.md, Master: "isolate every
 * use of Prisma internals in one file, with tests that pin the behaviour"). Each assertion names the
 * internal it pins, so a Prisma upgrade that breaks one fails here with that name, before the
 * capture tests fail in stranger ways.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  clientInTransaction,
  currentTransaction,
  modelsOf,
  openAdapter,
  providerOf,
  queryInTransaction,
  runPromiseInTransaction,
  transactionOf,
  type ModelMeta,
  type TransactionDescriptor,
} from '../../src/prisma/internals.js'
import { createTestDatabase, DIALECTS, type TestDatabase } from '../support/databases.js'

const ROLLBACK = new Error('roll back on purpose')

describe.each(DIALECTS)('Prisma internals on %s', (dialect) => {
  let db: TestDatabase
  let base: any
  /** `base` extended with a hook that records the transaction each query of `plain` runs in. */
  let recorded: any
  const seen: Array<{ operation: string; name?: string; transaction: TransactionDescriptor | undefined }> = []
  const seenFor = (name: string) => seen.filter((s) => s.name === name)

  beforeAll(async () => {
    db = await createTestDatabase(dialect, 'itl')
    base = await db.client()
    recorded = base.$extends({
      query: {
        plain: {
          async $allOperations(a: any) {
            seen.push({ operation: a.operation, name: a.args?.data?.name ?? a.args?.where?.name, transaction: currentTransaction(a) })
            return a.query(a.args)
          },
        },
      },
    })
  })
  afterAll(async () => {
    await base?.$disconnect()
    await db?.drop()
  })

  const count = (name: string) => base.plain.count({ where: { name } })

  it('hook argument: __internalParams.transaction is absent outside, {kind:"itx"} in $transaction(fn), {kind:"batch"} in $transaction([...])', async () => {
    await recorded.plain.create({ data: { name: 'outside' } })
    expect(seenFor('outside')[0]?.transaction, 'Prisma internal: a $allOperations hook argument outside a transaction carries no __internalParams.transaction').toBeUndefined()

    let txDescriptor: TransactionDescriptor | undefined
    await recorded.$transaction(async (tx: any) => {
      await tx.plain.create({ data: { name: 'in-itx' } })
      txDescriptor = await transactionOf(tx)
    })
    const inItx = seenFor('in-itx')[0]?.transaction
    expect(inItx, 'Prisma internal: a $allOperations hook argument inside $transaction(fn) carries __internalParams.transaction = { kind: "itx", id }').toMatchObject({
      kind: 'itx',
      id: expect.anything(),
    })
    expect(inItx?.id, 'Prisma internal: the hook sees the same itx id as the transaction client').toEqual(txDescriptor?.id)

    await recorded.$transaction([recorded.plain.create({ data: { name: 'in-batch' } }), recorded.plain.count({ where: { name: 'in-batch' } })])
    expect(seenFor('in-batch').map((s) => s.transaction?.kind), 'Prisma internal: inside $transaction([...]) the hook sees __internalParams.transaction.kind = "batch"').toEqual(['batch', 'batch'])
  })

  it('transactionOf(txClient): _createPrismaPromise(cb) calls cb with the itx descriptor, once per transaction', async () => {
    const ids: unknown[] = []
    await base.$transaction(async (tx: any) => {
      expect(typeof tx._createPrismaPromise, 'Prisma internal: interactive-transaction clients have _createPrismaPromise').toBe('function')
      const t = await transactionOf(tx)
      expect(t, 'Prisma internal: _createPrismaPromise(cb) on a transaction client calls cb({ kind: "itx", id })').toMatchObject({ kind: 'itx', id: expect.anything() })
      expect(await transactionOf(tx), 'the descriptor is stable within one transaction').toEqual(t)
      ids.push(t.id)
    })
    await base.$transaction(async (tx: any) => ids.push((await transactionOf(tx)).id))
    expect(ids[0], 'two transactions have different ids').not.toEqual(ids[1])
  })

  it("query(args, { transaction }): a hook runs the user's query inside a transaction it started (rolls back with it)", async () => {
    // The hook starts a transaction on the base client and runs the query there (what Capture does).
    const viaHook = base.$extends({
      query: {
        plain: {
          async create(a: any) {
            return base.$transaction(async (tx0: any) => {
              const t = await transactionOf(tx0)
              const row = await queryInTransaction(a, a.args, t)
              // The row is visible through the transaction client: it is in the same transaction.
              expect(await tx0.plain.count({ where: { name: a.args.data.name } }), 'Prisma internal: query(args, { transaction }) writes inside that transaction').toBe(1)
              if (a.args.data.name.endsWith('rollback')) throw ROLLBACK
              return row
            })
          },
        },
      },
    })
    // The first extension's hook runs first; a recorder added after the hook runs next and shows the
    // transaction it received from query(args, params).
    const layered = base
      .$extends({
        query: {
          plain: {
            async create(a: any) {
              return base.$transaction(async (tx0: any) => {
                const t = await transactionOf(tx0)
                return { row: await queryInTransaction(a, a.args, t), t }
              })
            },
          },
        },
      })
      .$extends({
        query: {
          plain: {
            async $allOperations(a: any) {
              seen.push({ operation: a.operation, name: a.args?.data?.name, transaction: currentTransaction(a) })
              return a.query(a.args)
            },
          },
        },
      })

    const kept = await viaHook.plain.create({ data: { name: 'q-commit' } })
    expect(kept.name).toBe('q-commit')
    expect(await count('q-commit')).toBe(1)
    await expect(viaHook.plain.create({ data: { name: 'q-rollback' } })).rejects.toBe(ROLLBACK)
    expect(await count('q-rollback'), 'Prisma internal: a query run with query(args, { transaction }) rolls back with that transaction').toBe(0)

    const { t } = await layered.plain.create({ data: { name: 'q-layered' } })
    const inner = seenFor('q-layered')
    expect(inner.map((s) => s.transaction), 'Prisma internal: the next hook receives the transaction passed to query(args, params)').toEqual([expect.objectContaining({ kind: 'itx', id: t.id })])
  })

  it('clientInTransaction(client, t): _createItxClient(t) gives a client whose queries run in t, on the base and on an extended client', async () => {
    for (const [label, client] of [
      ['base', () => base],
      ['extended', () => recorded],
    ] as const) {
      expect(typeof client()._createItxClient, `Prisma internal: ${label} clients have _createItxClient`).toBe('function')
      const name = `itx-${label}`
      let tid: unknown
      await expect(
        base.$transaction(async (tx0: any) => {
          const t = await transactionOf(tx0)
          tid = t.id
          const c = clientInTransaction(client(), t)
          await c.plain.create({ data: { name } })
          expect(await tx0.plain.count({ where: { name } }), `Prisma internal: a write through _createItxClient(t) of the ${label} client is visible inside t`).toBe(1)
          throw ROLLBACK
        }),
      ).rejects.toBe(ROLLBACK)
      expect(await count(name), `Prisma internal: a write through _createItxClient(t) of the ${label} client rolls back with t`).toBe(0)
      if (label === 'extended') {
        expect(seenFor(name)[0]?.transaction, 'Prisma internal: the extension hooks of an _createItxClient(t) client see t').toMatchObject({ kind: 'itx', id: tid })
      }

      await base.$transaction(async (tx0: any) => {
        await clientInTransaction(client(), await transactionOf(tx0)).plain.create({ data: { name: `${name}-commit` } })
      })
      expect(await count(`${name}-commit`), `a write through _createItxClient(t) of the ${label} client commits with t`).toBe(1)
    }
  })

  it('runPromiseInTransaction(p, t): a PrismaPromise runs once, inside t, through requestTransaction', async () => {
    expect(typeof recorded.plain.count().requestTransaction, 'Prisma internal: a PrismaPromise has requestTransaction').toBe('function')
    let tid: unknown
    await expect(
      base.$transaction(async (tx0: any) => {
        const t = await transactionOf(tx0)
        tid = t.id
        const row: any = await runPromiseInTransaction(recorded.plain.create({ data: { name: 'rp-rollback' } }), t)
        expect(row.name).toBe('rp-rollback')
        throw ROLLBACK
      }),
    ).rejects.toBe(ROLLBACK)
    expect(await count('rp-rollback'), 'Prisma internal: PrismaPromise.requestTransaction(t) runs the query inside t (rolled back)').toBe(0)
    expect(seenFor('rp-rollback').map((s) => s.transaction), 'Prisma internal: the hook of a PrismaPromise run with requestTransaction({ kind: "itx" }) sees that itx').toEqual([
      expect.objectContaining({ kind: 'itx', id: tid }),
    ])

    const pending = recorded.plain.create({ data: { name: 'rp-commit' } })
    await base.$transaction(async (tx0: any) => {
      await runPromiseInTransaction(pending, await transactionOf(tx0))
    })
    expect(await count('rp-commit'), 'a PrismaPromise runs once: lazily, only when requested').toBe(1)
    await expect(base.$transaction(async (tx0: any) => runPromiseInTransaction(Promise.resolve(1), await transactionOf(tx0)))).rejects.toThrow(/takes only Prisma Client promises/)
  })

  // src/prisma/sql-runner.ts runs outbox claims and replica batches on an adapter of its own (PostgreSQL, MySQL).
  it.skipIf(dialect === 'sqlite')('openAdapter(client): _engineConfig.adapter.connect() opens a driver adapter of our own, with transactions the caller ends', async () => {
    expect(typeof base._engineConfig?.adapter?.connect, 'Prisma internal: client._engineConfig.adapter is the driver adapter factory, with connect()').toBe('function')
    expect(typeof recorded._engineConfig?.adapter?.connect, 'Prisma internal: _engineConfig.adapter through $extends').toBe('function')
    const adapter: any = await openAdapter(base)
    expect(adapter, 'openAdapter returns an adapter').not.toBeNull()
    try {
      for (const m of ['queryRaw', 'executeRaw', 'startTransaction', 'dispose']) expect(typeof adapter[m], `driver adapter contract: ${m}()`).toBe('function')
      const one = await adapter.queryRaw({ sql: 'SELECT 1 AS one', args: [], argTypes: [] })
      expect(one.columnNames, 'driver adapter contract: queryRaw gives columnNames').toEqual(['one'])
      expect(Number(one.rows[0][0]), 'driver adapter contract: queryRaw gives rows as arrays').toBe(1)

      const ph = dialect === 'postgresql' ? '$1' : '?'
      const insert = (tx: any, name: string) => tx.executeRaw({ sql: `INSERT INTO plain (name) VALUES (${ph})`, args: [name], argTypes: [{ scalarType: 'unknown', arity: 'scalar' }] })
      // What AdapterRunner.transaction does: without a phantom query the caller sends COMMIT/ROLLBACK itself.
      const finish = async (tx: any, sql: 'COMMIT' | 'ROLLBACK') => {
        if (!tx.options.usePhantomQuery) await tx.executeRaw({ sql, args: [], argTypes: [] })
        await (sql === 'COMMIT' ? tx.commit() : tx.rollback())
      }
      for (const end of ['ROLLBACK', 'COMMIT'] as const) {
        const name = `adapter-${end}`
        const tx = await adapter.startTransaction(dialect === 'mysql' ? 'READ COMMITTED' : undefined)
        expect(typeof tx.options?.usePhantomQuery, 'driver adapter contract: transaction.options.usePhantomQuery').toBe('boolean')
        expect(await insert(tx, name)).toBe(1)
        expect(await count(name), 'a write in an adapter transaction is not visible before it ends').toBe(0)
        await finish(tx, end)
        expect(await count(name), `an adapter transaction ended with ${end}`).toBe(end === 'COMMIT' ? 1 : 0)
      }
    } finally {
      await adapter.dispose()
    }
  })

  it('providerOf: _activeProvider names the database, on base and extended clients', () => {
    expect(base._activeProvider, 'Prisma internal: client._activeProvider').toBe(dialect)
    expect(providerOf(base)).toBe(dialect)
    expect(providerOf(recorded), 'Prisma internal: _activeProvider through $extends').toBe(dialect)
  })

  it('modelsOf: _runtimeDataModel and _engineConfig.inlineSchema give tables, columns, ids, kinds, @updatedAt, required flags and relations', () => {
    expect(base._runtimeDataModel?.models?.Author, 'Prisma internal: client._runtimeDataModel.models').toBeDefined()
    const schema = String(base._engineConfig?.inlineSchema ?? '')
    expect(schema, 'Prisma internal: client._engineConfig.inlineSchema is the schema text').toMatch(/model Author \{/)
    expect(schema).toContain('@updatedAt')
    if (dialect !== 'sqlite') expect(schema, 'Prisma internal: inlineSchema keeps native types (@db.Date)').toContain('@db.Date')

    const metas = modelsOf(base)
    expect(modelsOf(recorded).get('Author'), 'modelsOf works on an extended client').toEqual(metas.get('Author'))
    const model = (name: string): ModelMeta => {
      const m = metas.get(name)
      expect(m, `model ${name}`).toBeDefined()
      return m!
    }
    const field = (m: ModelMeta, name: string) => {
      const f = m.fields.find((x) => x.name === name)
      expect(f, `field ${m.name}.${name}`).toBeDefined()
      return f!
    }

    const author = model('Author')
    expect(author).toMatchObject({ prop: 'author', table: 'author', idFields: ['id'] })
    expect(author.fields.map((f) => f.name), 'scalar fields in schema order, relations left out').toEqual([
      'id',
      'name',
      'birthDate',
      'rating',
      'balance',
      'lastSeen',
      'isActive',
      'profile',
      'nickname',
      'externalId',
      'cqrsRevision',
      'cqrsUpdated',
    ])
    expect(field(author, 'id')).toMatchObject({ isId: true, kind: 'Int', isRequired: false })
    expect(field(author, 'birthDate'), '@map column, and @db.Date read from the schema text').toMatchObject({ column: 'birth_date', kind: dialect === 'sqlite' ? 'DateTime' : 'Date', isRequired: false })
    expect(field(author, 'lastSeen')).toMatchObject({ column: 'last_seen', kind: 'DateTime' })
    expect(field(author, 'cqrsUpdated'), '@updatedAt read from the schema text').toMatchObject({ column: 'cqrs_updated', kind: 'DateTime', isUpdatedAt: true, isRequired: false })
    expect(field(author, 'cqrsRevision')).toMatchObject({ column: 'cqrs_revision', kind: 'Int', isUpdatedAt: false, isRequired: false })
    expect(field(author, 'name'), 'required: not optional, no default').toMatchObject({ kind: 'String', isRequired: true })
    expect(field(author, 'externalId')).toMatchObject({ column: 'external_id', isRequired: true })
    expect(field(author, 'nickname'), 'optional').toMatchObject({ isRequired: false })
    expect(field(author, 'rating'), 'has a default').toMatchObject({ isRequired: false })
    expect(field(author, 'balance').kind).toBe('Decimal')
    expect(field(author, 'profile').kind).toBe('Json')
    expect(field(author, 'isActive')).toMatchObject({ kind: 'Boolean', column: 'is_active' })
    expect(author.relations, 'a list relation (the key is on the other side)').toEqual([{ name: 'books', type: 'Book', isList: true }])

    const book = model('Book')
    // The relation's key fields: the Django mode sends a foreign key under the relation's name.
    expect(book.relations, 'a to-one relation').toEqual([{ name: 'author', type: 'Author', isList: false, fields: ['authorId'] }])
    expect(field(book, 'authorId')).toMatchObject({ column: 'author_id', kind: 'Int', isRequired: true })

    expect(model('Tag')).toMatchObject({ idFields: ['id'] })
    expect(field(model('Tag'), 'id')).toMatchObject({ kind: 'String', isId: true })
    expect(model('Setting').idFields, 'a String @id').toEqual(['key'])
    expect(field(model('Ledger'), 'id')).toMatchObject({ kind: 'BigInt', isId: true })
    expect(field(model('Ledger'), 'amount')).toMatchObject({ kind: 'BigInt', isRequired: true })
    expect(model('CqrsOutbox')).toMatchObject({ prop: 'cqrsOutbox', table: 'cqrs_outbox', idFields: ['id'] })
    expect(field(model('CqrsOutbox'), 'routingKey').column).toBe('routing_key')
    expect(model('CqrsTombstone').idFields, 'a compound @@id').toEqual(['cqrsId', 'pk'])
  })
})
