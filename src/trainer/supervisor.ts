/**
 * The trainer's supervisor: a tiny process between the gpu-agent and the trainer that kills the
 * trainer's whole process group as soon as the agent dies (the supervisor's stdin closes) or stops
 * sending heartbeats (the agent is stopped or hung), so that a trainer never outlives the agent that
 * holds its job, and never runs on beside a copy that the pool started elsewhere.
 *
 *   node dist/src/trainer/supervisor.js 15000 python train.py --config c.json --metrics m.json
 *
 * `runTrainer` starts it as the leader of a new process group and writes a byte to its stdin every
 * second; the trainer runs in the same group, with the supervisor's stdout and stderr, so that one
 * `kill(-group)` reaches the supervisor, the trainer and everything the trainer started. Linux has
 * PR_SET_PDEATHSIG for the parent-death half, but Node cannot call prctl, and a death signal would
 * not notice a stopped parent: a pipe and a heartbeat cover both, on any POSIX system.
 */
import { spawn } from 'node:child_process';
import { writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** The line the supervisor prints (to stderr) just before it kills the group on its own. */
export const ORPHANED_PREFIX = 'rea:orphaned ';

function say(line: string): void {
  try {
    writeSync(2, `${line}\n`);
  } catch {
    // nobody is reading any more (the agent is gone): nothing to tell
  }
}

export function superviseTrainer(argv: string[]): void {
  const [staleText, program, ...args] = argv;
  const staleMs = Number(staleText);
  if (program === undefined || !(staleMs > 0)) {
    say(
      `rea:error ${JSON.stringify({ class: 'crash', message: 'usage: supervisor.js STALE_MS PROGRAM [ARG...]' })}`,
    );
    process.exit(1);
  }
  let lastBeat = performance.now();
  const killGroup = (why: string) => {
    say(`${ORPHANED_PREFIX}${JSON.stringify({ message: why })}`);
    process.kill(-process.pid, 'SIGKILL'); // the trainer, its children and this supervisor
  };

  const trainer = spawn(program, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  trainer.once('error', (err) => {
    say(
      `rea:error ${JSON.stringify({ class: 'crash', message: `cannot start trainer ${program}: ${err.message}` })}`,
    );
    process.exit(1);
  });
  trainer.once('exit', (code, signal) => {
    clearInterval(watch);
    process.stdin.destroy();
    if (signal) {
      process.kill(process.pid, signal); // die the way the trainer died, so that the agent sees it
      setTimeout(() => process.exit(1), 1000); // a signal that Node ignores (SIGPIPE)
    } else {
      process.exit(code ?? 1);
    }
  });

  process.stdin.on('data', () => {
    lastBeat = performance.now();
  });
  const agentGone = () =>
    killGroup('the gpu-agent that started this trainer is gone (its pipe closed); killed the trainer');
  process.stdin.once('end', agentGone);
  process.stdin.once('error', agentGone);
  const watch = setInterval(
    () => {
      const silentMs = performance.now() - lastBeat;
      if (silentMs > staleMs) {
        killGroup(
          `the gpu-agent sent no heartbeat for ${(silentMs / 1000).toFixed(1)}s (stopped or hung); killed the ` +
            'trainer so that it cannot run beside the copy the pool starts elsewhere',
        );
      }
    },
    Math.min(500, staleMs / 4),
  );
}

if (require.main === module) superviseTrainer(process.argv.slice(2));
