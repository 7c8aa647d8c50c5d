#!/usr/bin/env node
// CI's check of the package as users get it (`npm run check:package`, run by .ci/run after the tests):
// build, `npm pack`, check the tarball's file list, publint and attw on it, install it into a fresh
// app in a temporary folder (with @prisma/client, @prisma/adapter-pg and pg from the npm cache),
// import every entry with plain node, type-check a user file that uses every public option under
// `strict` with `module: nodenext` and with `moduleResolution: bundler`, run `npx cqrs --help` and
// `npx cqrs status` with a JavaScript config (jiti hidden: no TypeScript loader for it), check `npm ls @prisma/client` shows one copy, and run
// `npx cqrs triggers --migration` and apply it, then one master-to-replica round trip through RabbitMQ
// on PostgreSQL from the installed package with the default (trigger) capture.
// Exits non-zero at the first failed step, naming it. Env: DATABASE_URL, AMQP_URL (local defaults);
// CQRS_CHECK_KEEP=1 keeps the temporary folder.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const fixtures = join(root, 'scripts/package-check')
const require = createRequire(join(root, 'package.json'))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const bin = (name) => join(root, 'node_modules/.bin', name)
const versionOf = (name) => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'
const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
const tag = randomBytes(4).toString('hex')
const work = mkdtempSync(join(tmpdir(), 'cqrs-package-'))
const app = join(work, 'app')
const cleanups = []

