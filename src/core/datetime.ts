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
    const m = DATETIME.exec(text)
    if (!m) return null
    const [, date, time, frac = '', zone] = m
    const fraction = frac.replace(/0+$/, '')
    if (!zone || zone === 'Z' || zone === 'z' || /^[+-]00(:?00)?$/.test(zone)) {
      const t = Date.parse(`${date}T${time}Z`)
      return Number.isNaN(t) || new Date(t).toISOString().slice(0, 19) !== `${date}T${time}` ? null : new ExactDateTime(`${date}T${time}`, fraction)
    }
    const offset = zone.length === 3 ? `${zone}:00` : zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone
    const t = Date.parse(`${date}T${time}${offset}`)
    return Number.isNaN(t) ? null : new ExactDateTime(new Date(t).toISOString().slice(0, 19), fraction)
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

const DATETIME = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:[.,](\d+))?\s*([zZ]|[+-]\d{2}(?::?\d{2})?)?$/
