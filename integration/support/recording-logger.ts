/** A logger that keeps every line and lets a test await one, instead of sleeping. */
import type { Logger } from '../../src/core/logger.js'

export function recordingLogger() {
  const lines: string[] = []
  let waiters: Array<() => void> = []
  const add = (level: string) => (msg: string) => {
    lines.push(`${level} ${msg}`)
    const w = waiters
    waiters = []
    for (const f of w) f()
  }
  const logger: Logger = { debug: add('debug'), info: add('info'), warn: add('warn'), error: add('error') }
  /** Resolves, with the ms it waited, once `n` lines match `re`. */
  const until = (re: RegExp, n = 1, timeoutMs = 30_000) =>
    new Promise<number>((resolve, reject) => {
      const started = Date.now()
      const timer = setTimeout(() => reject(new Error(`no ${n} log line(s) matching ${re} after ${timeoutMs} ms; log:\n${lines.join('\n')}`)), timeoutMs)
      const check = () => {
        if (lines.filter((l) => re.test(l)).length >= n) {
          clearTimeout(timer)
          resolve(Date.now() - started)
        } else waiters.push(check)
      }
      check()
    })
  return { logger, lines, until }
}
