/**
 * ModelSpec: the ranking model under improvement, as data. Every config that any source proposes is
 * checked against its knobs before it can reach a trainer. Sandbox-safe: imported by workflows.
 *
 *   const spec = parseModelSpec(JSON.parse(text)); // throws InvalidInputError naming the field
 */
import { z } from 'zod';
import { parseOrThrow } from './errors';

const knobName = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,63}$/, 'expected a snake_case knob name (a-z, 0-9, _; starts with a letter)');

/**
 * What a knob does, in words any model can share: the runbook repairs failures by role (an
 * out-of-memory job gets a smaller `batch_size` knob, a loss explosion a lower `learning_rate`), and
 * research cards suggest changes by role, so that they apply to models nobody wrote them for.
 */
export const KNOB_ROLES = [
  'learning_rate',
  'batch_size',
  'regularization',
  'dropout',
  'capacity',
  'depth',
  'warmup',
  'schedule',
  'optimizer',
  'architecture',
  'features',
] as const;
export type KnobRole = (typeof KNOB_ROLES)[number];

const knobValue = z.union([z.string(), z.number(), z.boolean()]);
/** The knob matters only while each named knob has one of the listed values. */
const activeWhen = z
  .record(knobName, z.array(knobValue).min(1, 'expected at least one value'))
  .refine((c) => Object.keys(c).length > 0, 'expected at least one knob');
const common = {
  role: z.enum(KNOB_ROLES, { error: `expected one of ${KNOB_ROLES.join(', ')}` }).optional(),
  activeWhen: activeWhen.optional(),
  /** Free text for people and the LLM: what the knob does. */
  description: z.string().max(500).optional(),
};

const intKnob = z
  .object({
    type: z.literal('int'),
    min: z.number().int(),
    max: z.number().int(),
    baseline: z.number().int(),
    ...common,
  })
  .strict();
const floatKnob = z
  .object({ type: z.literal('float'), min: z.number(), max: z.number(), baseline: z.number(), ...common })
  .strict();
const logFloatKnob = z
  .object({
    type: z.literal('logfloat'),
    min: z.number().positive(),
    max: z.number().positive(),
    baseline: z.number().positive(),
    ...common,
  })
  .strict();
const categoricalKnob = z
  .object({
    type: z.literal('categorical'),
    choices: z.array(z.union([z.string(), z.number()])).min(2, 'expected at least 2 choices'),
    baseline: z.union([z.string(), z.number()]),
    ...common,
  })
  .strict();
const boolKnob = z.object({ type: z.literal('bool'), baseline: z.boolean(), ...common }).strict();

export const knobSchema = z.discriminatedUnion('type', [
  intKnob,
  floatKnob,
  logFloatKnob,
  categoricalKnob,
  boolKnob,
]);
export type Knob = z.infer<typeof knobSchema>;
export type KnobValue = string | number | boolean;
/** A concrete config: knob name → value. */
export type Config = Record<string, KnobValue>;

const jsonValue: z.ZodType<unknown> = z.lazy(() =>
  z.union([
    z.string(),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(jsonValue),
    z.record(z.string(), jsonValue),
  ]),
);

const slurmName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected a Slurm name (A-Z, a-z, 0-9, . _ -)');
const k8sName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'expected a Kubernetes name (lowercase a-z, 0-9 and -)');

export const clusterSchema = z.discriminatedUnion('adapter', [
  z.object({ adapter: z.literal('bullmq') }).strict(),
  z
    .object({
      adapter: z.literal('slurm'),
      partition: slurmName.optional(),
      account: slurmName.optional(),
      qos: slurmName.optional(),
      /** How GPUs are asked for: as `--gres=gpu:N` (the usual), or not at all (nodes without GPU gres). */
      gpus: z.enum(['gres', 'none']).default('gres'),
    })
    .strict(),
  z
    .object({
      adapter: z.literal('kubernetes'),
      /** The container image with the trainer; its argv is the spec's trainer argv. */
      image: z.string().min(1).max(500),
      /** Absent: the kubeconfig context's namespace, the pod's own (in-cluster), else "default". */
      namespace: k8sName.optional(),
      serviceAccountName: k8sName.optional(),
      /** What {python} in the trainer argv becomes inside the image. */
      python: z.string().min(1).default('python'),
      /** The extended resource that GPUs are requested as. */
      gpuResource: z.string().min(1).default('nvidia.com/gpu'),
      /** Kubernetes deletes a finished Job (and its pod log) this long after it ends; rea must poll before. */
      ttlSecondsAfterFinished: z
        .number()
        .int()
        .min(3600, 'expected at least 3600: rea reads the outcome from the Job before Kubernetes deletes it')
        .default(86400),
    })
    .strict(),
]);
export type ClusterSettings = z.output<typeof clusterSchema>;
export type ClusterKind = ClusterSettings['adapter'];

