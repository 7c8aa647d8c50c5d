/**
 * Every use of Prisma's undocumented internals, in one place. Pinned by
 * integration/prisma/internals.test.ts: a Prisma upgrade that changes any of these fails there first.
 *
 * Seen with Prisma 7.10 and the pg, mariadb and better-sqlite3 adapters:
 * - a `$allOperations` hook's argument carries `__internalParams.transaction`:
 *   `{ kind: 'itx', id }` inside an interactive transaction, `{ kind: 'batch', ... }` inside
 *   `$transaction([...])`, absent outside;
 * - `query(args, internalParams)` accepts the internal params as a second argument, so a hook can run
 *   the user's query inside a transaction it started;
 * - an interactive-transaction client's `_createPrismaPromise(cb)` calls `cb(transaction)`, which is how
 *   we learn the descriptor of a transaction we started;
 * - `client._createItxClient(transaction)` returns a client bound to that transaction;
 * - a PrismaPromise's `requestTransaction(transaction)` runs it inside the given transaction;
 * - `_engineConfig.adapter` is the driver adapter factory the client was made with; its `connect()`
 *   opens an adapter of our own (the adapter interface itself is Prisma's public contract for adapter
 *   authors, @prisma/driver-adapter-utils);
 * - a transaction of @prisma/adapter-pg (`PgTransaction`) keeps its pg `PoolClient` as `client`: the
 *   bulk-load runs `COPY ... FROM STDIN` on it (see {@link pgClientOf}); the adapter's
 *   `underlyingDriver()` is its pg `Pool`, on which bulk-dump runs `COPY ... TO STDOUT` ({@link pgPoolOf});
 * - `_runtimeDataModel` lists models and fields; `_engineConfig.inlineSchema` is the schema text
 *   (ids, `@db.Date` and `@updatedAt` are only there); `_activeProvider` names the database.
 */
import type { ScalarKind } from '../core/codec.js'

/** What the hook argument tells about the transaction a query runs in. */
export interface TransactionDescriptor {
  kind: 'itx' | 'batch' | string
  id: string | number
  [k: string]: unknown
}

type AnyClient = Record<string, any>

export function currentTransaction(hookArg: { __internalParams?: { transaction?: TransactionDescriptor } }): TransactionDescriptor | undefined {
  return hookArg.__internalParams?.transaction
}

/** Run a hook's `query` inside `tx` (a transaction the hook started). */
export function queryInTransaction<T>(hookArg: { query: (...a: any[]) => Promise<T>; __internalParams?: object }, args: unknown, tx: TransactionDescriptor): Promise<T> {
  return hookArg.query(args, { ...hookArg.__internalParams, transaction: tx })
}

/** The descriptor of the interactive transaction a `$transaction(async (tx) => ...)` client is bound to. */
export function transactionOf(txClient: AnyClient): Promise<TransactionDescriptor> {
  return new Promise((resolve, reject) => {
    if (typeof txClient._createPrismaPromise !== 'function') {
      reject(new Error('cqrs-sync: this Prisma version has no _createPrismaPromise on transaction clients; see src/prisma/internals.ts'))
      return
    }
    txClient
      ._createPrismaPromise((t: TransactionDescriptor) => {
        resolve(t)
        return Promise.resolve(null)
      })
      .then(undefined, reject)
  })
}

/** A client whose queries run inside `tx`. */
export function clientInTransaction<C extends AnyClient>(client: C, tx: TransactionDescriptor): C {
  if (typeof client._createItxClient !== 'function') throw new Error('cqrs-sync: this Prisma version has no _createItxClient; see src/prisma/internals.ts')
  return client._createItxClient(tx)
}

/** Run a PrismaPromise (from a `$transaction([...])` array) inside `tx`. */
export function runPromiseInTransaction<T>(p: PromiseLike<T>, tx: TransactionDescriptor): Promise<T> {
  const req = (p as { requestTransaction?: (t: TransactionDescriptor) => PromiseLike<T> }).requestTransaction
  if (typeof req !== 'function') throw new Error('cqrs-sync: $transaction([...]) takes only Prisma Client promises')
  return Promise.resolve(req.call(p, tx))
}

export type Provider = 'postgresql' | 'mysql' | 'sqlite'

