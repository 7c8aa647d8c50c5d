import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { METRICS } from '../../src/metrics/metric-catalogue.js'

describe('deploy/grafana/cqrs-sync.json', () => {
  const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/cqrs-sync.json', import.meta.url), 'utf8'))
  const exprs: string[] = dashboard.panels.flatMap((p: any) => (p.targets ?? []).map((t: any) => t.expr))

  it('queries only metrics the library exports, so a renamed metric cannot leave a blank panel', () => {
    const known = new Set<string>(Object.values(METRICS).map((m) => m.name))
    const used = new Set<string>(exprs.flatMap((e) => e.match(/\bcqrs_[a-z_]+/g) ?? []).filter((n) => n !== 'cqrs_id').map((n) => n.replace(/_(bucket|count|sum)$/, '')))
    expect([...used].filter((n) => !known.has(n))).toEqual([])
    // Every metric has a panel.
    expect([...known].filter((n) => !used.has(n))).toEqual([])
  })

  it('has unique panel ids and a Prometheus datasource variable', () => {
    const ids = dashboard.panels.map((p: any) => p.id)
    expect(new Set(ids).size).toBe(ids.length)
    expect(dashboard.templating.list.find((v: any) => v.name === 'datasource')?.query).toBe('prometheus')
  })
})
