#!/usr/bin/env node
// `npm run build` starts from an empty dist/, so a file removed from src/ cannot linger in the package.
import { rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

rmSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'dist'), { recursive: true, force: true })
