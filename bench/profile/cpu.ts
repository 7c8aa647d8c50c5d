/** Profile only the measured part of a script: V8's CPU profiler through the inspector. */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'

export const PROFILE_DIR = process.env.CQRS_PROFILE_DIR ?? '/tmp/cqrs-bench-profiles'

/** Run fn under the CPU profiler; writes <PROFILE_DIR>/<name>.cpuprofile and returns its path with fn's result. */
export async function profiled<T>(name: string, fn: () => Promise<T>): Promise<{ result: T; file: string }> {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 200 })
  await session.post('Profiler.start')
  let result: T
  try {
    result = await fn()
  } finally {
    var { profile } = await session.post('Profiler.stop')
    session.disconnect()
  }
  mkdirSync(PROFILE_DIR, { recursive: true })
  const file = join(PROFILE_DIR, `${name}.cpuprofile`)
  writeFileSync(file, JSON.stringify(profile))
  return { result, file }
}

/**
 * Every process with the CPU it has used so far (utime + stime from /proc/<pid>/stat, in ms, and stime
 * alone: the kernel's share, socket writes and reads included; USER_HZ
 * is 100 on Linux), its name and its command line (arguments NUL-separated). Linux only: empty elsewhere.
 */
export function processCpu(): Array<{ pid: number; comm: string; cmdline: string; cpuMs: number; sysMs: number }> {
  const out: Array<{ pid: number; comm: string; cmdline: string; cpuMs: number; sysMs: number }> = []
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p))
  } catch {
    return out
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      // The name may hold spaces and parentheses: the fields start after its last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      out.push({ pid: Number(pid), comm, cmdline: readFileSync(`/proc/${pid}/cmdline`, 'utf8'), cpuMs: (Number(fields[11]) + Number(fields[12])) * 10, sysMs: Number(fields[12]) * 10 })
    } catch {
      // the process ended meanwhile
    }
  }
  return out
}
