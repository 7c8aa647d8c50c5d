#!/usr/bin/env node
// The `cqrs` bin (package.json "bin"): compiled to dist/cli/main.js, run by plain node.
import { buildProgram } from './program.js'

await (await buildProgram()).parseAsync(process.argv)
