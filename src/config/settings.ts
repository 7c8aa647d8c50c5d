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

/** A parser of whole numbers of at least `min` (0 or 1) for the setting `name`, saying what it got otherwise. */
const wholeNumber = (min: 0 | 1) => (name: string) => (raw: string): number => {
  const n = raw.trim() === '' ? NaN : Number(raw)
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${name} must be ${min ? 'a positive whole number' : 'a whole number, 0 or more'}; got '${raw}'`)
  return n
}

export const positiveInt = wholeNumber(1)
export const nonNegativeInt = wholeNumber(0)
