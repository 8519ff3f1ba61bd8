/**
 * Activities: everything with I/O that the campaign and experiment workflows ask for. Built once per
 * worker from its dependencies; workflows import these with `import type` only.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { CAMPAIGN_WORKFLOW, searchAttributes } from '../src/core/messages';
import { trainingJob, type JobStatus } from '../src/cluster/adapter';
import { ClusterUnavailableError, type Clusters } from '../src/cluster/registry';
import { InvalidInputError } from '../src/core/errors';
import type { ClusterSettings, ModelSpec } from '../src/core/model-spec';
import { readModelSpec, UnknownModelError } from '../src/models';
import type {
  CallLimits,
  EvidenceActivityRequest,
  HypothesisEngine,
  MergeRequest,
  RefineRequest,
  SlateRequest,
} from '../src/engine';
import type { LlmBudget } from '../src/engine/llm';
import type { LlmRequest } from '../src/core/campaign/machine';
import type { Evidence } from '../src/core/campaign/state';
import { hypothesisId } from '../src/core/search/space';
import { writeTrackRecord } from '../src/engine/history';
import { writeCampaignReport } from '../src/report';
import type { ExperimentOutcome, ExperimentRequest, Hypothesis } from '../src/core/types';
import { CampaignIdReusedError, type CampaignEnd, type Store } from '../src/db/store';
import type { Logger } from '../src/logging';

export interface ActivityDeps {
  store: Store;
  pool: Pool;
  temporal: Client;
  clusters: Clusters;
  modelsDir: string;
  engine: HypothesisEngine;
  /** Where campaigns write their reports when they end. */
  reportsDir: string;
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

    /** Records the end, and leaves the campaign's track record for the next campaign's history source. */
    async recordCampaignFinished(id: string, end: CampaignEnd): Promise<void> {
      await store.recordCampaignFinished(id, end);
      const campaign = await store.campaign(id);
      if (!campaign) return;
      try {
        const spec = await readModelSpec(modelsDir, campaign.model);
        await writeTrackRecord(deps.pool, spec, id, spec.fidelity.high);
      } catch (err) {
        // The note helps later campaigns; its absence must not fail this one.
        deps.log.warn({ campaignId: id, err: (err as Error).message }, 'track record not written');
      }
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

    /**
     * Writes the campaign's report (markdown + HTML) into the work dir's reports/ and names it in the
     * stored result. A report that cannot be written is logged, never a reason to fail the campaign.
     */
    async writeCampaignReport(campaignId: string): Promise<{ markdown: string; html: string } | undefined> {
      try {
        const paths = await writeCampaignReport(deps.pool, campaignId, deps.reportsDir, modelsDir);
        const report = { markdown: paths.markdown, html: paths.html };
        await deps.pool.query(
          `UPDATE campaigns SET result = jsonb_set(result, '{report}', $2::jsonb) WHERE id = $1 AND result IS NOT NULL`,
          [campaignId, JSON.stringify(report)],
        );
        return report;
      } catch (err) {
        deps.log.warn({ campaignId, err: (err as Error).message }, 'campaign report not written');
        return undefined;
      }
    },

    async recordRunbookAction(experimentId: string, action: string): Promise<void> {
      await store.recordRunbookAction(experimentId, action);
    },

    /** The validation slate from the hypothesis engine (LLM, research, history, planner). */
    async proposeHypotheses(req: SlateRequest): Promise<Hypothesis[]> {
      const slate = await whileHeartbeating(() => deps.engine.proposeSlate(req, llmLimits()));
      await store.recordHypotheses(req.campaignId, slate, 'slate');
      return slate;
    },

    /** Campaigns since v2: history, research and LLM evidence for the plan; its hypotheses are recorded. */
    async gatherEvidence(
      req: EvidenceActivityRequest,
    ): Promise<{ evidence: Evidence; llmAvailable: boolean }> {
      const r = await whileHeartbeating(() => deps.engine.gatherEvidence(req, llmLimits()));
      await store.recordHypotheses(
        req.campaignId,
        r.evidence.hypotheses.map((h) => ({
          id: hypothesisId(h.delta),
          source: h.source,
          rationale: h.rationale,
          delta: h.delta,
        })),
        'slate',
      );
      return r;
    },

    /** Campaigns since v2: the LLM's proposals from the optimizer's state, recorded. */
    async askLlm(req: {
      campaignId: string;
      spec: ModelSpec;
      request: LlmRequest;
      llmBudget: LlmBudget;
    }): Promise<Evidence['hypotheses']> {
      const picks = await whileHeartbeating(() => deps.engine.llmSuggest(req, llmLimits()));
      await store.recordHypotheses(
        req.campaignId,
        picks.map((h) => ({
          id: hypothesisId(h.delta),
          source: h.source,
          rationale: h.rationale,
          delta: h.delta,
        })),
        'slate',
      );
      return picks;
    },

    /** Which validated wins to merge; empty means the campaign's own rule. */
    async proposeMerges(req: MergeRequest): Promise<{ parts: string[]; rationale: string }[]> {
      return whileHeartbeating(() => deps.engine.proposeMerges(req, llmLimits()));
    },

    /** Local refinement around the best config, for exploitation, from the planner. */
    async proposeRefinements(req: RefineRequest): Promise<Hypothesis[]> {
      const steps = await whileHeartbeating(() => deps.engine.refine(req));
      await store.recordHypotheses(req.campaignId, steps, 'refinement');
      return steps;
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

/** Time kept back from an activity's timeout for what follows the LLM call (recording the slate). */
const LLM_DEADLINE_MARGIN_MS = 20_000;

/**
 * The LLM's share of this activity's time: every call and retry must be over before the activity's
 * own start-to-close timeout, less a margin, so that the planner's slate is still recorded in time.
 */
function llmLimits(): CallLimits {
  const timeoutMs = Context.current().info.startToCloseTimeoutMs;
  // Called as the activity starts: its start-to-close clock started a moment ago.
  return timeoutMs ? { deadline: Date.now() + timeoutMs - LLM_DEADLINE_MARGIN_MS } : {};
}

/** Runs `work`, heartbeating every 10 seconds, so that a worker lost mid-call is noticed quickly. */
async function whileHeartbeating<T>(work: () => Promise<T>): Promise<T> {
  const context = Context.current();
  context.heartbeat();
  const timer = setInterval(() => context.heartbeat(), 10_000);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
