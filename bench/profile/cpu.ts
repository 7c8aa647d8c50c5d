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
export function processCpu(): ProcessCpu[] {
  const out: ProcessCpu[] = []
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p))
  } catch {
    return out
  }
  for (const pid of pids) {
    try {
      out.push({ ...statOf(Number(pid)), cmdline: readFileSync(`/proc/${pid}/cmdline`, 'utf8') })
    } catch {
      // the process ended meanwhile
    }
  }
  return out
}

export interface ProcessCpu {
  pid: number
  comm: string
  cmdline: string
  cpuMs: number
  sysMs: number
}

/** One process's name and CPU so far (ms), from /proc/<pid>/stat. */
export function statOf(pid: number): Omit<ProcessCpu, 'cmdline'> {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The name may hold spaces and parentheses: the fields start after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
  return { pid, comm, cpuMs: (Number(fields[11]) + Number(fields[12])) * 10, sysMs: Number(fields[12]) * 10 }
}

/**
 * CPU ms so far summed by kind of process (`kindOf` names it, or null to leave the process out), and
 * of it the kernel's, as `<kind> sys`.
 */
export function cpuByKind(kindOf: (p: ProcessCpu) => string | null): Record<string, number> {
  const out: Record<string, number> = {}
  for (const p of processCpu()) {
    const kind = kindOf(p)
    if (!kind) continue
    out[kind] = (out[kind] ?? 0) + p.cpuMs
    out[`${kind} sys`] = (out[`${kind} sys`] ?? 0) + p.sysMs
  }
  return out
}

/** The service a process is, by its name: 'rabbitmq', 'postgres', 'mariadb', 'nats-server', or null. */
export function serviceOf({ comm, cmdline }: Pick<ProcessCpu, 'comm' | 'cmdline'>): string | null {
  if (comm === 'beam.smp') return 'rabbitmq'
  if (comm === 'postgres' || cmdline.startsWith('postgres')) return 'postgres'
  if (comm.startsWith('mariadb') || comm.startsWith('mysqld')) return 'mariadb'
  if (comm.startsWith('nats-server')) return 'nats-server'
  return null
}

/** `kind µs, ...`: the CPU each kind spent between two {@link cpuByKind} readings, per one of `n` events. */
export function cpuPerEvent(before: Record<string, number>, after: Record<string, number>, n: number): string {
  return Object.keys(after)
    .map((k) => `${k} ${(((after[k] - (before[k] ?? 0)) * 1000) / n).toFixed(1)}`)
    .join(', ')
}
