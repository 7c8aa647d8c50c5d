import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/load-config.js'

const dir = mkdtempSync(join(tmpdir(), 'cqrs-config-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('loadConfig', () => {
  it('loads a TypeScript config, types and all, and what it imports', async () => {
    writeFileSync(join(dir, 'queue.ts'), `export const queue: string = 'from-ts'\n`)
    writeFileSync(join(dir, 'cqrs.config.ts'), `import { queue } from './queue.js'\ninterface C { replica: { queue: string } }\nconst c: C = { replica: { queue } }\nexport default c\n`)
    const { path, config } = await loadConfig(undefined, {}, dir)
    expect(path).toBe(join(dir, 'cqrs.config.ts'))
    expect(config).toEqual({ replica: { queue: 'from-ts' } })
  })

  it('loads a JavaScript config named by --config', async () => {
    writeFileSync(join(dir, 'other.mjs'), `export default { replica: { queue: 'from-js' } }\n`)
    const { config } = await loadConfig('other.mjs', {}, dir)
    expect(config).toEqual({ replica: { queue: 'from-js' } })
  })

  it('says where to look when there is no config', async () => {
    const empty = mkdtempSync(join(dir, 'empty-'))
    await expect(loadConfig(undefined, {}, empty)).rejects.toThrow(/No cqrs.config.ts in .*"Configuration"/)
  })
})
