/**
 * Why a long-running command should stop: a signal, the supervisor's IPC channel closing, or the
 * process that started us going away. Watching starts at once (so a supervisor that dies while a
 * worker is still connecting is not missed); `wait()` keeps the process alive until one of them.
 */
export interface StopSignal extends Disposable {
  /** Resolves with a reason such as `SIGTERM`, `supervisor gone` or `parent gone (pid 123)`. */
  wait(): Promise<string>
  /** The reason, once there is one. */
  readonly reason: string | null
  /** Remove every listener and timer, so the process can exit (also `using stop = stopSignal(...)`). */
  dispose(): void
}

export interface StopSignalOptions {
  /**
   * Stop when the parent process goes away (we are reparented). Off for a process whose parent is
   * already init (a daemon, a container's PID 1), which has nothing to outlive.
   */
  watchParent: boolean
  /** How often the parent pid is checked; the IPC `disconnect` is the fast path, this the backstop. */
  pollMs?: number
}

export function stopSignal(options: StopSignalOptions): StopSignal {
  let reason: string | null = null
  let resolve: ((r: string) => void) | null = null
  let keepAlive: NodeJS.Timeout | undefined
  const fire = (r: string) => {
    if (reason !== null) return
    reason = r
    resolve?.(r)
  }
  const onSignal = (s: NodeJS.Signals) => fire(s)
  const onDisconnect = () => fire('supervisor gone')
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  const hasChannel = typeof process.send === 'function'
  if (hasChannel) process.on('disconnect', onDisconnect)
  const parent = process.ppid
  // PID 1 (or no parent) means a daemon or a container's entry point: nothing to watch.
  const watch = options.watchParent && parent > 1
  const poll = watch
    ? setInterval(() => {
        if (process.ppid !== parent) fire(`parent gone (pid ${parent})`)
      }, options.pollMs ?? 500)
    : undefined
  poll?.unref()
  const signal: StopSignal = {
    get reason() {
      return reason
    },
    wait() {
      if (reason !== null) return Promise.resolve(reason)
      keepAlive = setInterval(() => {}, 1 << 30)
      return new Promise<string>((r) => (resolve = r)).finally(() => clearInterval(keepAlive))
    },
    dispose() {
      clearInterval(keepAlive)
      clearInterval(poll)
      process.off('SIGTERM', onSignal)
      process.off('SIGINT', onSignal)
      if (hasChannel) process.off('disconnect', onDisconnect)
    },
    [Symbol.dispose]() {
      signal.dispose()
    },
  }
  return signal
}
