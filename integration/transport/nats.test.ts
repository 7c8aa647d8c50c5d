import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError, TransportError } from '../../src/core/errors.js'
import { silentLogger } from '../../src/core/logger.js'
import { nats, NatsTransport, type NatsOptions } from '../../src/transport/nats/index.js'
import type { BatchHandler, ConsumeOptions, QueueSpec } from '../../src/transport/types.js'
import { deleteQueue, NATS_URL } from '../support/transports.js'
import { deferred, inbox, transportContract } from './contract.js'


const deleteSpec = (spec: QueueSpec) => deleteQueue('nats', spec.queue, spec.cqrsIds)

transportContract('nats', () => nats({ servers: NATS_URL, logger: silentLogger, ackWaitMs: 5_000 }), { cleanup: deleteSpec, ordering: 'subject' })

describe('nats transport', { timeout: 20_000 }, () => {
  const opened: NatsTransport[] = []
  const specs: QueueSpec[] = []
  afterEach(async () => {
    await Promise.allSettled(opened.splice(0).map((t) => t.close()))
    for (const s of specs.splice(0)) await deleteSpec(s)
  })
  const open = async (options: NatsOptions = {}, closeAfter = true) => {
    const t = nats({ servers: NATS_URL, logger: silentLogger, ackWaitMs: 5_000, ...options })
    if (closeAfter) opened.push(t)
    await t.connect()
    return t
  }
  const makeSpec = (retryDelaysMs: number[] = []): QueueSpec => {
    const tag = randomBytes(4).toString('hex')
    const spec = { queue: `nats_${tag}`, cqrsIds: [`author_${tag}`], retryDelaysMs }
    specs.push(spec)
    return spec
  }
  const consume = (t: NatsTransport, spec: QueueSpec, handler: BatchHandler, extra: Partial<ConsumeOptions> = {}) =>
    t.consume({ ...spec, prefetch: 10, batchSize: 10, ...extra }, handler)

  it("the server drops a relay's second publish of an event (same message id), not another event's", async () => {
    const t = await open()
    const spec = makeSpec()
    const [id] = spec.cqrsIds
    const box = inbox()
    await consume(t, spec, box.handler)
    await t.publish([{ routingKey: id, body: 'e1', messageId: '1' }])
    await t.publish([{ routingKey: id, body: 'e1 again', messageId: '1' }, { routingKey: id, body: 'e2', messageId: '2' }])
    // Another master's event with the same outbox id, on its own cqrs_id, is not a duplicate.
    await t.publish([{ routingKey: `cqrs.${spec.queue}.${id}`, body: 'sync', messageId: '1' }, { routingKey: id, body: 'end', messageId: '3' }])
    await box.until(4)
    expect(box.bodies().sort()).toEqual(['e1', 'e2', 'end', 'sync'])
  })

  it('a message over the server\'s max_payload is refused saying what to raise, and nothing of its batch is stored', async () => {
    const t = await open()
    const spec = makeSpec()
    const [id] = spec.cqrsIds
    const box = inbox()
    await consume(t, spec, box.handler)
    const max = 1024 * 1024 // nats-server's default max_payload, which the local server keeps
    const big = 'x'.repeat(max + 1)
    const error = await t.publish([{ routingKey: id, body: 'before', messageId: '1' }, { routingKey: id, body: big, messageId: '2' }]).catch((e) => e)
    expect(error).toBeInstanceOf(TransportError)
    expect(error.message).toMatch(new RegExp(`message 2 with key '${id}' is ${max + 1} bytes, more than the max_payload of NATS at .* \\(${max} bytes\\), so NATS refuses it every time; raise max_payload`))
    // Checked before anything is sent: the relay keeps the whole batch, in order, for its next attempt.
    await t.publish([{ routingKey: id, body: 'after', messageId: '3' }])
    await box.until(1)
    expect(box.bodies()).toEqual(['after'])
  })

  it('from: a new queue starts at a time in the stream, and an existing queue refuses another start', async () => {
    const t = await open()
    const spec = makeSpec()
    const [id] = spec.cqrsIds
    const early = inbox()
    const first = await consume(t, makeSpec(), early.handler) // any consumer: the stream exists
    await first.stop()
    await t.publish([{ routingKey: id, body: 'before' }])
    // Stored times have nanoseconds: start at the next millisecond, once the clock has passed it.
    const since = new Date(Date.now() + 1)
    while (Date.now() <= since.getTime()) await new Promise((resolve) => setImmediate(resolve))
    await t.publish([{ routingKey: id, body: 'after-1' }, { routingKey: id, body: 'after-2' }])
    const box = inbox()
    const sub = await consume(t, spec, box.handler, { from: since })
    await box.until(2)
    expect(box.bodies()).toEqual(['after-1', 'after-2'])
    await sub.stop()
    // The same start again (a second worker, a restart with the same flag) resumes it.
    await (await consume(t, spec, inbox().handler, { from: since })).stop()
    const err = await consume(t, spec, inbox().handler, { from: new Date(since.getTime() - 60_000) }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as Error).message).toMatch(/--from .*: queue 'nats_\w+' exists already on NATS .*; --from only starts a new queue\. Delete its durables \(nats consumer rm CQRS .*\) or use a new queue name/)
  })

  it('a retry waits in the server, outlives its consumer, and any worker takes it when due', async () => {
    const t = await open()
    const spec = makeSpec([800])
    const [id] = spec.cqrsIds
    const first = inbox(() => ({ kind: 'retry', delayMs: 800, body: '{"retries":1}', cqrsId: id, headers: { 'x-cqrs-attempts': 1 } }))
    const sub = await consume(t, spec, first.handler)
    await t.publish([{ routingKey: id, body: '{"retries":0}', messageId: 'r' }])
    await first.until(1)
    await sub.stop()
    expect(await t.queueStats(spec)).toMatchObject({ messages: 0, consumers: 0, retrying: 1 })
    const other = await open()
    const second = inbox()
    await consume(other, spec, second.handler)
    const [d] = await second.until(1)
    expect(d).toMatchObject({ routingKey: `cqrs.${spec.queue}.${id}`, messageId: 'r', headers: { 'x-cqrs-attempts': 1, 'cqrs-delay-ms': '800' } })
    expect(d.body.toString()).toBe('{"retries":1}')
  })

  it('queueStats counts the workers consuming the queue', async () => {
    const t = await open()
    const spec = makeSpec()
    await consume(t, spec, inbox().handler)
    await consume(await open(), spec, inbox().handler)
    expect((await t.queueStats(spec)).consumers).toBe(2)
  })

  it('a worker that dies without acking: its messages go to another worker after ackWaitMs', async () => {
    const spec = makeSpec()
    const [id] = spec.cqrsIds
    const dying = await open({ ackWaitMs: 1_000 }, false) // its batch never ends: close() would wait for it
    const held = deferred()
    await consume(dying, spec, () => {
      held.resolve()
      return new Promise<never>(() => {}) // never settles: the process is as good as dead
    })
    await dying.publish([{ routingKey: id, body: 'orphan' }])
    await held.promise
    dying.connection!.close() // gone without acking, as a killed process is
    const box = inbox()
    await consume(await open({ ackWaitMs: 1_000 }), spec, box.handler)
    const [d] = await box.until(1)
    expect(d).toMatchObject({ redelivered: true })
    expect(d.body.toString()).toBe('orphan')
  })

  it('refuses names that cannot be subjects, and a failed connect says what to check', async () => {
    const t = await open()
    await expect(consume(t, { queue: 'bad queue', cqrsIds: ['a'], retryDelaysMs: [] }, inbox().handler)).rejects.toThrow(/must not be empty or hold spaces/)
    await expect(consume(t, { queue: 'q', cqrsIds: ['a.*'], retryDelaysMs: [] }, inbox().handler)).rejects.toThrow(ConfigError)
    const down = nats({ servers: 'nats://u:secret@127.0.0.1:1', logger: silentLogger })
    const err = await down.connect().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TransportError)
    expect((err as Error).message).toMatch(/^cannot connect to NATS at nats:\/\/u:\*\*\*@127\.0\.0\.1:1 \(.*\); is nats-server running with JetStream \(-js\)\? Set NATS_URL or nats\(\{ servers \}\)$/)
    await down.close()
  })
})

