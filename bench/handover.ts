/**
 * Hand-over and slot utilization on real campaigns at parallelism 2 (`--only handover`): a campaign
 * of stand-in jobs that each train for a fixed time (`bench/fast_trainer.py` with `sleep_sec`), on
 * the bench's 2-slot agent. From the gpu-agent's journal (job_events): for every job that started on
 * a slot a finished job freed, the time from that finish to the start (the hand-over), and busy
 * slot-time over the campaign's span (utilization). Results in raw/handover.json and
 * orchestration.md.
 */
import path from 'node:path';
import type { CampaignInput } from '../src/core/campaign-input';
import { percentile, slotGaps, utilization } from './analysis';
import { modelSpec, say, writeSpec } from './common';
import { clearHistory, runCampaign, type Stack } from './stack';

export interface HandoverRun {
  jobSec: number;
  jobs: number;
  gaps: number[];
  utilization: number;
  wallSec: number;
  p50: number;
  p99: number;
}

/** One campaign of `jobs` stand-in jobs of `jobSec` seconds each, two at a time. */
export async function handover(stack: Stack, jobSec: number, jobs: number): Promise<HandoverRun> {
  const spec = modelSpec('bench-fast');
  spec.name = `bench-sleep-${jobSec}`;
  spec.fixed = { ...spec.fixed, sleep_sec: jobSec };
  spec.resources = { ...spec.resources, timeLimitSec: Math.max(60, jobSec * 4) };
  writeSpec(spec);
  await clearHistory(stack.pool, [spec.name]);
  const input: CampaignInput = {
    model: spec.name,
    budget: { experiments: jobs },
    parallelism: 2,
    pollIntervalSec: Math.max(60, jobSec * 10),
  };
  say(`hand-over: ${jobs} jobs of ${jobSec} s, 2 slots`);
  const run = await runCampaign(stack, 'rea', input, `bench-handover-${jobSec}s-${Date.now().toString(36)}`);
  const gaps = slotGaps(run.jobs, 2);
  const result: HandoverRun = {
    jobSec,
    jobs: run.jobs.length,
    gaps,
    utilization: utilization(run.jobs, 2),
    wallSec: run.wallSec,
    p50: percentile(gaps, 50),
    p99: percentile(gaps, 99),
  };
  say(
    `  ${result.jobs} jobs: hand-over p50 ${result.p50.toFixed(3)} s, p99 ${result.p99.toFixed(3)} s; utilization ${(result.utilization * 100).toFixed(1)} %`,
  );
  return result;
}

export const HANDOVER_SPECS = path.join('bench', 'models', 'bench-fast.json');
