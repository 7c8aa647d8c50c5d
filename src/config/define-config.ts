import type { MasterOptions } from './master-options.js'
import type { ReplicaOptions } from './replica-options.js'
import type { Transport } from '../transport/types.js'

type Lazy<T> = T | (() => T | Promise<T>)

/**
 * `cqrs.config.ts`: what the CLI needs to act as a master, a replica, or both. Every entry may be a
 * value or a (possibly async) factory, so a command builds only what it uses: `cqrs relay` never
 * opens the replica database.
 */
export interface CqrsConfig {
  /** The broker for both sides; `rabbitmq({ url })` from `cqrs-sync/rabbitmq` in production. */
  transport?: Lazy<Transport>
  master?: Lazy<Omit<MasterOptions, 'transport'> & { prisma: any; transport?: Transport }>
  replica?: Lazy<Omit<ReplicaOptions, 'transport'> & { transport?: Transport }>
}

/** Typed identity for `export default defineConfig({ ... })`. */
export function defineConfig(config: CqrsConfig): CqrsConfig {
  return config
}

export async function resolveLazy<T>(v: Lazy<T> | undefined): Promise<T | undefined> {
  return typeof v === 'function' ? await (v as () => T | Promise<T>)() : v
}
