/**
 * A point in time as text, with every fractional digit its source wrote (JavaScript's Date keeps
 * milliseconds; PostgreSQL, MariaDB and Django keep microseconds). The one place that reads and
 * writes datetimes of the wire, of row images and of database text.
 */
export class ExactDateTime {
  private constructor(
    /** UTC, `YYYY-MM-DDTHH:MM:SS`. */
    readonly seconds: string,
    /** The fraction's digits without trailing zeros; `''` when whole. */
    readonly fraction: string,
  ) {}

  /**
   * Reads `2026-11-23 03:36:52.912512+00:00` (django-cqrs), ISO 8601 with `T` and `Z` or any offset
   * (`+05:30`, `+0530`, `+05`), PostgreSQL's `row_to_json` text, and a naive datetime (taken as UTC).
   * Any number of fractional digits is kept. Returns null for anything else.
   */
  static parse(text: string): ExactDateTime | null {
    const fast = ExactDateTime.parseUtc(text)
    if (fast !== undefined) return fast
    const m = DATETIME.exec(text)
    if (!m) return null
    const [, date, time, frac = '', zone] = m
    const fraction = frac.replace(/0+$/, '')
    // The regex anchors the date at 0 and the time at 11, where isCalendarTime reads them.
    if (!zone || zone === 'Z' || zone === 'z' || UTC_OFFSET.test(zone)) return isCalendarTime(text) ? new ExactDateTime(`${date}T${time}`, fraction) : null
    const offset = zone.length === 3 ? `${zone}:00` : zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone
    const t = Date.parse(`${date}T${time}${offset}`)
    return Number.isNaN(t) ? null : new ExactDateTime(new Date(t).toISOString().slice(0, 19), fraction)
  }

  /**
   * {@link ExactDateTime.parse}'s fast path for the forms every master writes, `YYYY-MM-DD HH:MM:SS[.f]`
   * with `+00:00`, `Z` or no zone (a `T` or a space between): the fields read by character codes, no
   * regex and no substrings but the two kept. Undefined for any other text (the regex reads it), null
   * for one of these forms that names no real second.
   */
  private static parseUtc(text: string): ExactDateTime | null | undefined {
    const n = text.length
    if (n < 19) return undefined
    for (const i of DIGITS) {
      const d = digit(text, i)
      if (d < 0 || d > 9) return undefined
    }
    const sep = text.charCodeAt(10)
    if (text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45 || (sep !== 32 && sep !== 84) || text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58) return undefined
    let i = 19
    let lastNonZero = 19
    if (i < n && text.charCodeAt(i) === 46 /* . */) {
      for (i++; i < n; i++) {
        const d = digit(text, i)
        if (d < 0 || d > 9) break
        if (d !== 0) lastNonZero = i
      }
      if (i === 20) return undefined
    }
    const zone = n - i
    if (!(zone === 0 || (zone === 1 && text.charCodeAt(i) === 90) || (zone === 6 && text.endsWith('+00:00')))) return undefined
    if (!isCalendarTime(text)) return null
    const seconds = sep === 84 ? text.slice(0, 19) : `${text.slice(0, 10)}T${text.slice(11, 19)}`
    return new ExactDateTime(seconds, lastNonZero > 19 ? text.slice(20, lastNonZero + 1) : '')
  }

  /** Whether `text` is a date alone, `YYYY-MM-DD`, that names a real day. */
  static isDate(text: string): boolean {
    return text.length === 10 && DATE_ONLY.test(text) && isCalendarDate(text)
  }

  /** A JavaScript Date (milliseconds). */
  static fromDate(d: Date): ExactDateTime {
    const iso = d.toISOString()
    return new ExactDateTime(iso.slice(0, 19), iso.slice(20, 23).replace(/0+$/, ''))
  }

  /** django-cqrs's form: `2026-11-23 03:36:52.912512+00:00`, six digits, fraction left out when zero. */
  toWire(): string {
    return `${this.seconds.slice(0, 10)} ${this.seconds.slice(11)}${this.fraction ? `.${this.fraction.padEnd(6, '0')}` : ''}+00:00`
  }

  /** `2026-11-23 03:36:52.912512` (UTC, no zone): what MariaDB's DATETIME and PostgreSQL's timestamp take. */
  toSql(): string {
    return `${this.seconds.slice(0, 10)} ${this.seconds.slice(11)}${this.fraction ? `.${this.fraction}` : ''}`
  }

  /** ISO 8601 in UTC with every digit: `2026-11-23T03:36:52.912512Z`. */
  toISOString(): string {
    return `${this.seconds}${this.fraction ? `.${this.fraction}` : ''}Z`
  }

  /** The instant to the millisecond (digits past the third are dropped). */
  toDate(): Date {
    return new Date(`${this.seconds}.${this.fraction.slice(0, 3).padEnd(3, '0')}Z`)
  }

  /** `YYYY-MM-DD` of the UTC date. */
  toDateOnly(): string {
    return this.seconds.slice(0, 10)
  }
}

const UTC_OFFSET = /^[+-]00(:?00)?$/
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

const digit = (text: string, i: number) => text.charCodeAt(i) - 48
const num2 = (text: string, i: number) => digit(text, i) * 10 + digit(text, i + 1)

/**
 * Whether the `YYYY-MM-DD` at the start of `text` and the `HH:MM:SS` after its separator (at 11) name a
 * real UTC second (no February 30, no 24:00), as a round trip through Date would tell, without the
 * Date: this runs for every datetime of every message. Both ways of reading a datetime check with it.
 */
function isCalendarTime(text: string): boolean {
  return isCalendarDate(text) && num2(text, 11) <= 23 && num2(text, 14) <= 59 && num2(text, 17) <= 59
}

/** Whether the `YYYY-MM-DD` (digits already checked) at the start of `text` names a real date. */
function isCalendarDate(text: string): boolean {
  const y = digit(text, 0) * 1000 + digit(text, 1) * 100 + num2(text, 2)
  const mo = num2(text, 5)
  const d = num2(text, 8)
  if (mo < 1 || mo > 12 || d < 1) return false
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0)
  return d <= (mo === 2 && leap ? 29 : DAYS[mo - 1])
}

const DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/

const DATETIME = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:[.,](\d+))?\s*([zZ]|[+-]\d{2}(?::?\d{2})?)?$/