// A NATS server of this test's own (the shared one is never stopped), on a free port with its own store.
async function ownServer() {
  const dir = mkdtempSync(join(tmpdir(), 'cqrs-nats-'))
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo
      s.close(() => resolve(port))
    })
  })
  let child: ChildProcess | undefined
  const start = async () => {
    child = spawn('nats-server', ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] })
    let log = ''
    await new Promise<void>((resolve, reject) => {
      child!.stderr!.on('data', (d) => {
        log += d
        if (log.includes('Server is ready')) resolve()
      })
      child!.once('exit', (code) => reject(new Error(`nats-server exited (${code}): ${log}`)))
    })
  }
  const stop = async () => {
    const c = child
    if (!c || c.exitCode !== null) return
    await new Promise((resolve) => {
      c.once('exit', resolve)
      c.kill('SIGTERM')
    })
  }
  await start()
  return { url: `nats://127.0.0.1:${port}`, start, stop, remove: async () => (await stop(), rmSync(dir, { recursive: true, force: true })) }
}

describe('nats transport through a server restart', { timeout: 60_000 }, () => {
  it('reports the outage, refuses to publish meanwhile, then reconnects and resumes its consumers', async () => {
    const server = await ownServer()
    const lost = deferred()
    const back = deferred()
    const logger = { ...silentLogger, warn: (m: string) => m.startsWith('lost the connection') && lost.resolve(), info: (m: string) => m.startsWith('reconnected') && back.resolve() }
    const t = nats({ servers: server.url, logger, ackWaitMs: 2_000 })
    try {
      await t.connect()
      const box = inbox()
      await t.consume({ queue: 'restart', cqrsIds: ['a'], retryDelaysMs: [], prefetch: 10, batchSize: 10 }, box.handler)
      await t.publish([{ routingKey: 'a', body: 'before', messageId: '1' }])
      await box.until(1)

      await server.stop()
      await lost.promise
      expect(t.isConnected()).toBe(false)
      await expect(t.publish([{ routingKey: 'a', body: 'during' }])).rejects.toThrow(/^publish\(\): not connected to NATS at nats:\/\/127\.0\.0\.1:\d+ \(the connection was lost and is being re-established\); try again later$/)

      await server.start() // same store: the streams and the durable are still there
      await back.promise
      expect(t.isConnected()).toBe(true)
      await t.publish([{ routingKey: 'a', body: 'after', messageId: '2' }])
      await box.until(2)
      expect(box.bodies()).toEqual(['before', 'after'])
    } finally {
      await t.close().catch(() => {})
      await server.remove()
    }
  })
})
