/**
 * The one interface every cluster adapter implements (BullMQ GPU pool now; Slurm and Kubernetes
 * later). Submit is idempotent on the experiment id: submitting twice finds the first job.
 */
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
}

export type JobStatus =
  | { state: 'queued' }
  | { state: 'running'; progress?: Progress }
  | { state: 'finished'; outcome: ExperimentOutcome }
  /** The cluster has no record of the job (never submitted, or its store lost it). */
  | { state: 'missing' };

export interface ClusterAdapter {
  submit(job: TrainingJob): Promise<{ jobId: string; created: boolean }>;
  status(jobId: string): Promise<JobStatus>;
  cancel(jobId: string): Promise<void>;
  logs(jobId: string): Promise<string[]>;
  close(): Promise<void>;
}
