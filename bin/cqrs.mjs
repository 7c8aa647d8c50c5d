#!/usr/bin/env node
// The CLI is TypeScript run through tsx, so a user's cqrs.config.ts loads as it is.
import { register } from 'tsx/esm/api'

register()
await import('../src/cli/main.ts')
