import type { SqlDriverAdapterFactory } from '@prisma/client/runtime/client'
import { ConfigError } from '../core/errors.js'
import { redactUrl } from '../core/logger.js'

/**
 * A Prisma 7 driver adapter for a database URL: `postgres(ql)://`, `mysql://` or `mariadb://`,
 * `file:` (SQLite). The adapter packages are optional peers: only the one you use is loaded.
 */
export async function adapterFromUrl(url: string, options: { poolSize?: number } = {}): Promise<SqlDriverAdapterFactory> {
  if (/^postgres(ql)?:\/\//.test(url)) {
    const { PrismaPg } = await import('@prisma/adapter-pg')
    return new PrismaPg({ connectionString: url, max: options.poolSize ?? 10 })
  }
  if (/^(mysql|mariadb):\/\//.test(url)) {
    const { PrismaMariaDb } = await import('@prisma/adapter-mariadb')
    return new PrismaMariaDb({ ...mariadbConfig(url), connectionLimit: options.poolSize ?? 10, allowPublicKeyRetrieval: true })
  }
  if (url.startsWith('file:') || url === ':memory:') {
    const { PrismaBetterSqlite3 } = await import('@prisma/adapter-better-sqlite3')
    return new PrismaBetterSqlite3({ url })
  }
  throw new ConfigError(`Unsupported database URL ${redactUrl(url)}: use postgresql://, mysql:// (MariaDB too) or file: (SQLite)`)
}

/** Connection settings of the `mariadb` driver (and Prisma's MariaDB adapter) for a mysql:// URL; its database when it names one. */
export function mariadbConfig(url: string): { host: string; port: number; user: string; password: string; database?: string } {
  const u = new URL(url)
  const database = u.pathname.slice(1)
  return { host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username || 'root'), password: decodeURIComponent(u.password), ...(database ? { database } : {}) }
}
