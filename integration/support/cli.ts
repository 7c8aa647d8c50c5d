/** Run the real, built `cqrs` bin (dist/cli/main.js, built by `npm test`'s pretest) as a subprocess, the way users do. */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { ROOT } from './databases.js'

export const BIN = join(ROOT, 'dist/cli/main.js')
export const TEST_CONFIG = join(ROOT, 'integration/support/test-config.ts')

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Run `cqrs <args>` to completion, with `input` on stdin. */
export function cqrs(args: string[], env: Record<string, string | undefined> = {}, input?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCqrs(args, env)
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d) => (stdout += d))
    child.stderr!.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
    if (input !== undefined) child.stdin!.end(input)
    else child.stdin!.end()
  })
}

/** Start `cqrs <args>` and leave it running (consume, relay). */
export function spawnCqrs(args: string[], env: Record<string, string | undefined> = {}, options: { prefix?: string[] } = {}): ChildProcess {
  // CQRS_CLI_NODE_ARGS: options for node itself, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the CLI and its workers (NODE_OPTIONS refuses --cpu-prof).
  const command = [...(options.prefix ?? []), process.execPath, ...(process.env.CQRS_CLI_NODE_ARGS?.split(' ').filter(Boolean) ?? []), BIN, ...args]
  // prefix: a command that runs node, e.g. `ip netns exec <ns>` (which execs it: the child's pid is node's).
  const child = spawn(command[0], command.slice(1), { cwd: ROOT, env: { ...process.env, CQRS_CONFIG: TEST_CONFIG, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  const log = { text: '' }
  logs.set(child, log)
  child.stderr!.on('data', (d) => (log.text += d))
  return child
}

const logs = new WeakMap<ChildProcess, { text: string }>()

/** Everything a spawned process wrote to stderr so far. */
export const stderrOf = (child: ChildProcess): string => logs.get(child)?.text ?? ''

/** Resolves with the stderr seen so far once a line matches `pattern`; rejects if the process exits first. */
export function waitForStderr(child: ChildProcess, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = logs.get(child)?.text ?? ''
    if (pattern.test(seen)) return resolve(seen)
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern} in stderr:\n${seen}`)), timeoutMs)
    const onData = (d: Buffer) => {
      seen += d
      if (pattern.test(seen)) {
        cleanup()
        resolve(seen)
      }
    }
    const onExit = (code: number | null) => {
      cleanup()
      reject(new Error(`process exited (${code}) before ${pattern}:\n${seen}`))
    }
    const cleanup = () => {
      clearTimeout(timer)
      child.stderr!.off('data', onData)
      child.off('exit', onExit)
    }
    child.stderr!.on('data', onData)
    child.on('exit', onExit)
  })
}

/** Send `signal` and wait for the exit. */
export function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  return new Promise((resolve) => {
    child.once('exit', (code, sig) => resolve({ code, signal: sig }))
    child.kill(signal)
  })
}