export function providerOf(client: AnyClient): Provider {
  const p = client._activeProvider ?? client._engineConfig?.activeProvider
  if (p === 'postgresql' || p === 'cockroachdb') return 'postgresql'
  if (p === 'mysql') return 'mysql'
  if (p === 'sqlite') return 'sqlite'
  throw new Error(`cqrs-sync supports PostgreSQL, MySQL/MariaDB and SQLite; this client's provider is '${p}'`)
}

export interface FieldMeta {
  /** Prisma field name (`birthDate`). */
  name: string
  /** Column name (`birth_date`). */
  column: string
  kind: ScalarKind
  isId: boolean
  isUpdatedAt: boolean
  isList: boolean
  /** Not optional and without a default: an insert must give it. */
  isRequired: boolean
  /** The `@db.` native type as written in the schema (`Decimal(18, 2)`, `Timestamptz(6)`), if any. */
  nativeType?: string
  /** Digits after the point of a decimal column, `@db.Decimal(p, s)` or Prisma's default (30); its value is sent with exactly these. */
  scale?: number
}

export interface ModelMeta {
  /** Prisma model name (`Author`). */
  name: string
  /** Client property (`author`). */
  prop: string
  table: string
  /** Scalar fields only; relations are left out. */
  fields: FieldMeta[]
  idFields: string[]
  /**
   * Relation fields: the related model, whether it is a list (the foreign key is on the other side),
   * and on the owning side the scalar fields holding the key (`@relation(fields: [authorId])`).
   */
  relations: Array<{ name: string; type: string; isList: boolean; fields?: string[] }>
}

const SCALARS = new Set(['String', 'Int', 'BigInt', 'Float', 'Decimal', 'Boolean', 'DateTime', 'Json', 'Bytes'])

/** Model metadata from the runtime data model, completed with what only the schema text has. */
export function modelsOf(client: AnyClient): Map<string, ModelMeta> {
  const rdm = client._runtimeDataModel
  if (!rdm?.models) throw new Error('cqrs-sync: cannot read the Prisma data model (client._runtimeDataModel); see src/prisma/internals.ts')
  const attrs = parseSchemaAttributes(String(client._engineConfig?.inlineSchema ?? ''))
  const provider = client._activeProvider ?? client._engineConfig?.activeProvider
  const out = new Map<string, ModelMeta>()
  for (const [name, m] of Object.entries<any>(rdm.models)) {
    const a = attrs.get(name)
    const fields: FieldMeta[] = []
    const relations: ModelMeta['relations'] = []
    for (const f of m.fields) {
      if (f.kind === 'object') {
        const ra = a?.fields.get(f.name)
        relations.push({ name: f.name, type: f.type, isList: !!ra?.isList, ...(ra?.relationFields ? { fields: ra.relationFields } : {}) })
        continue
      }
      const fa = a?.fields.get(f.name)
      const kind: ScalarKind = f.kind === 'enum' ? 'Enum' : fa?.dateOnly ? 'Date' : SCALARS.has(f.type) ? f.type : 'String'
      // Prisma's Decimal without @db.Decimal is decimal(65,30) on PostgreSQL and MySQL.
      const scale = fa?.scale ?? (kind === 'Decimal' && !fa?.nativeType && provider !== 'sqlite' ? 30 : undefined)
      const native = { ...(fa?.nativeType ? { nativeType: fa.nativeType } : {}), ...(scale !== undefined ? { scale } : {}) }
      fields.push({ name: f.name, column: f.dbName ?? f.name, kind, isId: !!fa?.isId, isUpdatedAt: !!fa?.isUpdatedAt, isList: !!fa?.isList, isRequired: !!fa?.isRequired, ...native })
    }
    const idFields = a?.compoundId ?? fields.filter((f) => f.isId).map((f) => f.name)
    out.set(name, { name, prop: name[0].toLowerCase() + name.slice(1), table: m.dbName ?? name, fields, idFields, relations })
  }
  return out
}

interface SchemaModelAttrs {
  fields: Map<string, { isId: boolean; dateOnly: boolean; isUpdatedAt: boolean; isList: boolean; isRequired: boolean; nativeType?: string; scale?: number; relationFields?: string[] }>
  compoundId?: string[]
}