export const modelSpecSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected a lowercase name (a-z, 0-9, - and _)'),
    description: z.string().max(2000).optional(),
    trainer: z
      .object({
        /** argv template; {python}, {config} and {metrics} are replaced as whole arguments, never through a shell. */
        argv: z.array(z.string().min(1)).min(1, 'expected at least the program to run'),
        cwd: z.string().optional(),
        env: z.record(z.string(), z.string()).optional(),
      })
      .strict(),
    knobs: z
      .record(knobName, knobSchema)
      .refine((k) => Object.keys(k).length > 0, 'expected at least one knob'),
    /** Values passed to the trainer unchanged in every experiment (dataset, threads...). */
    fixed: z.record(z.string(), jsonValue).default({}),
    metric: z
      .object({
        primary: z.string().min(1),
        direction: z.enum(['minimize', 'maximize']),
        guardrails: z.array(z.string()).default([]),
      })
      .strict(),
    fidelity: z
      .object({ knob: knobName, low: z.number().int().positive(), high: z.number().int().positive() })
      .strict()
      .refine((f) => f.low <= f.high, { message: 'expected low <= high', path: ['low'] }),
    resources: z
      .object({
        gpus: z.number().int().min(0).max(64).default(1),
        cpus: z.number().int().min(1).max(256).default(1),
        memoryMb: z.number().int().min(64).default(2048),
        timeLimitSec: z
          .number()
          .int()
          .min(1)
          .max(30 * 24 * 3600)
          .default(3600),
      })
      .strict()
      .default({ gpus: 1, cpus: 1, memoryMb: 2048, timeLimitSec: 3600 }),
    /** GPU-hours one GPU spends per unit of the fidelity knob: a job costs gpus × fidelity × this. */
    cost: z
      .object({ gpuHoursPerUnit: z.number().positive('expected a positive number of GPU-hours') })
      .strict()
      .default({ gpuHoursPerUnit: 1 / 3600 }),
    /** Where the trainer runs: the BullMQ GPU pool (default), a Slurm cluster or Kubernetes. */
    cluster: clusterSchema.default({ adapter: 'bullmq' }),
  })
  .strict()
  .superRefine((spec, ctx) => {
    for (const [name, knob] of Object.entries(spec.knobs)) {
      const problem = knobProblem(knob, knob.baseline);
      if (problem) ctx.addIssue({ code: 'custom', path: ['knobs', name, 'baseline'], message: problem });
      if ((knob.type === 'int' || knob.type === 'float' || knob.type === 'logfloat') && knob.min > knob.max) {
        ctx.addIssue({
          code: 'custom',
          path: ['knobs', name, 'min'],
          message: `expected min <= max (${knob.max})`,
        });
      }
    }
    for (const [name, knob] of Object.entries(spec.knobs)) {
      for (const [parent, values] of Object.entries(knob.activeWhen ?? {})) {
        const path = ['knobs', name, 'activeWhen', parent];
        const p = hasKnob(spec, parent) ? spec.knobs[parent] : undefined;
        if (parent === name)
          ctx.addIssue({ code: 'custom', path, message: 'a knob cannot depend on itself' });
        else if (!p)
          ctx.addIssue({
            code: 'custom',
            path,
            message: `unknown knob (known: ${Object.keys(spec.knobs).join(', ')})`,
          });
        else
          values.forEach((v, i) => {
            const problem = knobProblem(p, v);
            if (problem) ctx.addIssue({ code: 'custom', path: [...path, i], message: problem });
          });
      }
    }
    const cycle = activeWhenCycle(spec.knobs);
    if (cycle)
      ctx.addIssue({
        code: 'custom',
        path: ['knobs', cycle[0] as string, 'activeWhen'],
        message: `conditions form a cycle: ${cycle.join(' → ')}`,
      });
    if (hasKnob(spec, spec.fidelity.knob)) {
      ctx.addIssue({
        code: 'custom',
        path: ['fidelity', 'knob'],
        message: `"${spec.fidelity.knob}" is a search knob; the fidelity knob must be separate`,
      });
    }
  });

export type ModelSpec = z.output<typeof modelSpecSchema>;

