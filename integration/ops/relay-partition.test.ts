/**
 * A leading relay cut off by a network partition, its connections left open: PostgreSQL ends its
 * session within about half a minute (the LISTEN session's TCP keepalive and user timeout), so its
 * advisory lock, the lead, passes to a follower, and every event committed meanwhile arrives.
 *
 * The leader is a real `cqrs relay` in a network namespace of the test's own, reaching a PostgreSQL
 * cluster of its own over a veth pair (RabbitMQ through a proxy on the veth's host address); the
 * partition takes the namespace's end of the link down, so nothing is closed and nothing answers.
 * Commits during the partition leave notifications unsent to the leader's session, the case where
 * TCP keepalive alone never fires (probes wait for unacknowledged data, retransmitted for minutes).
 * Needs root, `ip` (iproute2) and Debian's PostgreSQL cluster tools, as CI has; skipped elsewhere.
 */
import { execFile, type ChildProcess } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { adapterFromUrl } from '../../src/prisma/adapter-from-url.js'
import { createRelay, cqrsMaster, outboxNotifyStatements } from '../../src/prisma/cqrs-master.js'
import { rabbitmq } from '../../src/transport/rabbitmq/index.js'
import { spawnCqrs, stop, waitForStderr } from '../support/cli.js'
import { AMQP_URL, DIALECTS } from '../support/databases.js'
import { committedEvents } from '../support/outbox.js'
import { allArrived, eventCounts, testQueue, uniqueSuffix, type TestQueue } from '../support/rabbit.js'
import { recordingLogger } from '../support/recording-logger.js'
import { TcpProxy } from '../support/tcp-proxy.js'
import { canCreateClusters, ownPostgres, type OwnPostgres } from './own-postgres.js'

const run = promisify(execFile)
const canPartition = canCreateClusters && process.getuid?.() === 0 && existsSync('/usr/sbin/ip') && DIALECTS.includes('postgresql')

/** A network namespace joined to this one by a veth pair: `hostIp` here, `nsIp` there. */
async function netns() {
  const tag = randomBytes(3).toString('hex')
  const ns = `cqrs_${tag}`
  const [hostEnd, nsEnd] = [`vh${tag}`, `vn${tag}`]
  // A /30 of 10.211.0.0/16 of its own, so that parallel runs do not meet.
  const net = `10.211.${randomBytes(1)[0]}.${4 * (randomBytes(1)[0] % 64)}`
  const base = net.split('.').map(Number)
  const ip = (n: number) => [...base.slice(0, 3), base[3] + n].join('.')
  const [hostIp, nsIp] = [ip(1), ip(2)]
  const sh = (args: string[]) => run('ip', args)
  await sh(['netns', 'add', ns])
  const remove = async () => {
    await sh(['netns', 'del', ns]).catch(() => {})
    await sh(['link', 'del', hostEnd]).catch(() => {}) // gone with its peer, normally
  }
  try {
    await sh(['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', nsEnd])
    await sh(['link', 'set', nsEnd, 'netns', ns])
    await sh(['addr', 'add', `${hostIp}/30`, 'dev', hostEnd])
    await sh(['link', 'set', hostEnd, 'up'])
    await sh(['-n', ns, 'addr', 'add', `${nsIp}/30`, 'dev', nsEnd])
    await sh(['-n', ns, 'link', 'set', nsEnd, 'up'])
    await sh(['-n', ns, 'link', 'set', 'lo', 'up'])
  } catch (e) {
    await remove()
    throw e
  }
  return {
    ns,
    hostIp,
    cidr: `${ip(0)}/30`,
    /** Take the namespace's end of the link down: packets are dropped, no connection is closed. */
    partition: () => sh(['-n', ns, 'link', 'set', nsEnd, 'down']),
    remove,
  }
}

describe.skipIf(!canPartition)('a leading relay cut off by a network partition', () => {
  let net: Awaited<ReturnType<typeof netns>>
  let db: OwnPostgres
  let proxy: TcpProxy
  let q: TestQueue
  let leader: ChildProcess | undefined
  const closers: Array<() => Promise<unknown>> = []
  const suffix = `_${uniqueSuffix()}`
  const cqrsId = `author${suffix}`

  beforeAll(async () => {
    net = await netns()
    db = await ownPostgres('partition', { listen: [net.hostIp], hosts: [net.cidr] })
    // RabbitMQ listens on 127.0.0.1 only: the namespace reaches it through a proxy on the veth's address.
    proxy = await TcpProxy.start(5672, '127.0.0.1', net.hostIp)
    q = await testQueue([cqrsId], 'partition')
  }, 120_000)
  afterAll(async () => {
    if (leader) await stop(leader, 'SIGKILL').catch(() => {})
    for (const c of closers.reverse()) await c().catch(() => {})
    await q?.delete()
    await proxy?.close()
    await db?.drop()
    await net?.remove()
  }, 120_000)

  it('PostgreSQL ends its session in well under a minute (not after minutes of TCP retransmissions), a follower takes the lead, and every event arrives', async () => {
    const { PrismaClient } = await import(`../../prisma/generated/${'postgresql'}/client.ts`)
    const prisma = new PrismaClient({ adapter: await adapterFromUrl(db.url) })
    closers.push(() => prisma.$disconnect())
    for (const sql of outboxNotifyStatements(prisma)) await prisma.$executeRawUnsafe(sql)
    const models = { author: { cqrsId } }
    const app = prisma.$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), capture: 'extension', models, relay: { enabled: false }, logger: silentLogger }))
    closers.push(() => app.$cqrs.close())

    // The leader: `cqrs relay` in the namespace, over the veth.
    const port = new URL(db.url).port
    leader = spawnCqrs(['relay'], { CQRS_TEST_DIALECT: 'postgresql', CQRS_MASTER_URL: `postgresql://postgres@${net.hostIp}:${port}/replica`, CQRS_ID_SUFFIX: suffix, CQRS_LOG_LEVEL: 'info', AMQP_URL: `amqp://guest:guest@${net.hostIp}:${proxy.port}` }, { prefix: ['ip', 'netns', 'exec', net.ns] })
    await waitForStderr(leader, /leading/, 60_000)

    // The follower, here.
    const log = recordingLogger()
    const transport = rabbitmq({ url: AMQP_URL, logger: silentLogger })
    const follower = createRelay(prisma, transport, { pollIntervalMs: 100, logger: log.logger, master: { models } })
    closers.push(() => transport.close())
    closers.push(() => follower.stop())
    follower.start()
    await log.until(/another relay leads/)

    const write = async (n: number, label: string) => {
      for (let i = 0; i < n; i++) await app.author.create({ data: { name: `${label}-${i}`, externalId: randomUUID() } })
    }
    await write(10, 'before')
    await q.until(10)

    await net.partition()
    // Committed while the leader cannot be reached: their notifications wait, unacknowledged, for its session.
    await write(10, 'during')
    const tookMs = await log.until(/listening for outbox notifications, leading/, 1, 60_000)
    expect(follower.role).toBe('leader')
    await write(10, 'after')

    const expected = await committedEvents({ query: async (sql: string) => prisma.$queryRawUnsafe(sql) })
    expect(expected.size).toBe(30)
    await q.untilMatch(allArrived(expected), 'every committed event')
    await q.barrier()
    expect([...eventCounts(q.received).keys()].filter((k) => !expected.has(k)), 'nothing nobody committed').toEqual([])
    // For the log of a run: how long the lead took to pass (PostgreSQL's timeouts: about 25 s).
    console.log(`partition: the follower led ${Math.round(tookMs / 1000)} s after the partition began`)
  }, 180_000)
})
