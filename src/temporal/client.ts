/** A Temporal client for the CLI and tests, and the one way rea starts a campaign. */
import {
  Client,
  Connection,
  WorkflowIdReusePolicy,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { parseCampaignInput, type CampaignInput } from '../core/campaign-input';
import { CAMPAIGN_WORKFLOW } from '../core/messages';
import type { CampaignResult } from '../core/types';
import type { ReaConfig } from '../config';
import { temporalConnectionError, temporalConnectionOptions } from './connection';

/**
 * A client on the configured Temporal (a dev server, a cluster, Temporal Cloud with TLS or an API key).
 *
 *   const client = await connectClient(loadConfig());
 */
export async function connectClient(config: ReaConfig): Promise<Client> {
  const options = temporalConnectionOptions(config);
  const connection = await Connection.connect({ ...options, connectTimeout: '5s' }).catch((err: unknown) => {
    throw temporalConnectionError(config, err);
  });
  return new Client({ connection, namespace: config.REA_TEMPORAL_NAMESPACE });
}

export function newCampaignId(model: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  return `${model}-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * Validates the input here first (an invalid input never starts a workflow), then starts the campaign.
 */
export async function startCampaign(
  client: Client,
  config: ReaConfig,
  rawInput: unknown,
  id?: string,
): Promise<WorkflowHandleWithFirstExecutionRunId<(input: CampaignInput) => Promise<CampaignResult>>> {
  const input = parseCampaignInput(rawInput);
  const workflowId = id ?? newCampaignId(input.model);
  return client.workflow.start<(input: CampaignInput) => Promise<CampaignResult>>(CAMPAIGN_WORKFLOW, {
    taskQueue: config.REA_TASK_QUEUE,
    workflowId,
    args: [rawInput as CampaignInput],
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    staticSummary: `Campaign on ${input.model}: ${input.budget.experiments} experiments`,
    staticDetails: `**Model:** ${input.model}\n\n**Input:**\n\n\`\`\`json\n${JSON.stringify(rawInput, null, 2)}\n\`\`\``,
  });
}
