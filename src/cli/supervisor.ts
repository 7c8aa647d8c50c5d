import { fork, type ChildProcess } from 'node:child_process'
import type { SupervisorMetrics } from '../metrics/worker-metrics.js'
import type { StopSignal } from './stop-signal.js'

/** What a worker tells its supervisor over IPC: it was asked to stop, so the whole tree stops. */
export interface WorkerStopMessage {
  cqrs: 'stop'
  reason: string
}

/** Tell the supervisor (when there is one) that this worker is stopping on purpose. */
export function tellSupervisorStopping(reason: string): void {
  if (!process.send || !process.connected) return
  const message: WorkerStopMessage = { cqrs: 'stop', reason }
  try {
    process.send(message)
  } catch {
    // The channel closed meanwhile: the supervisor is gone, and there is nobody to tell.
  }
}

const isStopMessage = (m: unknown): m is WorkerStopMessage => typeof m === 'object' && m !== null && (m as WorkerStopMessage).cqrs === 'stop'

/**
 * Run `n` worker processes of this same command (`CQRS_WORKER_ID` = 1..n) and keep them running: a
 * worker that dies is restarted after a second (its unacked messages went back to the queue). The
 * tree stops as one: on `stop` (a signal, or the supervisor's own parent going away), or when a
 * worker was asked to stop (a signal sent to it alone). Workers watch their IPC channel, so they
 * stop too when the supervisor is killed. Resolves with the highest worker exit code.
 */
export async function supervise(n: number, stop: StopSignal, metrics?: SupervisorMetrics): Promise<number> {
  const children = new Map<number, ChildProcess>()
  let stopping = false
  let stopAll: (reason: string) => void = () => {}
  const stopped = new Promise<string>((resolve) => (stopAll = resolve))
  const start = (id: number, delayMs = 0) => {
    const t = setTimeout(() => {
      if (stopping) return
      const child = fork(process.argv[1], process.argv.slice(2), { env: { ...process.env, CQRS_WORKER_ID: String(id) }, stdio: 'inherit', execArgv: process.execArgv })
      children.set(id, child)
      metrics?.worker(id, child)
      child.on('message', (m) => {
        if (isStopMessage(m)) stopAll(`worker ${id} got ${m.reason}`)
      })
      child.on('exit', (code, signal) => {
        children.delete(id)
        if (stopping) return
        // Exit code 0 is a drained stop, which a worker only does when asked: stop the rest too.
        if (code === 0) return stopAll(`worker ${id} stopped`)
        process.stderr.write(`cqrs consume: worker ${id} exited (${signal ?? code}); restarting\n`)
        start(id, 1000)
      })
    }, delayMs)
    t.unref()
  }
  for (let i = 1; i <= n; i++) start(i)
  process.stderr.write(`cqrs consume: supervising ${n} workers (pid ${process.pid})\n`)
  const reason = await Promise.race([stop.wait(), stopped])
  stopping = true
  process.stderr.write(`cqrs consume: ${reason}; stopping ${children.size} worker(s)\n`)
  const exits = [...children.values()].map((c) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve(c.exitCode ?? 0) : new Promise<number>((resolve) => c.once('exit', (code) => resolve(code ?? 0)))))
  for (const c of children.values()) c.kill('SIGTERM')
  const codes = await Promise.all(exits)
  process.stderr.write(`cqrs consume: all workers stopped\n`)
  return Math.max(0, ...codes)
}
