/**
 * `cqrs consume` as users run it (a subprocess of the built bin, dist/cli/main.js) against real PostgreSQL, through
 * RabbitMQ and NATS: workers, crashes, poison messages, retries that wait in the broker, and
 * dead-letter retry.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { ChildProcess } from 'node:child_process'
import { encodeMessage } from '../../src/core/message.js'
import { silentLogger } from '../../src/core/logger.js'
import { runtime } from '../../src/transport/runtime-transport.js'
import { cqrs, spawnCqrs, stop, waitForStderr } from '../support/cli.js'
import { eventually, tableDiff } from '../support/compare.js'
import { createTestDatabase, type TestDatabase } from '../support/databases.js'
import { deleteQueue, makeTransport, type TransportKind, transportEnv } from '../support/transports.js'
import { masterClient } from '../support/master.js'
import { cqrsMessage } from '../support/messages.js'

const dialect = 'postgresql'

// Every cqrs_id the test config's replica handles (NATS keeps a durable per cqrs_id).
const handled = (suffix: string) => ['author', 'book', 'tag', 'setting', 'ledger'].map((id) => `${id}${suffix}`)

/** The suite through one transport; one test file per transport, so vitest runs them side by side. */
export function consumeCliSuite(kind: TransportKind): void {
  describe(`cqrs consume (subprocess) through ${kind}`, () => {
    let master: TestDatabase
    let replica: TestDatabase
    let prisma: any
    let suffix: string
    let queue: string
    let env: Record<string, string>
    const children: ChildProcess[] = []
    const transports: Array<{ close(): Promise<void> }> = []

    beforeAll(async () => {
      ;[master, replica] = await Promise.all([createTestDatabase(dialect, 'km'), createTestDatabase(dialect, 'kr')])
    })
    afterAll(async () => {
      await Promise.allSettled([master?.drop(), replica?.drop()])
    })

    /** A fresh queue and cqrs_id suffix per test, and a master client publishing to them. */
    async function setup(extra: Record<string, string> = {}) {
      suffix = `_k${Math.random().toString(36).slice(2, 8)}`
      queue = `cli${suffix}`
      env = { CQRS_TEST_DIALECT: dialect, CQRS_REPLICA_URL: replica.url, CQRS_QUEUE: queue, CQRS_ID_SUFFIX: suffix, ...transportEnv(kind), CQRS_RETRY_DELAYS: '300,600', ...extra }
      const transport = makeTransport(kind)
      transports.push(transport)
      prisma = await masterClient(await master.client(), { transport, logger: silentLogger, models: { author: { cqrsId: `author${suffix}` } } })
      await master.exec('DELETE FROM author; DELETE FROM cqrs_outbox')
      await replica.exec('DELETE FROM author_ref; DELETE FROM cqrs_tombstone')
    }
    async function consume(args: string[] = [], extra: Record<string, string> = {}) {
      const child = spawnCqrs(['consume', ...args], { ...env, ...extra })
      children.push(child)
      await waitForStderr(child, /ready/)
      return child
    }
    afterEach(async () => {
      await Promise.allSettled(children.splice(0).map((c) => stop(c, 'SIGKILL')))
      await prisma?.$cqrs.close()
      await Promise.allSettled(transports.splice(0).map((t) => t.close()))
      await deleteQueue(kind, queue, handled(suffix))
    })
    const converged = (timeoutMs = 30_000) => eventually(() => tableDiff(master, 'author', replica, 'author_ref'), timeoutMs)

    async function writeStream(n: number) {
      const ids: number[] = []
      for (let i = 0; i < n; i++) {
        if (ids.length < 10 || i % 3 === 0) ids.push((await prisma.author.create({ data: { name: `w${i}`, externalId: `e${i}` } })).id)
        else if (i % 11 === 0) await prisma.author.delete({ where: { id: ids.splice(i % ids.length, 1)[0] } })
        else await prisma.author.update({ where: { id: ids[i % ids.length] }, data: { rating: { increment: 1 }, name: `w${i}` } })
      }
    }

    it('-w 2: two worker processes on one queue converge, and SIGTERM drains and exits 0', async () => {
      await setup()
      const sup = await consume(['-w', '2'], {})
      await waitForStderr(sup, /worker 2: ready/)
      await writeStream(400)
      await prisma.$cqrs.flush()
      await converged()
      const exit = await stop(sup, 'SIGTERM')
      expect(exit.code).toBe(0)
    })

    it('a consumer killed with SIGKILL mid-stream and restarted converges with nothing lost', async () => {
      await setup()
      // Events wait in the queue first, so the kill lands while batches are in flight.
      const first = await consume(['--batch', '20', '--prefetch', '40'])
      await stop(first, 'SIGTERM')
      await writeStream(600)
      await prisma.$cqrs.flush()
      const victim = await consume(['--batch', '20', '--prefetch', '40'])
      await eventually(async () => ((await replica.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM author_ref'))[0].n > 20 ? [] : ['not started']), 20_000, 'some rows applied')
      await stop(victim, 'SIGKILL')
      await consume()
      await converged()
    })

    it('a poison message is dead-lettered with its reason while the rest of the queue flows', { timeout: 120_000 }, async () => {
      await setup()
      await consume()
      const t = runtime(makeTransport(kind))
      transports.push(t)
      await t.publish([
        { routingKey: `author${suffix}`, body: '{"signal_type": "SAVE", broken' },
        { routingKey: `author${suffix}`, body: encodeMessage(cqrsMessage('SAVE', `author${suffix}`, { id: 999, name: null, cqrs_revision: 0 })) },
      ])
      await writeStream(50)
      await prisma.$cqrs.flush()
      await converged()
      let listed: any[] = []
      await eventually(async () => {
        const r = await cqrs(['dead-letters', 'list', '--json'], env)
        listed = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
        return listed.length === 2 ? [] : [`${listed.length} dead letters: ${r.stderr}`]
      })
      expect(listed.map((d) => d.reason).sort()).toEqual([expect.stringContaining("'name' is null"), expect.stringContaining('not valid JSON')].sort())
      expect(listed.every((d) => d.attempts === 1 && d.firstFailedAt)).toBe(true)
      // What an operator runs next: status, then purge.
      const status = await cqrs(['status', '--json'], env)
      expect(JSON.parse(status.stdout).replica, status.stderr).toEqual({ queue, messages: 0, consumers: 1, retrying: 0, deadLettered: 2 })
      const purge = await cqrs(['dead-letters', 'purge', '--all'], env)
      expect(purge.stderr).toContain('purged 2 dead letter(s)')
    })

    it('retries wait in the broker across a consumer restart, then apply', async () => {
      await setup({ CQRS_RETRY_DELAYS: '3000' })
      const failing = await consume([], { CQRS_FAIL_NAME: 'FLAKY', CQRS_LOG_LEVEL: 'info' })
      await prisma.author.create({ data: { name: 'FLAKY one', externalId: 'f' } })
      await prisma.$cqrs.flush()
      await waitForStderr(failing, /retrying in the broker/)
      expect((await stop(failing, 'SIGTERM')).code).toBe(0)
      // The message now waits in the delay queue, not in any process.
      const stats = runtime(makeTransport(kind))
      transports.push(stats)
      await stats.connect()
      const s = await (stats.inner as any).queueStats({ queue, cqrsIds: [`author${suffix}`], retryDelaysMs: [3000] })
      expect(s.retrying).toBe(1)
      await consume() // no injected failure this time
      await converged()
      expect(await replica.query(`SELECT name FROM author_ref`)).toEqual([{ name: 'FLAKY one' }])
    })

    it('dead-letters retry brings a fixed message back and it applies', async () => {
      await setup()
      const broken = await consume([], { CQRS_FAIL_NAME: 'BAD', CQRS_FAIL_PERMANENT: '1' })
      await prisma.author.create({ data: { name: 'BAD row', externalId: 'b' } })
      await prisma.author.create({ data: { name: 'good row', externalId: 'g' } })
      await prisma.$cqrs.flush()
      let id = ''
      await eventually(async () => {
        const r = await cqrs(['dead-letters', 'list', '--json'], env)
        const lines = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
        id = lines[0]?.id ?? ''
        return lines.length === 1 && lines[0].reason.includes('injected permanent failure for BAD row') ? [] : [r.stdout + r.stderr]
      })
      await stop(broken, 'SIGTERM')
      await consume() // "fixed"
      const retry = await cqrs(['dead-letters', 'retry', '--id', id], env)
      expect(retry.code, retry.stderr).toBe(0)
      expect(retry.stderr).toContain('retried 1 dead letter')
      await converged()
      const after = await cqrs(['dead-letters', 'list'], env)
      expect(after.stderr).toContain('0 dead letter(s)')
    })
  })
}
