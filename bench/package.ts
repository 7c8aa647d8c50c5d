/**
 * The library as users run it: the compiled package in `dist/` (what `npm install cqrs-sync` gives and
 * what `cqrs consume` runs), not `src/` through tsx. tsx's transform adds work the compiled package
 * never does (a `__name(...)` call per named closure, for one), so a benchmark of `src/` measures a
 * cost no user pays. `npm run bench` builds first (`prebench`); run a script directly with `npx tsx`
 * after `npm run build`. The types come from `src/`, so the type-check needs no build.
 */
import { readdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const dist = new URL('../dist/', import.meta.url)
const src = new URL('../src/', import.meta.url)

function newestMtime(dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(`${entry.parentPath}/${entry.name}`).mtimeMs)
  }
  return newest
}

let builtAt: number
try {
  builtAt = statSync(fileURLToPath(new URL('index.js', dist))).mtimeMs
} catch {
  throw new Error('bench: dist/ is not built. Run `npm run build` first (`npm run bench` does it for you).')
}
if (newestMtime(fileURLToPath(src)) > builtAt) {
  throw new Error('bench: dist/ is older than src/, so it would measure old code. Run `npm run build` first (`npm run bench` does it for you).')
}

const load = (path: string): Promise<unknown> => import(new URL(path, dist).href)

type Root = typeof import('../src/index.js')
type Master = typeof import('../src/prisma/cqrs-master.js')
type RabbitMq = typeof import('../src/transport/rabbitmq/index.js')
type Memory = typeof import('../src/transport/memory/index.js')
type Nats = typeof import('../src/transport/nats/index.js')

export const { cqrsMaster, createRelay, cqrsReplica, decodeMessage, silentLogger } = (await load('index.js')) as Root
export const { installCaptureTriggers, outboxNotifyStatements } = (await load('prisma/cqrs-master.js')) as Master
export const { rabbitmq } = (await load('transport/rabbitmq/index.js')) as RabbitMq
export const { memory } = (await load('transport/memory/index.js')) as Memory
export const { nats, durablePlans } = (await load('transport/nats/index.js')) as Nats

// Internals, for the profile scripts that time one piece (bench/profile/pg-batch.ts).
type ReplicaSql = typeof import('../src/prisma/replica-sql.js')
type ReplicaStore = typeof import('../src/prisma/prisma-replica-store.js')
type DecodeOp = typeof import('../src/replica/decode-op.js')
export const { pgApplyStatement, pgPreparedScript, pgScript, PG_LAYOUT_SQL, pgLayout } = (await load('prisma/replica-sql.js')) as ReplicaSql
export const { pgLockStatement } = (await load('prisma/prisma-replica-store.js')) as ReplicaStore
export const { toApplyOp } = (await load('replica/decode-op.js')) as DecodeOp