/** A line-based reader of `model X { ... }` blocks: enough for @id, @@id, @db.* native types, @updatedAt, @relation(fields). */
export function parseSchemaAttributes(schema: string): Map<string, SchemaModelAttrs> {
  const out = new Map<string, SchemaModelAttrs>()
  let current: SchemaModelAttrs | undefined
  for (const raw of schema.split('\n')) {
    const line = raw.replace(/\/\/.*$/, '').trim()
    const start = /^model\s+(\w+)\s*\{/.exec(line)
    if (start) {
      current = { fields: new Map() }
      out.set(start[1], current)
      continue
    }
    if (!current) continue
    if (line.startsWith('}')) {
      current = undefined
      continue
    }
    const cid = /^@@id\(\s*(?:fields:\s*)?\[([^\]]*)\]/.exec(line)
    if (cid) {
      current.compoundId = cid[1].split(',').map((s) => s.trim()).filter(Boolean)
      continue
    }
    const f = /^(\w+)\s+(\w+)(\[\])?(\?)?\s*(.*)$/.exec(line)
    if (!f) continue
    const rest = f[5]
    const isUpdatedAt = /@updatedAt\b/.test(rest)
    const isRequired = !f[4] && !f[3] && !/@default\(/.test(rest) && !isUpdatedAt
    const native = /@db\.(\w+(?:\([^)]*\))?)/.exec(rest)?.[1]
    const scale = native ? /^Decimal\(\s*\d+\s*,\s*(\d+)\s*\)$/.exec(native)?.[1] : undefined
    const rel = /@relation\([^)]*\bfields:\s*\[([^\]]*)\]/.exec(rest)?.[1]
    current.fields.set(f[1], {
      isId: /(^|\s)@id\b/.test(rest),
      dateOnly: /@db\.Date\b/.test(rest),
      isUpdatedAt,
      isList: !!f[3],
      isRequired,
      ...(native ? { nativeType: native } : {}),
      ...(scale !== undefined ? { scale: Number(scale) } : {}),
      ...(rel ? { relationFields: rel.split(',').map((x) => x.trim()).filter(Boolean) } : {}),
    })
  }
  return out
}

/** The slice of a driver adapter (@prisma/driver-adapter-utils) the library uses. */
export interface AdapterQuery {
  sql: string
  args: unknown[]
  argTypes: Array<{ scalarType: 'unknown'; arity: 'scalar' | 'list' }>
}
export interface AdapterQueryable {
  queryRaw(q: AdapterQuery): Promise<{ columnNames: string[]; rows: unknown[][] }>
  executeRaw(q: AdapterQuery): Promise<number>
}
export interface AdapterTransaction extends AdapterQueryable {
  readonly options: { usePhantomQuery: boolean }
  commit(): Promise<void>
  rollback(): Promise<void>
}
export interface AdapterConnection extends AdapterQueryable {
  startTransaction(isolationLevel?: string): Promise<AdapterTransaction>
  dispose(): Promise<void>
}

/** A new connection (pool) from the client's driver adapter factory, or null when it has none. */
export async function openAdapter(client: AnyClient): Promise<AdapterConnection | null> {
  const factory = client._engineConfig?.adapter
  if (!factory || typeof factory.connect !== 'function') return null
  return factory.connect()
}

/** The slice of a pg client that COPY needs: `query()` of a submittable (pg-copy-streams). */
export interface PgCopyClient {
  query<T>(submittable: T): T
  query(sql: string): Promise<unknown>
}

/**
 * The pg `PoolClient` behind a transaction of @prisma/adapter-pg, for `COPY ... FROM STDIN`; null
 * for another adapter (or a changed one), so the caller takes its plain-SQL path.
 */
export function pgClientOf(tx: AdapterTransaction): PgCopyClient | null {
  const { provider, client } = tx as unknown as { provider?: string; client?: { query?: unknown; release?: unknown } }
  return provider === 'postgres' && client && typeof client.query === 'function' && typeof client.release === 'function' ? (client as PgCopyClient) : null
}

/** The slice of a pg `Pool` that COPY TO needs. */
export interface PgCopyPool {
  connect(): Promise<PgCopyClient & { release(err?: Error | boolean): void }>
}

/** The pg `Pool` behind an adapter of @prisma/adapter-pg; null for another adapter (or a changed one). */
export function pgPoolOf(adapter: AdapterConnection): PgCopyPool | null {
  const a = adapter as unknown as { provider?: string; underlyingDriver?: () => unknown }
  if (a.provider !== 'postgres' || typeof a.underlyingDriver !== 'function') return null
  const pool = a.underlyingDriver() as { connect?: unknown } | undefined
  return pool && typeof pool.connect === 'function' ? (pool as PgCopyPool) : null
}
