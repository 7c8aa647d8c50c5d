import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ConfigError } from '../core/errors.js'
import type { CqrsConfig } from './define-config.js'

const CANDIDATES = ['cqrs.config.ts', 'cqrs.config.mts', 'cqrs.config.js', 'cqrs.config.mjs']

/**
 * A TypeScript config goes through jiti (a loader made for config files: it transpiles the file and
 * what it imports, and leaves node_modules to node); a JavaScript one is a plain `import()`, so no
 * TypeScript tooling is loaded for it.
 */
async function importConfig(path: string): Promise<any> {
  if (!/\.[cm]?ts$/.test(path)) return import(pathToFileURL(path).href)
  const { createJiti } = await import('jiti')
  return createJiti(import.meta.url, { interopDefault: false }).import(path)
}

/** Find and import the config: `--config` > `CQRS_CONFIG` > `./cqrs.config.{ts,mts,js,mjs}`. */
export async function loadConfig(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<{ path: string; config: CqrsConfig }> {
  const given = flag ?? env.CQRS_CONFIG
  const path = given ? resolve(cwd, given) : CANDIDATES.map((c) => resolve(cwd, c)).find(existsSync)
  if (!path) throw new ConfigError(`No cqrs.config.ts in ${cwd}. Create one (see README, "Configuration"), or pass --config <file> or set CQRS_CONFIG.`)
  if (!existsSync(path)) throw new ConfigError(`Config file ${path} does not exist (from ${flag ? '--config' : 'CQRS_CONFIG'}).`)
  let mod: any
  try {
    mod = await importConfig(path)
  } catch (e) {
    throw new ConfigError(`Could not load ${path}: ${(e as Error).message}`)
  }
  const config = mod.default?.default ?? mod.default ?? mod.config
  if (!config || typeof config !== 'object') throw new ConfigError(`${path} must \`export default defineConfig({ ... })\`.`)
  return { path, config }
}
