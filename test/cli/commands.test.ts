import { Command } from 'commander'
import { describe, expect, it } from 'vitest'
import { COMMANDS, commandNamed } from '../../src/cli/commands.js'
import { buildProgram } from '../../src/cli/program.js'

describe('cqrs command table', () => {
  it('lists each command with the description its own file gives it', async () => {
    for (const entry of COMMANDS) {
      const program = new Command('cqrs')
      ;(await entry.load())(program)
      const real = program.commands.find((c) => c.name() === entry.name)
      expect(real, entry.name).toBeDefined()
      expect(entry.description, entry.name).toBe(real!.description())
    }
  })

  it('finds the command an argv names, past global options and `help`', () => {
    expect(commandNamed(['status', '--json'])?.name).toBe('status')
    expect(commandNamed(['-c', 'x.ts', 'relay', '--once'])?.name).toBe('relay')
    expect(commandNamed(['--config', 'status', 'consume'])?.name).toBe('consume')
    expect(commandNamed(['help', 'bulk-load'])?.name).toBe('bulk-load')
    expect(commandNamed(['--help'])).toBeUndefined()
    expect(commandNamed(['nope'])).toBeUndefined()
  })

  it('loads only the command being run; the others are listed for --help', async () => {
    const program = await buildProgram(['status', '--json'])
    const status = program.commands.find((c) => c.name() === 'status')!
    const relay = program.commands.find((c) => c.name() === 'relay')!
    expect(status.options.map((o) => o.long)).toContain('--json')
    expect(relay.options).toEqual([])
    expect(program.commands.map((c) => c.name())).toEqual(COMMANDS.map((c) => c.name))
  })
})
