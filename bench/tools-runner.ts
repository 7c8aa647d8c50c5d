/**
 * The CLI tools (bulk-dump, bulk-load, diff) at 1M rows: `bench/tools.ts` (written separately)
 * exports `benchTools({ rows, dialect })`, one measurement per call; this calls it once per run and
 * turns the results into table rows. Skipped with a note when the file is not there.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { BenchContext, Measurement } from './support.js'

interface ToolResult {
  name: string
  rowsPerSec: number
  baselineRowsPerSec: number
  ratio: number
  peakRssMb: number
}

export async function benchToolsRunner(ctx: BenchContext): Promise<Measurement[]> {
  const file = fileURLToPath(new URL('./tools.ts', import.meta.url))
  if (!existsSync(file)) {
    ctx.log('  tools: bench/tools.ts is not there; skipped')
    return [{ benchmark: 'tools', dialect: 'postgresql', metric: 'skipped', unit: '', cqrs: [], baseline: [], note: 'bench/tools.ts (bulk-dump, bulk-load, diff) is not there yet; nothing measured' }]
  }
  const mod = (await import('./tools.js' as string)) as { benchTools: (o: { rows: number; dialect: 'postgresql' }) => Promise<ToolResult[]> }
  const rows = ctx.quick ? 5_000 : 1_000_000
  const byName = new Map<string, ToolResult[]>()
  for (let run = 0; run < ctx.runs; run++) {
    const results = await mod.benchTools({ rows, dialect: 'postgresql' })
    for (const r of results) {
      byName.set(r.name, [...(byName.get(r.name) ?? []), r])
      ctx.log(`  tools run ${run + 1}/${ctx.runs} ${r.name}: ${r.rowsPerSec.toFixed(0)} rows/s (baseline ${r.baselineRowsPerSec.toFixed(0)}), peak RSS ${r.peakRssMb.toFixed(0)} MB`)
    }
  }
  const out: Measurement[] = []
  for (const [name, rs] of byName) {
    const needsGoal = /dump|load/i.test(name)
    out.push({
      benchmark: 'tools',
      dialect: 'postgresql',
      metric: `${name} at ${rows.toLocaleString('en')} rows`,
      unit: 'rows/s',
      cqrs: rs.map((r) => r.rowsPerSec),
      baseline: rs.map((r) => r.baselineRowsPerSec),
      baselineLabel: 'plain driver',
      goal: needsGoal ? { kind: '>=', value: 100_000, text: '>= 100k rows/s' } : undefined,
      details: rs,
    })
    out.push({ benchmark: 'tools', dialect: 'postgresql', metric: `${name} peak RSS`, unit: 'MB', cqrs: rs.map((r) => r.peakRssMb), baseline: [] })
  }
  return out
}
