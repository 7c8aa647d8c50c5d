import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'

/**
 * prom-client and @opentelemetry/api are optional peers: importing the library, and writing without
 * asking for metrics, must load neither. Checked in a fresh node process (the test runner has them loaded).
 */
describe('optional peers', () => {
  it('the root entry loads neither prom-client nor @opentelemetry/api until metrics are asked for', () => {
    const script = `
      import { register } from 'tsx/esm/api'
      import { createRequire } from 'node:module'
      register()
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).filter((k) => /prom-client|@opentelemetry/.test(k)).length
      const api = await import('./src/index.ts')
      const before = loaded()
      await api.cqrsMetrics()
      console.log(JSON.stringify({ before, after: loaded() }))
    `
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: new URL('../..', import.meta.url), encoding: 'utf8' }))
    expect(out.before).toBe(0)
    expect(out.after).toBeGreaterThan(0)
  })
})
