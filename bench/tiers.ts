/**
 * The benchmark's tiers: which tasks, seeds, methods and budgets each part measures. Budgets are in
 * units of each spec's own fidelity knob, as multiples of one full-fidelity run, so that every task
 * (whatever its trainer) gets the same number of full-run equivalents.
 */
import type { OrchestrationTier } from './orchestration';

export const PEERS = ['tpe-mv', 'tpe', 'hyperband', 'random', 'gp', 'cmaes'] as const;
export type Peer = (typeof PEERS)[number];
export type Method = 'rea' | 'rea-llm' | Peer;

export const LABEL: Record<Method, string> = {
  rea: 'rea (planner, no LLM)',
  'rea-llm': 'rea + LLM (local)',
  'tpe-mv': 'Optuna TPE (multivariate, group, constant liar)',
  tpe: 'Optuna TPE (default)',
  hyperband: 'Optuna TPE + Hyperband',
  random: 'random search',
  gp: 'Optuna GP (GPSampler)',
  cmaes: 'Optuna CMA-ES',
};

export const SHORT: Record<Method, string> = {
  rea: 'rea',
  'rea-llm': 'rea+LLM',
  'tpe-mv': 'TPE-mv',
  tpe: 'TPE',
  hyperband: 'TPE+HB',
  random: 'random',
  gp: 'GP',
  cmaes: 'CMA-ES',
};

export interface TransferPair {
  task: string;
  /** The drifted task: the same model with this data seed (a new world and rows, or a new split). */
  driftDataSeed: number;
  campaignSeed: number;
}

export interface Tier extends OrchestrationTier {
  name: 'default' | 'full' | 'smoke';
  tasks: string[];
  seeds: number[];
  /** Budget per search, in full-fidelity runs of the task (× the spec's fidelity.high units). */
  budgetRuns: number;
  methods: Method[];
  /** Per task, the best answer of a multivariate-TPE search at `multiple` × the budget. */
  oracle?: { multiple: number; seed: number };
  noise?: {
    nullTask: string;
    plantedTask: string;
    /** The change the planted task's trainer rewards (docs/trainers.md measures it). */
    planted: Record<string, string | number | boolean>;
    campaigns: number;
    budgetRuns: number;
    /** Seeds to measure the planted effect and the noise SD with. */
    effectSeeds: number;
  };
  transfer?: { pairs: TransferPair[]; budgetRuns: number };
  /** Hand-over campaigns: [job seconds, jobs] each, at parallelism 2. */
  handover: [number, number][];
  /** rea with the local LLM: tasks × seeds (a subset; the model answers in seconds). */
  llm?: { tasks: string[]; seeds: number[] };
  expectedMinutes: string;
}

const FAST_TASKS = ['fm-synthetic', 'fm-synthetic-hard', 'fm-movielens', 'gbdt-synthetic', 'gbdt-movielens'];

export const DEFAULT_TIER: Tier = {
  name: 'default',
  tasks: FAST_TASKS,
  seeds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  budgetRuns: 30,
  methods: ['rea', 'tpe-mv', 'tpe', 'hyperband', 'random', 'gp'],
  oracle: { multiple: 10, seed: 9999 },
  noise: {
    nullTask: 'fm-null',
    plantedTask: 'fm-planted',
    planted: { step_size: 0.064 },
    campaigns: 20,
    budgetRuns: 20,
    effectSeeds: 20,
  },
  transfer: {
    pairs: [
      { task: 'fm-synthetic', driftDataSeed: 4321, campaignSeed: 300 },
      { task: 'fm-synthetic-hard', driftDataSeed: 4321, campaignSeed: 301 },
      { task: 'gbdt-synthetic', driftDataSeed: 4321, campaignSeed: 302 },
      { task: 'fm-synthetic', driftDataSeed: 777, campaignSeed: 303 },
      { task: 'fm-movielens', driftDataSeed: 4321, campaignSeed: 304 },
    ],
    budgetRuns: 30,
  },
  llm: { tasks: ['fm-synthetic', 'gbdt-synthetic'], seeds: [0, 1, 2, 3, 4] },
  handover: [
    [30, 64],
    [3, 64],
  ],
  hibernating: 1000,
  wakes: 100,
  fastExperiments: 2000,
  expectedMinutes: 'about 3 hours on 2 cores',
};

export const FULL_TIER: Tier = {
  ...DEFAULT_TIER,
  name: 'full',
  tasks: [...FAST_TASKS, 'synthetic-ctr', 'synthetic-ctr-hard', 'movielens-ctr', 'obd-ctr'],
  seeds: Array.from({ length: 20 }, (_, i) => i),
  methods: ['rea', 'tpe-mv', 'tpe', 'hyperband', 'random', 'gp', 'cmaes'],
  fastExperiments: 5000,
  expectedMinutes: 'a day or more on 2 cores (the PyTorch CTR tasks train for seconds per run; not run here)',
};

/** Every part end to end in minutes, on a fresh clone; results go to .rea/bench/smoke-results. */
export const SMOKE_TIER: Tier = {
  ...DEFAULT_TIER,
  name: 'smoke',
  tasks: ['fm-synthetic', 'gbdt-synthetic'],
  seeds: [0, 1],
  budgetRuns: 8,
  methods: ['rea', 'tpe-mv', 'hyperband', 'random'],
  oracle: { multiple: 3, seed: 9999 },
  noise: {
    ...(DEFAULT_TIER.noise as NonNullable<Tier['noise']>),
    campaigns: 2,
    budgetRuns: 8,
    effectSeeds: 4,
  },
  transfer: { pairs: [{ task: 'fm-synthetic', driftDataSeed: 4321, campaignSeed: 300 }], budgetRuns: 8 },
  llm: { tasks: ['fm-synthetic'], seeds: [0] },
  handover: [[1, 12]],
  hibernating: 20,
  wakes: 10,
  fastExperiments: 100,
  expectedMinutes: 'under 10 minutes',
};

/** The tiers by name (a results file names its tier). */
export const TIERS: Record<Tier['name'], Tier> = {
  default: DEFAULT_TIER,
  full: FULL_TIER,
  smoke: SMOKE_TIER,
};
