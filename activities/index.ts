/**
 * Activities: everything with I/O that the campaign and experiment workflows ask for. Built once per
 * worker from its dependencies; workflows import these with `import type` only.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { CAMPAIGN_WORKFLOW, searchAttributes } from '../src/core/messages';
import { trainingJob, type JobStatus } from '../src/cluster/adapter';
import { ClusterUnavailableError, type Clusters } from '../src/cluster/registry';
import { InvalidInputError } from '../src/core/errors';
import type { ClusterSettings, Config, ModelSpec } from '../src/core/model-spec';
import { readModelSpec, UnknownModelError } from '../src/models';
import { proposeRefinements as proposeRefinementSlate, proposeSingleKnobSlate } from '../src/core/planner';
import type { ExperimentOutcome, ExperimentRequest, Hypothesis } from '../src/core/types';
import { CampaignIdReusedError, type CampaignEnd, type Store } from '../src/db/store';
import type { Logger } from '../src/logging';

export interface ActivityDeps {
  store: Store;
  temporal: Client;
  clusters: Clusters;
  modelsDir: string;
  log: Logger;
}

export function createActivities(deps: ActivityDeps) {
  const { store, clusters, modelsDir } = deps;
  const clusterFor = (settings: ClusterSettings) => {
    try {
      return clusters.for(settings);
    } catch (err) {
      if (err instanceof ClusterUnavailableError)
        throw ApplicationFailure.nonRetryable(err.message, 'ClusterUnavailable');
      throw err;
    }
  };
  return {
    /** Reads and validates models/<name>.json; a missing or invalid spec fails the campaign at once. */
    async loadModelSpec(name: string): Promise<ModelSpec> {
      try {
        return await readModelSpec(modelsDir, name);
      } catch (err) {
        if (err instanceof UnknownModelError) {
          throw ApplicationFailure.nonRetryable(err.message, 'InvalidCampaignInput', { fields: err.fields });
        }
        if (err instanceof InvalidInputError)
          throw ApplicationFailure.nonRetryable(err.message, 'InvalidModelSpec');
        throw err;
      }
    },

    async recordCampaignStarted(c: {
      id: string;
      firstRunId: string;
      model: string;
      input: unknown;
    }): Promise<void> {
      try {
        await store.recordCampaignStarted(c);
      } catch (err) {
        if (err instanceof CampaignIdReusedError)
          throw ApplicationFailure.nonRetryable(err.message, err.name);
        throw err;
      }
    },

    async recordCampaignPhase(id: string, phase: string, plan: unknown): Promise<void> {
      await store.recordCampaignPhase(id, phase, plan);
    },

    async recordCampaignFinished(id: string, end: CampaignEnd): Promise<void> {
      await store.recordCampaignFinished(id, end);
    },

    /**
     * Models, among `models`, that have a campaign running now (for the nightly kick). Temporal is
     * the source of truth: a campaign terminated by hand still shows "running" in PostgreSQL.
     */
    async runningCampaignModels(models: string[]): Promise<string[]> {
      const quoted = models.map((m) => JSON.stringify(m)).join(', ');
      const query = `WorkflowType = '${CAMPAIGN_WORKFLOW}' AND ExecutionStatus = 'Running' AND ReaModel IN (${quoted})`;
      const busy = new Set<string>();
      for await (const wf of deps.temporal.workflow.list({ query })) {
        const model = wf.typedSearchAttributes.get(searchAttributes.model);
        if (model) busy.add(model);
      }
      return [...busy];
    },

    async recordRunbookAction(experimentId: string, action: string): Promise<void> {
      await store.recordRunbookAction(experimentId, action);
    },

    /**
     * The first hypothesis source: the offline single-knob planner. Knobs an engineer excluded are
     * left alone; free-text feedback is kept for the LLM source that replaces this one.
     */
    // eslint-disable-next-line @typescript-eslint/require-await
    async proposeHypotheses(req: {
      spec: ModelSpec;
      count: number;
      seed: number;
      exclude: string[];
      excludeKnobs: string[];
      feedback: string[];
    }): Promise<Hypothesis[]> {
      const knobs = Object.fromEntries(
        Object.entries(req.spec.knobs).filter(([k]) => !req.excludeKnobs.includes(k)),
      );
      return proposeSingleKnobSlate({ ...req.spec, knobs }, req.count, req.seed, new Set(req.exclude));
    },

    /** Local refinement around the best config, for exploitation. */
    // eslint-disable-next-line @typescript-eslint/require-await
    async proposeRefinements(req: {
      spec: ModelSpec;
      bestDelta: Config;
      count: number;
      seed: number;
      exclude: string[];
    }): Promise<Hypothesis[]> {
      return proposeRefinementSlate(req.spec, req.bestDelta, req.count, req.seed, new Set(req.exclude));
    },

    async recordExperimentQueued(req: ExperimentRequest): Promise<void> {
      await store.recordExperimentQueued(req);
    },

    /** Idempotent on the experiment id: a retried submit finds the job it already made. */
    async submitTrainingJob(req: {
      request: ExperimentRequest;
      spec: ModelSpec;
    }): Promise<{ jobId: string; created: boolean }> {
      const { request, spec } = req;
      const submitted = await clusterFor(spec.cluster).submit(trainingJob(spec, request));
      deps.log.info(
        { experimentId: request.experimentId, created: submitted.created },
        'training job submitted',
      );
      return submitted;
    },

    async pollTrainingJob(req: { cluster: ClusterSettings; jobId: string }): Promise<JobStatus> {
      Context.current().heartbeat();
      return clusterFor(req.cluster).status(req.jobId);
    },

    async cancelTrainingJob(req: { cluster: ClusterSettings; jobId: string }): Promise<void> {
      await clusterFor(req.cluster).cancel(req.jobId);
    },

    async recordExperimentOutcome(
      id: string,
      outcome: ExperimentOutcome,
      primaryMetric: string,
    ): Promise<void> {
      await store.recordExperimentOutcome(id, outcome, primaryMetric);
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
