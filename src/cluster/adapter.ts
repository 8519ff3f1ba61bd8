/**
 * The one interface every cluster adapter implements (the BullMQ GPU pool, Slurm, Kubernetes).
 * Submit is idempotent on the experiment id: submitting twice finds the first job.
 */
import type { ClusterSettings, Config, ModelSpec } from '../core/model-spec';
import type { ExperimentOutcome } from '../core/types';
import type { Progress } from '../trainer/protocol';

export interface ResourceRequest {
  gpus: number;
  cpus: number;
  memoryMb: number;
  timeLimitSec: number;
}

export interface TrainingJob {
  /** The experiment id; also the job's id on the cluster. */
  experimentId: string;
  campaignId: string;
  model: string;
  trainer: { argv: string[]; cwd?: string; env?: Record<string, string> };
  config: Record<string, unknown>;
  resources: ResourceRequest;
  primaryMetric: string;
  /** The spec's cluster settings (partition, image...), for the adapter that runs it. */
  cluster: ClusterSettings;
}

export type JobStatus =
  | { state: 'queued' }
  | { state: 'running'; progress?: Progress }
  | { state: 'finished'; outcome: ExperimentOutcome }
  /**
   * The cluster has no record of the job (never submitted, or its store lost it). Where a node may
   * still be running a job its cluster forgot, `resubmitAfterSec` says how long after the first
   * sighting a resubmission is safe (every such copy has been killed by then).
   */
  | { state: 'missing'; resubmitAfterSec?: number };

export interface ClusterAdapter {
  submit(job: TrainingJob): Promise<{ jobId: string; created: boolean }>;
  status(jobId: string): Promise<JobStatus>;
  cancel(jobId: string): Promise<void>;
  logs(jobId: string): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * The job that trains `config` for a model: the spec's fixed values, the knobs, the fidelity knob and
 * the seed become the trainer's config file; nothing else reaches the trainer.
 */
export function trainingJob(
  spec: ModelSpec,
  run: { experimentId: string; campaignId: string; config: Config; fidelity: number; seed: number },
): TrainingJob {
  return {
    experimentId: run.experimentId,
    campaignId: run.campaignId,
    model: spec.name,
    trainer: spec.trainer,
    config: { ...spec.fixed, ...run.config, [spec.fidelity.knob]: run.fidelity, seed: run.seed },
    resources: spec.resources,
    primaryMetric: spec.metric.primary,
    cluster: spec.cluster,
  };
}
