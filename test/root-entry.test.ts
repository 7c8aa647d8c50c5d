import { describe, expect, it } from 'vitest'

describe('root entry', () => {
  it('exports the public API without loading amqplib', async () => {
    const before = Object.keys(await import('node:module').then((m) => (m as any).default._cache ?? {})).filter((k) => k.includes('amqplib'))
    const api = await import('../src/index.js')
    expect(typeof api.cqrsMaster).toBe('function')
    expect(typeof api.cqrsReplica).toBe('function')
    expect(typeof api.defineConfig).toBe('function')
    const after = Object.keys(await import('node:module').then((m) => (m as any).default._cache ?? {})).filter((k) => k.includes('amqplib'))
    expect(after).toEqual(before)
  })
})
