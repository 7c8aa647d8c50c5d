/**
 * Summarize a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by where the code
 * lives (a package under node_modules, a file of src/, node internals, GC, idle).
 * With a third argument (a regex), also the inclusive time (self + callees) of the functions whose
 * name or place matches it.
 * Usage: tsx bench/profile/summarize.ts <file.cpuprofile> [topN] [inclusive-regex]
 */
import { readFileSync } from 'node:fs'

interface Node {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: Node[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

const [file, topArg, incl] = process.argv.slice(2)
const top = Number(topArg ?? 25)
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(p.nodes.map((n) => [n.id, n]))
const self = new Map<number, number>()
p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)))
const total = [...self.values()].reduce((a, b) => a + b, 0)

function where(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)'
  const nm = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/)
  if (nm) return nm[1]
  const src = url.match(/\/(src|dist|bench|integration|prisma)\/(.*)$/)
  if (src) return `${src[1]}/${src[2]}`
  if (url.startsWith('node:')) return 'node internals'
  return url
}

const fn = new Map<string, number>()
const loc = new Map<string, number>()
for (const [id, us] of self) {
  const n = byId.get(id)!
  const { functionName, url, lineNumber } = n.callFrame
  const w = where(url, functionName)
  const key = `${functionName || '(anonymous)'}  ${w}${url ? `:${lineNumber + 1}` : ''}`
  fn.set(key, (fn.get(key) ?? 0) + us)
  loc.set(w, (loc.get(w) ?? 0) + us)
}
const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`
const show = (title: string, m: Map<string, number>, n = top) => {
  console.log(`\n${title}`)
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${pct(us)} ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`)
}
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`)
show('self time by place', loc)
show('self time by function', fn)

if (incl) {
  const re = new RegExp(incl)
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const keyOf = (n: Node) => `${n.callFrame.functionName || '(anonymous)'}  ${where(n.callFrame.url, n.callFrame.functionName)}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`
  const inc = new Map<string, number>()
  p.samples.forEach((id, i) => {
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = keyOf(byId.get(cur)!)
      if (re.test(k)) seen.add(k)
    }
    for (const k of seen) inc.set(k, (inc.get(k) ?? 0) + (p.timeDeltas[i] ?? 0))
  })
  show(`inclusive time of /${incl}/ (synchronous callees only: async continuations start new stacks)`, inc, 30)
}
