import type { ChildProcess } from 'node:child_process'
import type { Registry } from 'prom-client'
import { loadPromClient } from './metrics-registry.js'
import { metricsHub } from './metrics-hub.js'
import type { Scrape } from './metrics-server.js'

/** IPC between `cqrs consume -w N` and its workers: the supervisor asks, each worker answers with its metrics. */
interface MetricsRequest {
  cqrs: 'metrics?'
  id: number
}
interface MetricsReply {
  cqrs: 'metrics'
  id: number
  metrics: unknown[]
}

/** A worker that does not answer within this time is left out of the scrape (it may be starting or dying). */
const WORKER_TIMEOUT_MS = 3000

const isRequest = (m: unknown): m is MetricsRequest => typeof m === 'object' && m !== null && (m as MetricsRequest).cqrs === 'metrics?'
const isReply = (m: unknown): m is MetricsReply => typeof m === 'object' && m !== null && (m as MetricsReply).cqrs === 'metrics'

/** In a worker: answer the supervisor's requests with this registry's metrics. Returns the removal of the listener. */
export function answerMetricsRequests(registry: Registry): () => void {
  const onMessage = (m: unknown) => {
    if (!isRequest(m)) return
    void registry.getMetricsAsJSON().then((metrics) => {
      const reply: MetricsReply = { cqrs: 'metrics', id: m.id, metrics }
      // The supervisor may be gone meanwhile; nobody is left to answer then.
      if (process.connected) process.send?.(reply, undefined, {}, () => {})
    })
  }
  process.on('message', onMessage)
  return () => void process.off('message', onMessage)
}

/**
 * In the supervisor: the workers it started, their restarts, and a scrape that sums the workers'
 * metrics with the supervisor's own (prom-client's `AggregatorRegistry.aggregate`: counters and
 * histograms summed, queue and outbox gauges by max).
 */
export class SupervisorMetrics {
  private readonly workers = new Map<number, ChildProcess>()
  private readonly seen = new Set<number>()
  private nextRequest = 0

  constructor(private readonly own: Registry) {}

  /** Call for every worker process started; a worker id started again counts as a restart. */
  worker(id: number, child: ChildProcess): void {
    if (this.seen.has(id)) metricsHub.inc('workerRestarts')
    this.seen.add(id)
    this.workers.set(id, child)
    child.once('exit', () => {
      if (this.workers.get(id) === child) this.workers.delete(id)
    })
  }

  async scrape(): Promise<Scrape> {
    const { AggregatorRegistry } = await loadPromClient()
    const replies = await Promise.all([...this.workers.values()].map((c) => this.ask(c)))
    const all = [await this.own.getMetricsAsJSON(), ...replies.filter((r) => r !== null)]
    const sum = AggregatorRegistry.aggregate(all as Parameters<typeof AggregatorRegistry.aggregate>[0])
    return { contentType: sum.contentType, body: await sum.metrics() }
  }

  private ask(child: ChildProcess): Promise<unknown[] | null> {
    if (!child.connected) return Promise.resolve(null)
    const id = ++this.nextRequest
    return new Promise((resolve) => {
      const done = (v: unknown[] | null) => {
        clearTimeout(timer)
        child.off('message', onMessage)
        child.off('exit', onExit)
        resolve(v)
      }
      const onMessage = (m: unknown) => isReply(m) && m.id === id && done(m.metrics)
      const onExit = () => done(null)
      const timer = setTimeout(() => done(null), WORKER_TIMEOUT_MS)
      child.on('message', onMessage)
      child.once('exit', onExit)
      const request: MetricsRequest = { cqrs: 'metrics?', id }
      child.send(request, (e) => e && done(null))
    })
  }
}
