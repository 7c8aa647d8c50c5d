import type { Provider } from './internals.js'

/** Quote a table or column name for the dialect. */
export function quoteIdent(provider: Provider, name: string): string {
  return provider === 'mysql' ? `\`${name.replace(/`/g, '``')}\`` : `"${name.replace(/"/g, '""')}"`
}

/** The n-th (1-based) bind placeholder. */
export function placeholder(provider: Provider, n: number): string {
  return provider === 'postgresql' ? `$${n}` : '?'
}
