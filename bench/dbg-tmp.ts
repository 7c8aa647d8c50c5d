import { silentLogger } from '../src/core/logger.js'
import { modelsOf, providerOf } from '../src/prisma/internals.js'
import { findModel } from '../src/prisma/model-plans.js'
import { PrismaOutboxStore } from '../src/prisma/prisma-outbox-store.js'
import { authorBodies, fillOutbox } from './relay.js'
import { createTestDatabase } from './support.js'
const db = await createTestDatabase('mysql', 'dbg')
const prisma = await db.client()
const store = new PrismaOutboxStore(prisma, providerOf(prisma), findModel(modelsOf(prisma), 'CqrsOutbox')!)
await fillOutbox(db, 'x', authorBodies('x', 1, 10))
console.log('filled')
const t = setTimeout(() => { console.log('stuck'); process.exit(1) }, 10000)
const n = await store.claim(5, async (rows) => console.log('rows', rows.length, typeof rows[0].id, rows[0].format, rows[0].body.slice(0, 40)))
console.log('claimed', n)
console.log('again', await store.claim(50, async (rows) => console.log('rows', rows.length)))
console.log('empty', await store.claim(50, async (rows) => console.log('rows', rows.length)))
clearTimeout(t)
await store.close()
await db.drop()