function run(cmd, args, opts = {}) {
  try {
    return execFileSync(cmd, args, { cwd: app, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts, env: { ...process.env, npm_config_update_notifier: 'false', ...opts.env } })
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${e.status}):\n${e.stdout ?? ''}${e.stderr ?? ''}`)
  }
}

async function step(name, fn) {
  process.stdout.write(`check-package: ${name} ... `)
  try {
    const note = await fn()
    process.stdout.write(`ok${note ? ` (${note})` : ''}\n`)
  } catch (e) {
    process.stdout.write('FAILED\n')
    throw new Error(`check-package: ${name}: ${e.message}`)
  }
}

/** Every file the `exports` map and `bin` name: they must be in the tarball. */
function exportedFiles() {
  const files = new Set([pkg.bin.cqrs])
  for (const target of Object.values(pkg.exports)) for (const f of typeof target === 'string' ? [target] : Object.values(target)) files.add(f)
  return [...files].map((f) => f.replace(/^\.\//, ''))
}

/** The entries plain node imports (the ones with an `import` condition). */
const jsEntries = () => Object.entries(pkg.exports).filter(([, t]) => typeof t === 'object' && t.import).map(([k]) => (k === '.' ? pkg.name : `${pkg.name}/${k.slice(2)}`))

let tarball
try {
  await step('build', () => void run('npm', ['run', '--silent', 'build'], { cwd: root }))

  await step('npm pack', () => {
    const [info] = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: root }))
    tarball = join(work, info.filename)
    const files = info.files.map((f) => f.path)
    const allowed = /^(dist\/.+|prisma\/cqrs\.(postgresql|mysql|sqlite)\.(prisma|sql)|package\.json|README\.md|CHANGELOG\.md|LICENSE)$/
    const stray = files.filter((f) => !allowed.test(f))
    if (stray.length) throw new Error(`the tarball holds files users do not need: ${stray.slice(0, 10).join(', ')}; fix "files" in package.json`)
    const missing = [...exportedFiles(), 'README.md', 'CHANGELOG.md', 'LICENSE'].filter((f) => !files.includes(f))
    if (missing.length) throw new Error(`the tarball lacks ${missing.join(', ')} (named by exports/bin or required); fix "files" or the build`)
    return `${files.length} files, ${(info.size / 1024).toFixed(0)} kB`
  })

  await step('publint', () => void run(bin('publint'), ['run', '--strict', tarball], { cwd: root }))

  await step('attw', () => {
    // .prisma and .sql files are not modules; their export is checked by the install below.
    const notModules = Object.keys(pkg.exports).filter((k) => /\.(prisma|sql)$/.test(k) || k === './package.json')
    run(bin('attw'), [tarball, '--profile', 'esm-only', '--format', 'ascii', '--exclude-entrypoints', ...notModules], { cwd: root })
  })

  await step('install the tarball into a fresh app', () => {
    mkdirSync(join(app, 'src'), { recursive: true })
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'cqrs-check-app', private: true, type: 'module' }, null, 2))
    // The optional peers of the entries imported below: a user of cqrs-sync/nats installs @nats-io/* with it (README, Install).
    const peers = ['@prisma/client', '@prisma/adapter-pg', 'pg', '@types/node', '@nats-io/jetstream', '@nats-io/transport-node'].map((p) => `${p}@${versionOf(p)}`)
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball, ...peers])
    const installed = join(app, 'node_modules', pkg.name, 'package.json')
    if (!existsSync(installed)) throw new Error('the package is not in the app after install')
    const forbidden = ['prisma', 'tsx', 'better-sqlite3', '@prisma/adapter-mariadb', '@prisma/adapter-better-sqlite3', 'typescript'].filter((d) => existsSync(join(app, 'node_modules', d, 'package.json')))
    if (forbidden.length) throw new Error(`installing the package brought in ${forbidden.join(', ')}: move them out of "dependencies"`)
  })

  await step('npm ls @prisma/client shows one copy', () => {
    const out = run('npm', ['ls', '@prisma/client', '--all', '--parseable'])
    const copies = [...new Set(out.split('\n').filter((l) => /node_modules[\\/]@prisma[\\/]client$/.test(l)))]
    if (copies.length !== 1) throw new Error(`expected one @prisma/client, found ${copies.length}:\n${out}`)
  })

  await step('plain node imports every entry', () => {
    const script = `
      for (const name of ${JSON.stringify(jsEntries())}) {
        const m = await import(name)
        if (!Object.keys(m).length) throw new Error(name + ' exports nothing')
      }
      const root = await import('${pkg.name}')
      for (const k of ['cqrsMaster', 'cqrsReplica', 'defineConfig', 'adapterFromUrl']) if (typeof root[k] !== 'function') throw new Error('${pkg.name} has no ' + k)
      if (typeof (await import('${pkg.name}/rabbitmq')).rabbitmq !== 'function') throw new Error('no rabbitmq()')
      if (typeof (await import('${pkg.name}/memory')).memory !== 'function') throw new Error('no memory()')
      if (typeof (await import('${pkg.name}/nats')).nats !== 'function') throw new Error('no nats()')
      for (const f of ${JSON.stringify(Object.keys(pkg.exports).filter((k) => /\.(prisma|sql)$/.test(k)))}) {
        const { fileURLToPath } = await import('node:url')
        const { readFileSync } = await import('node:fs')
        if (!readFileSync(fileURLToPath(import.meta.resolve('${pkg.name}/' + f.slice(2))), 'utf8').includes('cqrs_outbox')) throw new Error(f + ' is not the library model file')
      }`
    run(process.execPath, ['--input-type=module', '-e', script])
    return jsEntries().join(', ')
  })

  await step('generate the app\'s Prisma client (with the installed package\'s models)', () => {
    const own = readFileSync(join(app, 'node_modules', pkg.name, 'prisma/cqrs.postgresql.prisma'), 'utf8')
    mkdirSync(join(app, 'prisma'))
    writeFileSync(join(app, 'prisma/schema.prisma'), `${readFileSync(join(fixtures, 'schema.prisma'), 'utf8')}\n${own}`)
    // Offline, the Prisma CLI wants a schema engine it never runs for generate (see README, "Offline").
    run(bin('prisma'), ['generate', '--schema', 'prisma/schema.prisma'], { env: { PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? '/bin/true', PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' } })
  })

  await step('type-check a user file with every public option (strict; nodenext and bundler)', () => {
    for (const f of ['uses-every-option.ts', 'round-trip.ts']) copyFileSync(join(fixtures, f), join(app, 'src', f))
    const common = { strict: true, target: 'ES2022', outDir: 'out', rootDir: '.', sourceMap: false }
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...common, module: 'nodenext' }, include: ['src', 'generated'] }, null, 2))
    writeFileSync(join(app, 'tsconfig.bundler.json'), JSON.stringify({ compilerOptions: { ...common, module: 'esnext', moduleResolution: 'bundler', noEmit: true }, include: ['src', 'generated'] }, null, 2))
    run(bin('tsc'), ['-p', 'tsconfig.bundler.json'])
    run(bin('tsc'), ['-p', 'tsconfig.json']) // emits out/, which the round trip runs
  })

  await step('npx cqrs --help, cqrs schema', () => {
    const out = run('npx', ['--no-install', 'cqrs', '--help'])
    if (!/consume/.test(out) || !/bulk-dump/.test(out)) throw new Error(`unexpected help:\n${out}`)
    const sql = run('npx', ['--no-install', 'cqrs', 'schema', '--provider', 'mysql', '--sql'])
    if (!/CREATE TABLE cqrs_outbox/.test(sql)) throw new Error(`cqrs schema printed no SQL:\n${sql}`)
  })

  const db = `cqrs_pkg_${tag}`
  const dbUrl = (() => {
    const u = new URL(DATABASE_URL)
    u.pathname = `/${db}`
    return u.toString()
  })()
  await step('create a database with the package\'s SQL', async () => {
    const pg = require('pg')
    const admin = new pg.Client({ connectionString: DATABASE_URL })
    await admin.connect()
    await admin.query(`CREATE DATABASE ${db}`)
    await admin.end()
    cleanups.push(async () => {
      const c = new pg.Client({ connectionString: DATABASE_URL })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)
      await c.end()
    })
    const c = new pg.Client({ connectionString: dbUrl })
    await c.connect()
    await c.query(readFileSync(join(app, 'node_modules', pkg.name, 'prisma/cqrs.postgresql.sql'), 'utf8'))
    await c.query(readFileSync(join(fixtures, 'app.sql'), 'utf8'))
    await c.end()
  })

  cleanups.push(async () => {
    const amqp = require('amqplib')
    const conn = await amqp.connect(AMQP_URL)
    const ch = await conn.createChannel()
    for (const q of [`check_${tag}`, `dead_letter_check_${tag}`, ...[1000, 5000, 30000, 120000, 600000].map((d) => `check_${tag}.retry.${d}`)]) await ch.deleteQueue(q).catch(() => {})
    await conn.close()
  })
  await step('npx cqrs status with a JavaScript config', () => {
    writeFileSync(
      join(app, 'cqrs.config.mjs'),
      `import { defineConfig } from '${pkg.name}'\nimport { PrismaClient } from './out/generated/client.js'\nimport { PrismaPg } from '@prisma/adapter-pg'\n` +
        `export default defineConfig({ master: () => ({ prisma: new PrismaClient({ adapter: new PrismaPg({ connectionString: process.env.DATABASE_URL }) }), models: { account: { cqrsId: 'account_${tag}' } } }) })\n`,
    )
    // A JavaScript config must load without the TypeScript config loader: hide jiti while it runs.
    const jiti = join(app, 'node_modules/jiti')
    renameSync(jiti, `${jiti}.hidden`)
    try {
      const out = run('npx', ['--no-install', 'cqrs', 'status', '--json'], { env: { DATABASE_URL: dbUrl } })
      if (JSON.parse(out).master?.outboxBacklog !== 0) throw new Error(`unexpected status: ${out}`)
    } finally {
      renameSync(`${jiti}.hidden`, jiti)
    }
  })

  await step('npx cqrs triggers --migration, applied as prisma migrate applies it (the default capture)', async () => {
    const file = run('npx', ['--no-install', 'cqrs', 'triggers', '--migration', 'migrations'], { env: { DATABASE_URL: dbUrl } }).trim()
    if (!/^migrations\/\d{14}_cqrs_triggers\/migration\.sql$/.test(relative(app, resolve(app, file)))) throw new Error(`cqrs triggers --migration wrote ${file}`)
    const pg = require('pg')
    const c = new pg.Client({ connectionString: dbUrl })
    await c.connect()
    await c.query(readFileSync(resolve(app, file), 'utf8'))
    await c.end()
  })

  await step('master-to-replica round trip from the installed package (PostgreSQL, RabbitMQ)', () => run(process.execPath, ['out/src/round-trip.js'], { env: { DATABASE_URL: dbUrl, AMQP_URL, CHECK_TAG: tag } }).trim())
  console.log('check-package: all checks passed')
} catch (e) {
  console.error(e.message)
  process.exitCode = 1
} finally {
  for (const fn of cleanups.reverse()) await fn().catch((e) => console.error(`check-package: cleanup: ${e.message}`))
  if (process.env.CQRS_CHECK_KEEP) console.log(`check-package: kept ${work}`)
  else rmSync(work, { recursive: true, force: true })
}
