import { resolveLazy, type CqrsConfig } from '../config/define-config.js'
import { loadConfig } from '../config/load-config.js'
import { ConfigError } from '../core/errors.js'
import { stderrLogger, type Logger } from '../core/logger.js'
import { openMasterTools, type MasterTools } from '../prisma/master-tools.js'
import { openReplicaTools, type ReplicaTools } from '../prisma/replica-tools.js'
import type { Transport } from '../transport/types.js'

/** What every command gets: the loaded config, lazily built parts, and the stderr logger. */
export class CliContext {
  readonly logger: Logger
  private cleanups: Array<() => Promise<unknown>> = []
  private cache = new Map<string, Promise<any>>()

  private constructor(
    readonly configPath: string,
    readonly config: CqrsConfig,
  ) {
    this.logger = stderrLogger()
  }

  static async load(configFlag?: string): Promise<CliContext> {
    const { path, config } = await loadConfig(configFlag)
    return new CliContext(path, config)
  }

  async transport(): Promise<Transport> {
    const t = await this.once('transport', async () => (await resolveLazy(this.config.transport)) ?? (await this.master(false))?.transport ?? (await this.replicaOptions(false))?.transport)
    if (!t) throw new ConfigError(`${this.configPath} defines no transport: add \`transport: () => rabbitmq({ url: process.env.AMQP_URL })\``)
    return t
  }

  /** Resolve a config entry once per process. */
  private once<T>(key: string, make: () => Promise<T>): Promise<T> {
    if (!this.cache.has(key)) this.cache.set(key, make())
    return this.cache.get(key)!
  }

  async master(required = true): Promise<any> {
    const m = await this.once('master', () => resolveLazy(this.config.master))
    if (!m && required) throw new ConfigError(`${this.configPath} has no \`master\` section; this command runs on the master side (see README, "Configuration")`)
    if (m && !this.cache.has('master:close')) {
      this.cache.set('master:close', Promise.resolve())
      this.onClose(() => m.prisma.$disconnect?.())
    }
    return m
  }

  async replicaOptions(required = true): Promise<any> {
    const r = await this.once('replica', () => resolveLazy(this.config.replica))
    if (!r && required) throw new ConfigError(`${this.configPath} has no \`replica\` section; this command runs on the replica side (see README, "Configuration")`)
    if (r && !this.cache.has('replica:close')) {
      this.cache.set('replica:close', Promise.resolve())
      this.onClose(() => r.prisma.$disconnect?.())
    }
    return r
  }

  /** The master side of the operating tools, opened once; closed with the context. */
  masterTools(): Promise<MasterTools> {
    return this.once('master:tools', async () => {
      const tools = openMasterTools(await this.master(), this.configPath)
      this.onClose(() => tools.close())
      return tools
    })
  }

  /** The replica side of the operating tools, opened once; closed with the context. */
  replicaTools(): Promise<ReplicaTools> {
    return this.once('replica:tools', async () => {
      const tools = openReplicaTools(await this.replicaOptions(), this.configPath)
      this.onClose(() => tools.close())
      return tools
    })
  }

  onClose(fn: () => Promise<unknown>): void {
    this.cleanups.push(fn)
  }

  async close(): Promise<void> {
    for (const fn of this.cleanups.reverse()) await fn().catch(() => {})
    this.cleanups = []
  }
}
