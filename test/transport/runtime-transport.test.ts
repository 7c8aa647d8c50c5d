import { describe, expect, it } from 'vitest'
import { TransportError } from '../../src/core/errors.js'
import { RuntimeTransport, runtime } from '../../src/transport/runtime-transport.js'
import type { Subscription, Transport } from '../../src/transport/types.js'

function fake(overrides: Partial<Transport> = {}) {
  const calls: string[] = []
  const t: Transport = {
    name: 'fake',
    connect: async () => void calls.push('connect'),
    close: async () => void calls.push('close'),
    publish: async () => void calls.push('publish'),
    consume: async (): Promise<Subscription> => {
      calls.push('consume')
      return { stop: async () => void calls.push('stop') }
    },
    ...overrides,
  }
  return { t, calls }
}

describe('RuntimeTransport', () => {
  it('connects once, even when called concurrently, and before publish and consume', async () => {
    const { t, calls } = fake()
    const r = runtime(t)
    await Promise.all([r.connect(), r.connect(), r.publish([]), r.consume({ queue: 'q', cqrsIds: [], retryDelaysMs: [], prefetch: 1, batchSize: 1 }, async () => [])])
    expect(calls.filter((c) => c === 'connect')).toEqual(['connect'])
    expect(calls[0]).toBe('connect')
    expect(r.isConnected()).toBe(true)
  })

  it('tries again after a failed connect', async () => {
    let attempts = 0
    const { t } = fake({
      connect: async () => {
        if (++attempts === 1) throw new Error('down')
      },
    })
    const r = runtime(t)
    await expect(r.connect()).rejects.toThrow('down')
    expect(r.isConnected()).toBe(false)
    await r.connect()
    expect(attempts).toBe(2)
  })

  it('closes once, stopping subscriptions first, and refuses work afterwards', async () => {
    const { t, calls } = fake()
    const r = runtime(t)
    await r.consume({ queue: 'q', cqrsIds: [], retryDelaysMs: [], prefetch: 1, batchSize: 1 }, async () => [])
    await Promise.all([r.close(), r.close()])
    expect(calls).toEqual(['connect', 'consume', 'stop', 'close'])
    await expect(r.publish([])).rejects.toThrow(TransportError)
    await expect(r.publish([])).rejects.toThrow('publish() on the fake transport after close(); it cannot be reopened. Create a new transport instead.')
    expect(r.isConnected()).toBe(false)
  })

  it('does not close a transport that never connected', async () => {
    const { t, calls } = fake()
    await runtime(t).close()
    expect(calls).toEqual([])
  })

  it('stops a subscription once, whoever asks', async () => {
    const { t, calls } = fake()
    const r = runtime(t)
    const sub = await r.consume({ queue: 'q', cqrsIds: [], retryDelaysMs: [], prefetch: 1, batchSize: 1 }, async () => [])
    await Promise.all([sub.stop(), sub.stop()])
    await r.close()
    expect(calls.filter((c) => c === 'stop')).toHaveLength(1)
  })

  it('has the optional methods only when the inner transport has them', async () => {
    expect(runtime(fake().t).listDeadLetters).toBeUndefined()
    expect(runtime(fake().t).queueStats).toBeUndefined()
    const { t, calls } = fake({ queueStats: async (spec) => ({ queue: spec.queue, messages: 1, consumers: 0, retrying: 0, deadLettered: 0 }) })
    const r = runtime(t)
    expect((await r.queueStats!({ queue: 'q', cqrsIds: [], retryDelaysMs: [] })).messages).toBe(1)
    expect(calls).toEqual(['connect'])
  })

  it('runtime() does not wrap twice, and reports the inner connection state', () => {
    let up = true
    const { t } = fake({ isConnected: () => up })
    const r = runtime(t)
    expect(runtime(r)).toBe(r)
    expect(runtime(t)).toBe(r) // a master and a replica sharing `t` share its lifecycle
    expect(r).toBeInstanceOf(RuntimeTransport)
    expect(r.name).toBe('fake')
    return r.connect().then(() => {
      expect(r.isConnected()).toBe(true)
      up = false
      expect(r.isConnected()).toBe(false)
    })
  })
})
