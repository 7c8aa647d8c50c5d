/** Profile only the measured part of a script: V8's CPU profiler through the inspector. */
import { mkdirSync, writeFileSync } from 'node:fs'
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
