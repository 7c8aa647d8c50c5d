/** The one table on stdout and bench/results.json. */
import { writeFileSync } from 'node:fs'
import { spread, type Spread } from './stats.js'
import type { Goal, Measurement } from './support.js'

export interface Row {
  benchmark: string
  dialect: string
  metric: string
  unit: string
  cqrs: Spread
  baseline: Spread | null
  baselineLabel: string | null
  ratio: Spread | null
  goal: string | null
  met: boolean | null
  note: string | null
}

/** Paired ratios cqrs[i] / baseline[i], then min/median/max of each side and of the ratios. */
export function summarize(m: Measurement): Row {
  const hasBaseline = m.baseline.length > 0
  const ratios = hasBaseline && m.cqrs.length ? m.cqrs.map((c, i) => c / m.baseline[i]).filter((r) => Number.isFinite(r)) : []
  const cqrs = spread(m.cqrs)
  const ratio = ratios.length ? spread(ratios) : null
  return {
    benchmark: m.benchmark,
    dialect: m.dialect,
    metric: m.metric,
    unit: m.unit,
    cqrs,
    baseline: hasBaseline ? spread(m.baseline) : null,
    baselineLabel: m.baselineLabel ?? null,
    ratio,
    goal: m.goal?.text ?? null,
    met: m.goal ? isMet(m.goal, cqrs.median, ratio?.median ?? Number.NaN) : null,
    note: m.note ?? null,
  }
}

function isMet(g: Goal, value: number, ratio: number): boolean | null {
  const v = g.kind.startsWith('ratio') ? ratio : value
  if (!Number.isFinite(v)) return null
  return g.kind.endsWith('>=') ? v >= g.value : v <= g.value
}

/** 1234567 -> "1.23M", 12345 -> "12.3k", 3.14159 -> "3.14". */
export function fmt(v: number | undefined | null): string {
  if (v === undefined || v === null || !Number.isFinite(v)) return '-'
  const a = Math.abs(v)
  if (a >= 1e6) return `${(v / 1e6).toFixed(2)}M`
  if (a >= 1e4) return `${(v / 1e3).toFixed(1)}k`
  if (a >= 1000) return `${(v / 1e3).toFixed(2)}k`
  if (a >= 100) return v.toFixed(0)
  if (a >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

const withUnit = (v: number, unit: string) => (Number.isFinite(v) ? `${fmt(v)} ${unit}`.trim() : '-')
const ratioText = (r: Spread | null) => (r ? `${r.min.toFixed(2)} / ${r.median.toFixed(2)} / ${r.max.toFixed(2)}` : '-')

/** The table: median figures, the ratio's min/median/max, the goal and whether the median meets it. */
export function table(rows: Row[]): string {
  const head = ['benchmark', 'dialect', 'metric', 'cqrs-sync', 'baseline', 'ratio min/med/max', 'goal', 'met?']
  const body = rows.map((r) => [
    r.benchmark,
    r.dialect,
    r.metric,
    withUnit(r.cqrs.median, r.unit),
    r.baseline ? withUnit(r.baseline.median, r.unit) : '-',
    ratioText(r.ratio),
    r.goal ?? '-',
    r.met === null ? '-' : r.met ? 'yes' : 'NO',
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)))
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n')
}

export function writeResults(path: string, data: unknown): void {
  writeFileSync(path, `${JSON.stringify(data, (_k, v) => (typeof v === 'bigint' ? v.toString() : typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`)
}
