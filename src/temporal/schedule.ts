/**
 * The nightly Temporal Schedule: starts the `nightly` workflow on a cron, which starts a campaign per
 * model that is due. Overlap policy SKIP: a kick never starts while the last one is still starting.
 *
 * The same with the Temporal CLI:
 *   temporal schedule create --schedule-id rea-nightly --cron '0 2 * * *' --overlap-policy Skip \
 *     --workflow-id rea-nightly --task-queue rea --type nightly \
 *     --input '{"models": ["synthetic-ctr"], "template": {"budget": {"experiments": 40}}}'
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { parseCampaignInput, type CampaignInput } from '../core/campaign-input';
import { NIGHTLY_WORKFLOW } from '../core/messages';
import type { ReaConfig } from '../config';

export const NIGHTLY_SCHEDULE_ID = 'rea-nightly';

export interface NightlyScheduleOptions {
  models: string[];
  cron: string;
  template: Omit<CampaignInput, 'model'>;
  scheduleId?: string;
}

/** Creates the schedule, or updates it when it exists; validates every campaign input first. */
export async function upsertNightlySchedule(
  client: Client,
  config: ReaConfig,
  opts: NightlyScheduleOptions,
): Promise<{ scheduleId: string; created: boolean }> {
  for (const model of opts.models) parseCampaignInput({ ...opts.template, model });
  const scheduleId = opts.scheduleId ?? NIGHTLY_SCHEDULE_ID;
  const action = {
    type: 'startWorkflow' as const,
    workflowType: NIGHTLY_WORKFLOW,
    workflowId: scheduleId,
    taskQueue: config.REA_TASK_QUEUE,
    args: [{ models: opts.models, template: opts.template }],
  };
  const spec = { cronExpressions: [opts.cron] };
  try {
    await client.schedule.create({
      scheduleId,
      spec,
      action,
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
      memo: { models: opts.models.join(',') },
    });
    return { scheduleId, created: true };
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((previous) => ({ ...previous, spec, action }));
    return { scheduleId, created: false };
  }
}
