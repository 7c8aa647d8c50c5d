/**
 * Vitest global setup: on a machine with Docker and none of the services running, start the missing
 * ones with testcontainers and point the suite at them through env (a URL already in env wins).
 * testcontainers is loaded only when something is to be started, so a machine with the services
 * (CI, this one) pays nothing for it. Also rebuilds dist/ when a source is newer than the build, so
 * the CLI tests never run a stale bin when vitest is run without `npm test` (whose pretest builds).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { connect } from 'node:net'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SERVICES, serviceUrl, servicesToStart, type Service } from './test-services.js'

/** Whether something accepts TCP connections at the URL's host and port. */
function answers(url: string): Promise<boolean> {
  const u = new URL(url)
  const port = Number(u.port || { 'postgresql:': 5432, 'mysql:': 3306, 'amqp:': 5672 }[u.protocol] || 0)
  return new Promise((resolve) => {
    const socket = connect({ host: u.hostname, port, timeout: 1000 })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.once('connect', () => done(true))
    socket.once('timeout', () => done(false))
    socket.once('error', () => done(false))
  })
}

const dockerAvailable = (): boolean =>
  !!process.env.DOCKER_HOST || ['/var/run/docker.sock', join(homedir(), '.docker/run/docker.sock')].some((p) => existsSync(p))

/** The container for each service, as docker-compose.yml runs it, and the URL it is reached at. */
async function startContainer(service: Service): Promise<{ url: string; stop(): Promise<unknown> }> {
  let tc: typeof import('testcontainers')
  try {
    tc = await import('testcontainers')
  } catch (e) {
    // testcontainers 12 (through undici) needs Node 22 or newer.
    throw new Error(`test setup: ${service} is not running and testcontainers could not be loaded on Node ${process.versions.node} (${(e as Error).message}); start the services yourself (docker compose up -d) or use Node 22+`)
  }
  const { GenericContainer, Wait } = tc
  if (service === 'postgresql') {
    const c = await new GenericContainer('postgres:16')
      .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust', POSTGRES_DB: 'test' })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/ready to accept connections/, 2))
      .start()
    return { url: `postgresql://postgres@${c.getHost()}:${c.getMappedPort(5432)}/test`, stop: () => c.stop() }
  }
  if (service === 'mysql') {
    const c = await new GenericContainer('mariadb:11')
      .withEnvironment({ MARIADB_ALLOW_EMPTY_ROOT_PASSWORD: '1', MARIADB_DATABASE: 'test' })
      .withExposedPorts(3306)
      .withWaitStrategy(Wait.forLogMessage(/ready for connections/, 2))
      .start()
    return { url: `mysql://root@${c.getHost()}:${c.getMappedPort(3306)}/test`, stop: () => c.stop() }
  }
  const c = await new GenericContainer('rabbitmq:3-management').withExposedPorts(5672).withWaitStrategy(Wait.forLogMessage(/Server startup complete/)).start()
  return { url: `amqp://guest:guest@${c.getHost()}:${c.getMappedPort(5672)}`, stop: () => c.stop() }
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** The newest modification time of the files under `dir` (0 when it does not exist). */
function newest(dir: string): number {
  if (!existsSync(dir)) return 0
  return Math.max(0, ...readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => statSync(join(e.parentPath, e.name)).mtimeMs))
}

function buildIfStale(): void {
  if (existsSync(join(ROOT, 'dist/cli/main.js')) && newest(join(ROOT, 'dist')) >= newest(join(ROOT, 'src'))) return
  process.stderr.write('test setup: src/ is newer than dist/; building (npm run build)\n')
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' })
}

export default async function setup(): Promise<() => Promise<void>> {
  buildIfStale()
  const all = Object.keys(SERVICES) as Service[]
  const probes = await Promise.all(all.map(async (s) => [s, !process.env[SERVICES[s].env] && (await answers(serviceUrl(s)))] as const))
  const reachable = new Set(probes.filter(([, ok]) => ok).map(([s]) => s))
  const plan = servicesToStart({ env: process.env, reachable, docker: dockerAvailable() })
  for (const line of plan.missing) process.stderr.write(`test setup: ${line}\n`)
  const started: Array<{ stop(): Promise<unknown> }> = []
  for (const s of plan.start) {
    process.stderr.write(`test setup: starting ${s} with testcontainers\n`)
    const c = await startContainer(s)
    started.push(c)
    // Workers are started after this setup, so they inherit the URL.
    process.env[SERVICES[s].env] = c.url
  }
  return async () => {
    await Promise.all(started.map((c) => c.stop()))
  }
}
