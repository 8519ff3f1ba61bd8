/**
 * The cluster adapters a worker can use, chosen per model by its spec's `cluster` field. Adapters
 * are made on first use and kept, one per distinct set of settings.
 *
 *   const clusters = createClusters(config, log);
 *   await clusters.for(spec.cluster).submit(trainingJob(spec, run));
 */
import type { ClusterSettings } from '../core/model-spec';
import type { ReaConfig } from '../config';
import type { Logger } from '../logging';
import type { ClusterAdapter } from './adapter';
import { BullmqPool } from './bullmq-pool';
import type { JobJournalReader } from './job-journal';
import { SlurmAdapter } from './slurm';
import { KubernetesConfigError, resolveConnection } from './kubeconfig';
import { KubernetesAdapter } from './kubernetes';

export interface Clusters {
  for(settings: ClusterSettings): ClusterAdapter;
  close(): Promise<void>;
}

export class ClusterUnavailableError extends Error {
  override readonly name = 'ClusterUnavailableError';
}

function create(
  settings: ClusterSettings,
  config: ReaConfig,
  log: Logger,
  journal: JobJournalReader | undefined,
): ClusterAdapter {
  switch (settings.adapter) {
    case 'bullmq':
      return new BullmqPool({
        redisUrl: config.REA_REDIS_URL,
        prefix: config.REA_QUEUE_PREFIX,
        lockSec: config.REA_POOL_LOCK_SEC,
        ...(journal ? { journal } : {}),
      });
    case 'slurm':
      return new SlurmAdapter({
        workDir: config.REA_WORK_DIR,
        python: config.REA_PYTHON,
        projectRoot: config.root,
        binDir: config.REA_SLURM_BIN_DIR,
        node: config.REA_SLURM_NODE,
      });
    case 'kubernetes':
      try {
        return new KubernetesAdapter(settings, {
          connection: resolveConnection({ kubeconfig: config.REA_KUBECONFIG }),
          log,
        });
      } catch (err) {
        // A missing or unusable kubeconfig needs a person, not a retry.
        if (err instanceof KubernetesConfigError) throw new ClusterUnavailableError(err.message);
        throw err;
      }
  }
}

/**
 * The adapters, one per cluster settings. `journal`: the gpu-agents' job_events in rea's database,
 * where the pool finds the results of jobs that Redis forgot.
 */
export function createClusters(config: ReaConfig, log: Logger, journal?: JobJournalReader): Clusters {
  const adapters = new Map<string, ClusterAdapter>();
  return {
    for(settings) {
      const key = JSON.stringify(settings);
      let adapter = adapters.get(key);
      if (!adapter) {
        adapter = create(settings, config, log, journal);
        adapters.set(key, adapter);
      }
      return adapter;
    },
    async close() {
      await Promise.allSettled([...adapters.values()].map((a) => a.close()));
      adapters.clear();
    },
  };
}
