/**
 * Property-based bad input for the chaos suite: a small seeded generator that mutates a valid
 * campaign input or model spec into one that must be refused, and says which field the refusal
 * must name. Mutations: wrong types, out-of-range numbers, unknown fields, missing fields, strings
 * and arrays past their limits, deep nesting, NaN and ±Infinity (as JSON text: `1e999`), unicode
 * look-alikes and control characters, and inputs past the 64 KiB size limit.
 *
 *   const rng = seededRandom(7);
 *   const bad = badCampaignInput(rng, { model: 'fast-ctr', budget: { experiments: 6 } });
 *   // → { kind: 'out-of-range', text: '{"model":"fast-ctr","budget":{"experiments":1}}', field: 'budget.experiments' }
 */
import { MAX_CAMPAIGN_INPUT_BYTES } from '../../src/core/campaign-input';

export interface BadInput {
  /** Which mutation made it. */
  kind: string;
  /** The JSON text, as written to the file that the CLI reads. */
  text: string;
  /** What the refusal must name: a field path, or for oversized input its size limit. */
  field: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Rng = () => number;

const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T;
const int = (rng: Rng, lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** The campaign input's fields: their path, and values on either side of their range. */
const CAMPAIGN_NUMBERS: { path: string[]; bad: number[] }[] = [
  { path: ['parallelism'], bad: [0, -1, 65, 2.5, 1e6] },
  { path: ['seed'], bad: [-1, 2 ** 31, 0.5] },
  { path: ['replicates'], bad: [1, 11, 0, 2.2] },
  { path: ['slateSize'], bad: [0, 1001, 1.5] },
  { path: ['eta'], bad: [1, 9, 2.5] },
  { path: ['refinements'], bad: [-1, 1001, 0.1] },
  { path: ['pollIntervalSec'], bad: [0, 86_401, 1.5, -5] },
  { path: ['experimentsPerRun'], bad: [9, 10_001, 12.5] },
  { path: ['budget', 'experiments'], bad: [1, 0, -3, 100_001, 3.5] },
  { path: ['budget', 'gpuHours'], bad: [0, -1, 1_000_001] },
  { path: ['split', 'validation'], bad: [-0.1, 1.5] },
  { path: ['approval', 'timeoutHours'], bad: [0, -1, 24 * 365 + 1] },
  { path: ['llm', 'maxCalls'], bad: [-1, 10_001, 0.5] },
  { path: ['llm', 'maxTokens'], bad: [-1, 100_000_001] },
  { path: ['llm', 'maxCostUsd'], bad: [-0.01, 1_000_001] },
  // Within the schema, outside the fast-ctr spec's fidelity range (40..160): refused against the spec.
  { path: ['fidelity', 'low'], bad: [1, 39, 161, 0, -4, 1.5] },
  { path: ['fidelity', 'high'], bad: [1000, 39, 0] },
];
const CAMPAIGN_OBJECTS = ['budget', 'split', 'fidelity', 'approval', 'llm'];
/** Every field, with a value of its type (the valid input leaves many out). */
const CAMPAIGN_FIELDS: { path: string[]; sample: Json }[] = [
  ...CAMPAIGN_NUMBERS.map((f) => ({ path: f.path, sample: 1 })),
  { path: ['model'], sample: 'fast-ctr' },
  { path: ['approval', 'required'], sample: false },
  { path: ['approval', 'onTimeout'], sample: 'abort' },
  ...CAMPAIGN_OBJECTS.map((o) => ({ path: [o], sample: {} })),
];

/** Values of the wrong type for a field whose values are like `current`. */
function wrongTypes(current: Json): Json[] {
  const all: Json[] = ['12', 'true', true, false, null, [], [1, 2], {}, { value: 3 }, 7];
  return all.filter((v) => {
    if (typeof current === 'number') return typeof v !== 'number';
    if (typeof current === 'string') return typeof v !== 'string';
    if (typeof current === 'boolean') return typeof v !== 'boolean';
    if (current && typeof current === 'object' && !Array.isArray(current))
      return v === null || typeof v !== 'object' || Array.isArray(v);
    return true;
  });
}

function setAt(obj: { [k: string]: Json }, p: string[], value: Json | undefined): void {
  let cur = obj;
  for (const k of p.slice(0, -1)) {
    const next = cur[k];
    if (!next || typeof next !== 'object' || Array.isArray(next)) cur[k] = {};
    cur = cur[k] as { [k: string]: Json };
  }
  const last = p[p.length - 1] as string;
  if (value === undefined) delete cur[last];
  else cur[last] = value;
}

/** Names no schema knows: ASCII, look-alikes, accents, right-to-left marks, emoji. */
const UNKNOWN_KEYS = [
  'paralelism',
  'budgets',
  'pärällelism',
  'ｍodel',
  'seed\u200b',
  'abc\u202edef',
  '🚀',
  'maxcalls',
  '__proto__x',
  'constructor',
];
/** Model names that look right and are not: unicode look-alikes, control characters, traversal. */
const BAD_MODELS = [
  'fast‐ctr',
  'ｆａｓｔ-ctr',
  'fást-ctr',
  'fast-ctr\u0000',
  'fast-ctr\n',
  '../fast-ctr',
  'FAST-CTR',
  'fast ctr',
  '',
  '-fast',
  'fast-ctr\u202e',
];

const CAMPAIGN_KINDS = [
  'wrong-type',
  'out-of-range',
  'unknown-field',
  'missing',
  'huge-string',
  'deep-nesting',
  'non-finite',
  'unicode',
  'oversized',
  'not-an-object',
  'bad-split',
  'empty-budget',
] as const;

/** One invalid campaign input derived from `valid`, and the field its refusal must name. */
export function badCampaignInput(rng: Rng, valid: { [k: string]: Json }): BadInput {
  const input = clone(valid);
  const kind = pick(rng, CAMPAIGN_KINDS);
  const text = (field: string, value: Json = input) => ({ kind, text: JSON.stringify(value), field });
  switch (kind) {
    case 'wrong-type': {
      const f = pick(rng, CAMPAIGN_FIELDS);
      setAt(input, f.path, pick(rng, wrongTypes(f.sample)));
      return text(f.path.join('.'));
    }
    case 'out-of-range': {
      const f = pick(rng, CAMPAIGN_NUMBERS);
      if (f.path[0] === 'split') {
        // A share out of range; the other two still sum with it to 1, so only the range can be wrong.
        const v = pick(rng, f.bad);
        input.split = { validation: v, combination: (1 - v) / 2, exploitation: (1 - v) / 2 };
      } else {
        setAt(input, f.path, pick(rng, f.bad));
      }
      return text(f.path.join('.'));
    }
    case 'unknown-field': {
      const where = pick(rng, [[], ['budget'], ['approval'], ['llm'], ['fidelity']] as string[][]);
      const key = pick(rng, UNKNOWN_KEYS);
      if (where.length && input[where[0] as string] === undefined) input[where[0] as string] = {};
      setAt(input, [...where, key], pick(rng, [1, 'x', true, null, [1]] as Json[]));
      return text([...where, key].join('.'));
    }
    case 'missing': {
      const p = pick(rng, [['model'], ['budget']]);
      setAt(input, p, undefined);
      return text(p.join('.'));
    }
    case 'huge-string': {
      // Past the model name's 63 characters, under the 64 KiB input limit.
      const n = int(rng, 64, 60_000);
      input.model = 'a'.repeat(n);
      return text('model');
    }
    case 'deep-nesting': {
      const depth = int(rng, 50, 5000);
      const p = pick(rng, [['budget', 'experiments'], ['parallelism'], ['approval', 'required'], ['model']]);
      // Written as text: JSON.stringify itself overflows the stack at a few thousand levels.
      let nested = '1';
      for (let i = 0; i < depth; i++) nested = i % 2 ? `[${nested}]` : `{"a":${nested}}`;
      setAt(input, p, '@@VALUE@@');
      return { kind, text: JSON.stringify(input).replace('"@@VALUE@@"', nested), field: p.join('.') };
    }
    case 'non-finite': {
      // JSON has no NaN or Infinity: 1e999 parses to Infinity; a bare NaN is not JSON at all.
      const p = pick(rng, [
        ['parallelism'],
        ['budget', 'experiments'],
        ['budget', 'gpuHours'],
        ['seed'],
        ['approval', 'timeoutHours'],
        ['llm', 'maxCostUsd'],
      ]);
      const literal = pick(rng, ['1e999', '-1e999', 'NaN', 'Infinity', '-Infinity']);
      setAt(input, p, '@@VALUE@@');
      const field = literal.endsWith('1e999') ? p.join('.') : 'not valid JSON';
      return { kind, text: JSON.stringify(input).replace('"@@VALUE@@"', literal), field };
    }
    case 'unicode': {
      if (rng() < 0.7) {
        input.model = pick(rng, BAD_MODELS);
        return text('model');
      }
      setAt(input, ['approval', 'onTimeout'], pick(rng, ['ａbort', 'Abort', 'abort\u0000', 'approve\u200b']));
      return text('approval.onTimeout');
    }
    case 'oversized': {
      // Past 64 KiB: a long note, a long array or a long model name; refused for its size alone.
      const size = int(rng, MAX_CAMPAIGN_INPUT_BYTES + 1, 3 * MAX_CAMPAIGN_INPUT_BYTES);
      const how = pick(rng, ['note', 'array', 'model', 'unicode']);
      if (how === 'note') input.notes = 'n'.repeat(size);
      else if (how === 'array') input.tags = Array.from({ length: Math.ceil(size / 2) }, () => 1);
      else if (how === 'unicode')
        input.notes = 'é'.repeat(Math.ceil(size / 2)); // two bytes each in UTF-8
      else input.model = 'm'.repeat(size);
      return text(`at most ${MAX_CAMPAIGN_INPUT_BYTES}`);
    }
    case 'not-an-object':
      return text('(root)', pick(rng, [[], [valid], 'fast-ctr', 42, null, true] as Json[]));
    case 'bad-split':
      input.split = { validation: 0.5, combination: 0.5, exploitation: 0.5 };
      return text('split');
    case 'empty-budget':
      input.budget = {};
      return text('budget');
  }
}

/** Stands for 1e999 (Infinity once parsed) until the text is written: JSON.stringify would write null. */
const INFINITY = '@@1e999@@';

/** The model spec's fields that a mutation can break, and the field its refusal must name. */
type SpecMutation = (spec: { [k: string]: Json }, rng: Rng) => string;
const SPEC_MUTATIONS: Record<string, SpecMutation> = {
  'knob min > max': (s) => {
    setAt(s, ['knobs', 'batch_size', 'min'], 5000);
    return 'knobs.batch_size.min';
  },
  'baseline out of range': (s, rng) => {
    const [knob, value] = pick(rng, [
      ['lr', 5],
      ['dropout', -0.5],
      ['mlp_depth', 99],
      ['optimizer', 'lion'],
    ] as [string, Json][]);
    setAt(s, ['knobs', knob, 'baseline'], value);
    return `knobs.${knob}.baseline`;
  },
  'unknown knob type': (s) => {
    setAt(s, ['knobs', 'lr', 'type'], 'quantum');
    return 'knobs.lr.type';
  },
  'knob of the wrong type': (s, rng) => {
    const [p, v] = pick(rng, [
      [['knobs', 'batch_size', 'min'], '32'],
      [['knobs', 'lr', 'max'], null],
      [['knobs', 'optimizer', 'choices'], 'adam'],
      [['knobs', 'mlp_depth', 'baseline'], 2.5],
    ] as [string[], Json][]);
    setAt(s, p, v);
    return p.join('.');
  },
  'one categorical choice': (s) => {
    setAt(s, ['knobs', 'optimizer', 'choices'], ['adam']);
    return 'knobs.optimizer.choices';
  },
  'fidelity low > high': (s) => {
    setAt(s, ['fidelity', 'low'], 500);
    return 'fidelity.low';
  },
  'fidelity knob is a search knob': (s) => {
    setAt(s, ['fidelity', 'knob'], 'lr');
    return 'fidelity.knob';
  },
  'empty trainer argv': (s, rng) => {
    setAt(s, ['trainer', 'argv'], pick(rng, [[], 'python train.py', [''], null] as Json[]));
    return 'trainer.argv';
  },
  'unknown cluster adapter': (s, rng) => {
    setAt(
      s,
      ['cluster'],
      pick(rng, [
        { adapter: 'mesos' },
        { adapter: 'slurm', partition: 'a b;rm -rf /' },
        { adapter: 'bullmq', queue: 'x' },
      ] as Json[]),
    );
    return 'cluster';
  },
  'resources out of range': (s, rng) => {
    const [k, v] = pick(rng, [
      ['gpus', -1],
      ['cpus', 0],
      ['memoryMb', 1],
      ['timeLimitSec', INFINITY],
      ['timeLimitSec', 0.5],
    ] as [string, Json][]);
    setAt(s, ['resources', k], v);
    return `resources.${k}`;
  },
  'cost not positive': (s, rng) => {
    setAt(s, ['cost', 'gpuHoursPerUnit'], pick(rng, [0, -1e-6, 'cheap'] as Json[]));
    return 'cost.gpuHoursPerUnit';
  },
  'bad metric direction': (s) => {
    setAt(s, ['metric', 'direction'], 'down');
    return 'metric.direction';
  },
  'unknown top-level field': (s, rng) => {
    const key = pick(rng, UNKNOWN_KEYS);
    s[key] = 1;
    return key;
  },
  'bad knob name': (s, rng) => {
    const name = pick(rng, ['Learning Rate', 'lr;rm', '1lr', 'lr\u0000', 'ｌr']);
    setAt(s, ['knobs', name], { type: 'bool', baseline: true });
    return 'knobs';
  },
  'huge description': (s) => {
    s.description = 'd'.repeat(2001);
    return 'description';
  },
  'no knobs': (s) => {
    s.knobs = {};
    return 'knobs';
  },
  'name mismatch': (s) => {
    s.name = 'someone-else';
    return 'name';
  },
};

export interface BadSpec {
  kind: string;
  /** The spec as JSON text (file name `<name>.json` in the models folder). */
  text: string;
  field: string;
}

/** One invalid model spec derived from `valid`, named `name` (the file's name). */
export function badModelSpec(rng: Rng, valid: { [k: string]: Json }, name: string): BadSpec {
  const spec = clone(valid);
  spec.name = name;
  const kind = pick(rng, Object.keys(SPEC_MUTATIONS));
  const field = (SPEC_MUTATIONS[kind] as SpecMutation)(spec, rng);
  return { kind, text: JSON.stringify(spec, null, 2).replace(`"${INFINITY}"`, '1e999'), field };
}
