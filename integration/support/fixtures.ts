import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './databases.js'

/** The django-cqrs captures in test/fixtures/django-cqrs (PROTOCOL.md). */
export const PROTOCOL_DIR = process.env.CQRS_PROTOCOL_DIR ?? join(ROOT, 'test', 'fixtures', 'django-cqrs')

export interface CapturedMessage {
  routing_key: string
  exchange: string
  properties: Record<string, unknown>
  body: string
}

export function fixture(name: string): CapturedMessage {
  return JSON.parse(readFileSync(join(PROTOCOL_DIR, name), 'utf8'))
}

export function fixtureText(name: string): string {
  return readFileSync(join(PROTOCOL_DIR, name), 'utf8')
}

export const messageFixtures = () => readdirSync(PROTOCOL_DIR).filter((f) => f.endsWith('.json'))
