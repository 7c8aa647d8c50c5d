import { metricsHub } from './metrics-hub.js'

/**
 * The part of a prom-client `Registry` that cqrs-sync uses and returns. Typed here, so that the
 * library's types do not need prom-client either; at run time it is prom-client's `Registry`.
 */
export interface MetricsRegistry {
  readonly contentType: string
  /** The metrics in Prometheus's text format. */
  metrics(): Promise<string>
  getMetricsAsJSON(): Promise<unknown[]>
}

let defaultRegistry: Promise<MetricsRegistry> | null = null

/**
 * The registry with cqrs-sync's metrics for this process, created on the first call, which loads
 * the optional peer prom-client. The relay and the consumers of this process count into it from
 * then on, so call it at startup. Pass your own prom-client `registry` on the first call to get the
 * metrics there (e.g. prom-client's global `register`).
 *
 * ```ts
 * const registry = await cqrsMetrics()
 * app.get('/metrics', async (_, res) => res.type(registry.contentType).send(await registry.metrics()))
 * ```
 */
export function cqrsMetrics(options: { registry?: MetricsRegistry } = {}): Promise<MetricsRegistry> {
  defaultRegistry ??= import('./metrics-registry.js').then(async ({ loadPromClient, registerMetrics }) => {
    const client = await loadPromClient()
    const registry = (options.registry as InstanceType<typeof client.Registry> | undefined) ?? new client.Registry()
    metricsHub.sink = registerMetrics(client, registry)
    return registry
  })
  defaultRegistry.catch(() => (defaultRegistry = null))
  return defaultRegistry
}

/** This process's cqrs-sync metrics in Prometheus's text format (what `/metrics` serves). */
export async function cqrsMetricsText(): Promise<string> {
  return (await cqrsMetrics()).metrics()
}
