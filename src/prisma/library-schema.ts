import { readFileSync } from 'node:fs'
import { ConfigError } from '../core/errors.js'

export const SCHEMA_PROVIDERS = ['postgresql', 'mysql', 'sqlite'] as const
export type SchemaProvider = (typeof SCHEMA_PROVIDERS)[number]

/**
 * The library's own tables (`cqrs_outbox` on masters, `cqrs_tombstone` on replicas) for a provider:
 * the Prisma models to add to the user's schema, or the SQL they migrate to. Read from the package's
 * `prisma/` folder (shipped, and exported as `cqrs-sync/prisma/cqrs.<provider>.prisma|sql`).
 */
export function librarySchema(provider: string, format: 'prisma' | 'sql'): string {
  if (!(SCHEMA_PROVIDERS as readonly string[]).includes(provider)) throw new ConfigError(`Unknown provider '${provider}': use ${SCHEMA_PROVIDERS.join(', ')} (MariaDB is mysql)`)
  // src/prisma/ and dist/prisma/ are both two levels below the package root.
  return readFileSync(new URL(`../../prisma/cqrs.${provider}.${format}`, import.meta.url), 'utf8')
}
