import type { Registry } from './prom.js';

/**
 * Counters and histograms for the request path. prom-client hashes the label set on every inc() and
 * observe(), even through a bound child; here a child is a plain object found once per label set,
 * so counting a request is a field add. The metric renders itself only when scraped, in the shape
 * prom-client's `get()` returns, so a Registry exposes it (and `AggregatorRegistry` merges it) like
 * any built-in metric.
 */
type Labels = Record<string, string>;
interface SeriesValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}
interface MetricJson {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: SeriesValue[];
  aggregator: 'sum';
}

export class CounterChild {
  value = 0;
  constructor(readonly labels: Labels) {}
  inc(n = 1): void {
    this.value += n;
  }
}

export class HistogramChild {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) {
        this.counts[i]! += 1;
        break;
      }
    }
    this.sum += v;
    this.count += 1;
  }
}

abstract class LabelledMetric<C extends { labels: Labels }> {
  readonly aggregator = 'sum' as const;
  protected readonly children = new Map<string, C>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    // registerMetric takes anything with name/get/reset; the type only knows prom-client's classes.
    registry.registerMetric(this as never);
  }
  /** The series for these label values (in labelNames order), created on first use. */
  labels(...values: string[]): C {
    const key = values.join('\u0000');
    let c = this.children.get(key);
    if (c === undefined) {
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => {
        labels[n] = values[i] ?? '';
      });
      c = this.create(labels);
      this.children.set(key, c);
    }
    return c;
  }
  reset(): void {
    this.children.clear();
  }
  protected abstract create(labels: Labels): C;
}

export class FastCounter extends LabelledMetric<CounterChild> {
  readonly type = 'counter' as const;
  protected create(labels: Labels): CounterChild {
    return new CounterChild(labels);
  }
  async get(): Promise<MetricJson> {
    const values = [...this.children.values()].map((c) => ({ labels: { ...c.labels }, value: c.value }));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

export class FastHistogram extends LabelledMetric<HistogramChild> {
  readonly type = 'histogram' as const;
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    super(name, help, labelNames, registry);
  }
  protected create(labels: Labels): HistogramChild {
    return new HistogramChild(labels, this.bounds);
  }
  async get(): Promise<MetricJson> {
    const values: SeriesValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const c of this.children.values()) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += c.counts[i]!;
        values.push({ labels: { ...c.labels, le }, value: acc, metricName: bucket });
      });
      values.push({ labels: { ...c.labels, le: '+Inf' }, value: c.count, metricName: bucket });
      values.push({ labels: { ...c.labels }, value: c.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...c.labels }, value: c.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
