import type { Command } from 'commander'
import { CqrsError } from '../core/errors.js'
import { redactUrl } from '../core/logger.js'
import { CliContext } from './context.js'

/** Exit codes scripts can trust. */
export const EXIT = { ok: 0, drift: 1, error: 2, usage: 64 } as const

/**
 * Load the config, run the command body, close what it opened, and set the exit code. Errors are
 * printed as one readable line (plus the cause), never as a stack, unless CQRS_DEBUG is set.
 */
export async function runCommand(cmd: Command, body: (ctx: CliContext) => Promise<number>): Promise<void> {
  const globals = cmd.optsWithGlobals() as { config?: string }
  let ctx: CliContext | undefined
  let code: number = EXIT.error
  try {
    ctx = await CliContext.load(globals.config)
    code = await body(ctx)
  } catch (e) {
    code = EXIT.error
    const err = e as Error & { code?: string }
    const name = cmd.parent && cmd.parent.parent ? `${cmd.parent.name()} ${cmd.name()}` : cmd.name()
    process.stderr.write(`cqrs ${name}: ${redactUrl(err.message)}\n`)
    if (!(e instanceof CqrsError) && err.cause) process.stderr.write(`  caused by: ${redactUrl(String((err.cause as Error).message ?? err.cause))}\n`)
    if (process.env.CQRS_DEBUG) process.stderr.write(`${err.stack}\n`)
  } finally {
    await ctx?.close()
  }
  process.exitCode = code
}

/** Resolves on the first SIGTERM or SIGINT. */
export function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => {}, 1 << 30)
    const done = (s: NodeJS.Signals) => {
      clearInterval(keepAlive)
      process.off('SIGTERM', done)
      process.off('SIGINT', done)
      resolve(s)
    }
    process.once('SIGTERM', done)
    process.once('SIGINT', done)
  })
}
