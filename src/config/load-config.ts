import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ConfigError } from '../core/errors.js'
import type { CqrsConfig } from './define-config.js'

const CANDIDATES = ['cqrs.config.ts', 'cqrs.config.mts', 'cqrs.config.js', 'cqrs.config.mjs']

/** Find and import the config: `--config` > `CQRS_CONFIG` > `./cqrs.config.{ts,mts,js,mjs}`. */
export async function loadConfig(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<{ path: string; config: CqrsConfig }> {
  const given = flag ?? env.CQRS_CONFIG
  const path = given ? resolve(cwd, given) : CANDIDATES.map((c) => resolve(cwd, c)).find(existsSync)
  if (!path) throw new ConfigError(`No cqrs.config.ts in ${cwd}. Create one (see README, "Configuration"), or pass --config <file> or set CQRS_CONFIG.`)
  if (!existsSync(path)) throw new ConfigError(`Config file ${path} does not exist (from ${flag ? '--config' : 'CQRS_CONFIG'}).`)
  let mod: any
  try {
    mod = await import(pathToFileURL(path).href)
  } catch (e) {
    throw new ConfigError(`Could not load ${path}: ${(e as Error).message}`)
  }
  const config = mod.default?.default ?? mod.default ?? mod.config
  if (!config || typeof config !== 'object') throw new ConfigError(`${path} must \`export default defineConfig({ ... })\`.`)
  return { path, config }
}