/** A cycle of `activeWhen` conditions (names in order, the first repeated last), or undefined. */
function activeWhenCycle(knobs: Record<string, Knob>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'visiting') return [...path.slice(path.indexOf(name)), name];
    state.set(name, 'visiting');
    for (const parent of Object.keys(knobs[name]?.activeWhen ?? {})) {
      if (!Object.hasOwn(knobs, parent) || parent === name) continue;
      const found = visit(parent, [...path, name]);
      if (found) return found;
    }
    state.set(name, 'done');
    return undefined;
  };
  for (const name of Object.keys(knobs)) {
    const found = visit(name, []);
    if (found) return found;
  }
  return undefined;
}

/** Knobs ordered so that every knob comes after the knobs its `activeWhen` names. */
export function knobOrder(spec: ModelSpec): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    for (const parent of Object.keys(spec.knobs[name]?.activeWhen ?? {}))
      if (hasKnob(spec, parent)) visit(parent);
    order.push(name);
  };
  for (const name of Object.keys(spec.knobs).sort()) visit(name);
  return order;
}

/** Whether `name` matters in `config` (every knob its `activeWhen` names has a listed value). */
export function isActive(spec: ModelSpec, name: string, config: Config): boolean {
  const conditions = spec.knobs[name]?.activeWhen;
  if (!conditions) return true;
  return Object.entries(conditions).every(
    ([parent, values]) =>
      isActive(spec, parent, config) &&
      values.some((v) => v === (config[parent] ?? spec.knobs[parent]?.baseline)),
  );
}

/**
 * The config as the trainer will use it: every inactive knob back at its baseline, so that two
 * configs that differ only in knobs that do not matter are one config.
 */
export function effectiveConfig(spec: ModelSpec, config: Config): Config {
  const full: Config = { ...baselineConfig(spec), ...config };
  for (const name of knobOrder(spec))
    if (!isActive(spec, name, full)) full[name] = (spec.knobs[name] as Knob).baseline;
  return full;
}

/** The knobs that declare `role`, in name order. */
export function knobsWithRole(spec: ModelSpec, role: KnobRole): string[] {
  return Object.keys(spec.knobs)
    .filter((k) => spec.knobs[k]?.role === role)
    .sort();
}

/**
 * Whether `name` is one of the spec's knobs. Not `name in spec.knobs`: that is true for
 * "constructor", "toString" and every other name that Object.prototype carries.
 */
export function hasKnob(spec: Pick<ModelSpec, 'knobs'>, name: string): boolean {
  return Object.hasOwn(spec.knobs, name);
}

export function parseModelSpec(value: unknown): ModelSpec {
  return parseOrThrow(modelSpecSchema, value, 'model spec');
}

/** Why `value` is not allowed for `knob`, or undefined when it is. */
export function knobProblem(knob: Knob, value: unknown): string | undefined {
  switch (knob.type) {
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value))
        return `expected an integer, got ${show(value)}`;
      if (value < knob.min || value > knob.max) return `expected ${knob.min}..${knob.max}, got ${value}`;
      return undefined;
    case 'float':
    case 'logfloat':
      if (typeof value !== 'number' || !Number.isFinite(value))
        return `expected a number, got ${show(value)}`;
      if (value < knob.min || value > knob.max) return `expected ${knob.min}..${knob.max}, got ${value}`;
      return undefined;
    case 'categorical':
      if (!knob.choices.some((c) => c === value))
        return `expected one of ${knob.choices.map(show).join(', ')}, got ${show(value)}`;
      return undefined;
    case 'bool':
      return typeof value === 'boolean' ? undefined : `expected true or false, got ${show(value)}`;
  }
}

function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

export function baselineConfig(spec: ModelSpec): Config {
  return Object.fromEntries(Object.entries(spec.knobs).map(([name, knob]) => [name, knob.baseline]));
}

/** The GPU-hours the cost model charges for one job at `fidelity`. */
export function jobCost(spec: ModelSpec, fidelity: number): number {
  return Math.max(1, spec.resources.gpus) * fidelity * spec.cost.gpuHoursPerUnit;
}

/** Problems of a proposed config delta against the spec: unknown knobs and invalid values, by knob. */
export function configProblems(spec: ModelSpec, delta: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(delta)) {
    const knob = hasKnob(spec, name) ? spec.knobs[name] : undefined;
    if (!knob) {
      problems.push(`${name}: unknown knob (known: ${Object.keys(spec.knobs).join(', ')})`);
      continue;
    }
    const problem = knobProblem(knob, value);
    if (problem) problems.push(`${name}: ${problem}`);
  }
  return problems;
}
