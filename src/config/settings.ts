import { ConfigError } from '../core/errors.js'

/**
 * The one precedence rule for CLI settings: flag > env > config file > default.
 * Each setting names its env variable; numbers are parsed and checked here, once.
 */
export interface SettingSpec<T> {
  name: string
  env?: string
  default: T
  parse?: (raw: string) => T
}

export function setting<T>(spec: SettingSpec<T>, flag: T | string | undefined, fromConfig: T | undefined, env: NodeJS.ProcessEnv = process.env): T {
  const parse = spec.parse ?? ((s: string) => s as unknown as T)
  if (flag !== undefined) return typeof flag === 'string' ? parse(flag) : flag
  if (spec.env && env[spec.env] !== undefined && env[spec.env] !== '') return parse(env[spec.env]!)
  if (fromConfig !== undefined) return fromConfig
  return spec.default
}

export const positiveInt = (name: string) => (raw: string): number => {
  const n = Number(raw)
  if (!Number.isInteger(n) || n <= 0) throw new ConfigError(`${name} must be a positive whole number; got '${raw}'`)
  return n
}

export const nonNegativeInt = (name: string) => (raw: string): number => {
  const n = raw.trim() === '' ? NaN : Number(raw)
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${name} must be a whole number, 0 or more; got '${raw}'`)
  return n
}
