import { ConfigError } from '../core/errors.js'
import { setting } from '../config/settings.js'
import type { Registry } from 'prom-client'
import { cqrsMetrics } from '../metrics/cqrs-metrics.js'
import { loadPromClient } from '../metrics/metrics-registry.js'
import { serveMetrics } from '../metrics/metrics-server.js'
import { answerMetricsRequests, SupervisorMetrics } from '../metrics/worker-metrics.js'
import type { CliContext } from './context.js'

/** The `--metrics-port` option of `cqrs consume` and `cqrs relay`; `more` adds to its help. */
export const metricsPortFlag = (more = ''): [string, string] => ['--metrics-port <port>', `serve Prometheus metrics on http://<host>:<port>/metrics (env CQRS_METRICS_PORT; 0 picks a free port)${more}`]

/** What runs in this process: one consumer or relay, a worker of a supervisor, or the supervisor. */
export type MetricsRole = 'process' | 'worker' | 'supervisor'

export interface CliMetrics {
  /** Set in the supervisor: give it every worker it starts. */
  supervisor?: SupervisorMetrics
}

const port = (raw: string): number => {
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`--metrics-port must be a port number from 0 to 65535; got '${raw}'`)
  return n
}

/**
 * Start metrics for a CLI command when `--metrics-port` (or CQRS_METRICS_PORT) is set: load
 * prom-client, count into its registry (with the process metrics: memory, CPU, event loop), and serve
 * `/metrics`, except in a worker, which answers its supervisor over IPC instead. Closed with the
 * command. Returns null when metrics were not asked for.
 */
export async function startCliMetrics(ctx: CliContext, flag: string | undefined, role: MetricsRole, command: string): Promise<CliMetrics | null> {
  const p = setting<number | undefined>({ name: 'metrics-port', env: 'CQRS_METRICS_PORT', default: undefined, parse: port }, flag, undefined)
  if (p === undefined) return null
  const client = await loadPromClient()
  // At run time this is prom-client's Registry (cqrs-metrics.ts types only the part users see).
  const registry = (await cqrsMetrics()) as Registry
  // The config file may have attached cqrs-sync to a registry that has them already.
  if (!registry.getSingleMetric('process_cpu_user_seconds_total')) client.collectDefaultMetrics({ register: registry })
  if (role === 'worker') {
    const stop = answerMetricsRequests(registry)
    ctx.onClose(async () => stop())
    return {}
  }
  const supervisor = role === 'supervisor' ? new SupervisorMetrics(registry) : undefined
  const server = await serveMetrics(p, supervisor ? () => supervisor.scrape() : async () => ({ contentType: registry.contentType, body: await registry.metrics() }))
  ctx.onClose(() => server.close())
  process.stderr.write(`${command}: metrics on http://0.0.0.0:${server.port}/metrics (pid ${process.pid})\n`)
  return { supervisor }
}
