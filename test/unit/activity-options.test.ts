/**
 * The activity profiles (workflows/activity-options.ts): every activity has one, none retries
 * forever, and a failure that spent its retries reads as which activity failed and why — in the
 * campaign's status and its details.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure } from '@temporalio/common';
import { CampaignMachine } from '../../src/core/campaign/machine';
import { ACTIVITY_FAILURES_KEPT, initialState } from '../../src/core/campaign/state';
import { parseCampaignInput } from '../../src/core/campaign-input';
import { parseModelSpec } from '../../src/core/model-spec';
import {
  ACTIVITY_PROFILE,
  activityFailureNote,
  describeFailure,
  EVIDENCE_ACTIVITY,
  maxAttempts,
  QUICK_ACTIVITY,
  reaActivities,
} from '../../workflows/activity-options';

/** An activity failure as Temporal hands it to a workflow once the retry policy is spent. */
function gaveUp(activity: string, cause: Error): ActivityFailure {
  return new ActivityFailure(
    'Activity task failed',
    activity,
    '7',
    'MAXIMUM_ATTEMPTS_REACHED',
    'worker@host',
    cause,
  );
}

describe('activity profiles', () => {
  it('give every activity a profile with a bounded number of attempts', () => {
    const names = Object.keys(ACTIVITY_PROFILE);
    assert.ok(names.length >= 15, names.join(', '));
    for (const name of names) {
      const attempts = maxAttempts(name);
      assert.ok(attempts !== undefined && attempts >= 1 && attempts <= 20, `${name}: ${attempts} attempts`);
      assert.equal(typeof (reaActivities as Record<string, unknown>)[name], 'function', name);
    }
    // Only the v1 campaign keeps the old profile, which retries forever.
    assert.equal(QUICK_ACTIVITY.retry?.maximumAttempts, undefined);
  });

  it('give LLM and evidence calls heartbeats and planning-sized timeouts, database writes short ones', () => {
    assert.equal(ACTIVITY_PROFILE.askLlm, 'evidence');
    assert.equal(ACTIVITY_PROFILE.gatherEvidence, 'evidence');
    assert.ok(EVIDENCE_ACTIVITY.heartbeatTimeout);
    assert.equal(ACTIVITY_PROFILE.recordExperimentOutcome, 'record');
    assert.equal(ACTIVITY_PROFILE.pollTrainingJob, 'cluster');
    assert.equal(ACTIVITY_PROFILE.writeCampaignReport, 'report');
    assert.equal(ACTIVITY_PROFILE.proposeRefinements, 'planning');
  });

  it('describe a spent activity by name, attempts and its error, also through a child workflow', () => {
    const err = gaveUp(
      'pollTrainingJob',
      ApplicationFailure.create({ message: 'connect ECONNREFUSED 127.0.0.1:6379', type: 'Error' }),
    );
    assert.equal(
      describeFailure(err),
      'activity pollTrainingJob gave up after 10 attempts: Error: connect ECONNREFUSED 127.0.0.1:6379',
    );
    const child = new ChildWorkflowFailure(
      'default',
      { workflowId: 'camp-1.e0007', runId: 'r' },
      'experiment',
      'NON_RETRYABLE_FAILURE',
      gaveUp('recordExperimentOutcome', ApplicationFailure.create({ message: 'too many clients' })),
    );
    assert.equal(
      describeFailure(child),
      'camp-1.e0007: activity recordExperimentOutcome gave up after 20 attempts: too many clients',
    );
    assert.deepEqual(activityFailureNote(child, 1000), {
      activity: 'recordExperimentOutcome',
      message: describeFailure(child),
      at: 1000,
    });
    assert.equal(activityFailureNote(new Error('boom'), 1000), undefined);
  });

  it('name the failing activity in the campaign status and its details, keeping the latest few', () => {
    const spec = parseModelSpec({
      name: 'sim',
      trainer: { argv: ['{python}', 'train.py'] },
      knobs: { step: { type: 'logfloat', min: 1e-4, max: 1, baseline: 0.003 } },
      metric: { primary: 'ne', direction: 'minimize' },
      fidelity: { knob: 'steps', low: 3, high: 27 },
      cost: { gpuHoursPerUnit: 0.001 },
    });
    const input = parseCampaignInput({ model: 'sim', budget: { experiments: 10 } });
    const machine = new CampaignMachine(initialState(input, [27]), spec, input);
    assert.deepEqual(machine.status('c').activityFailures, []);
    for (let i = 0; i < ACTIVITY_FAILURES_KEPT + 3; i++)
      machine.noteActivityFailure({
        activity: 'recordCampaignPhase',
        message: `activity recordCampaignPhase gave up after 20 attempts: down ${i}`,
        at: i,
      });
    const notes = machine.status('c').activityFailures;
    assert.equal(notes.length, ACTIVITY_FAILURES_KEPT);
    assert.match(notes.at(-1)?.message ?? '', /down 12$/);
    assert.match(
      machine.markdown(),
      /\*\*Activity failed\*\* .*recordCampaignPhase gave up after 20 attempts: down 12/,
    );
  });
});
