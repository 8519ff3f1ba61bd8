/**
 * The Prometheus text exposition format (version 0.0.4), written by hand: rea exposes a few counters
 * and gauges computed at scrape time, which needs no client library.
 *
 *   renderExposition([{ name: 'rea_campaigns', help: 'Campaigns by status.', type: 'gauge',
 *     samples: [{ labels: { status: 'running' }, value: 2 }] }])
 *   // '# HELP rea_campaigns Campaigns by status.\n# TYPE rea_campaigns gauge\nrea_campaigns{status="running"} 2\n'
 */

export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  samples: Sample[];
}

/** A label value with backslash, double quote and line feed escaped, as the format requires. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The families as exposition text; a family with no samples still says what it is. */
export function renderExposition(families: MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    if (!NAME.test(family.name)) throw new Error(`invalid metric name "${family.name}" (a bug)`);
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    for (const { labels, value } of family.samples) {
      const pairs = Object.entries(labels).map(([k, v]) => {
        if (!LABEL.test(k)) throw new Error(`invalid label name "${k}" on ${family.name} (a bug)`);
        return `${k}="${escapeLabelValue(v)}"`;
      });
      lines.push(`${family.name}${pairs.length ? `{${pairs.join(',')}}` : ''} ${formatValue(value)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
