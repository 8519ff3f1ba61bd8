/**
 * Watches a trainer's process group from outside, for the evidence that tells an OOM kill from any
 * other kill that rea did not send: the group's peak resident memory, and the OOM-kill counters of
 * the memory cgroups its processes live in (cgroup v2 `memory.events`, v1 `memory.oom_control`:
 * `oom_kill N`). Linux only (/proc and /sys/fs/cgroup); elsewhere, and where they cannot be read, it
 * sees nothing and a foreign kill is classed `lost`.
 *
 *   const watch = watchMemory(child.pid); ... const seen = watch.stop(); // after the exit
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** What the watch saw of a process group over its life. */
export interface MemorySeen {
  /** Peak resident memory of the group (MB), sampled; undefined where /proc cannot be read. */
  peakRssMb?: number;
  /** Memory cgroups whose OOM-kill count rose while the group lived. */
  oomKills: { cgroup: string; before: number; after: number }[];
}

export interface MemoryWatch {
  /** Stops sampling and rereads the cgroups' OOM-kill counts. */
  stop(): MemorySeen;
}

const SAMPLE_MS = 200;
const CGROUP_ROOT = '/sys/fs/cgroup';

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The processes of group `pgid`: each pid's resident memory (kB) and its memory cgroup's events file. */
function groupProcesses(pgid: number): { pid: number; rssKb: number; events?: string }[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const found: { pid: number; rssKb: number; events?: string }[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readText(`/proc/${entry}/stat`);
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'.
    const fields = stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (!fields || Number(fields[2]) !== pgid) continue;
    const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(readText(`/proc/${entry}/status`) ?? '');
    found.push({ pid: Number(entry), rssKb: rss ? Number(rss[1]) : 0, events: oomEventsFile(Number(entry)) });
  }
  return found;
}

/** The file that counts OOM kills in the memory cgroup of `pid`, when there is one to read. */
export function oomEventsFile(pid: number): string | undefined {
  const lines = readText(`/proc/${pid}/cgroup`)?.split('\n') ?? [];
  for (const line of lines) {
    const [, controllers, where] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (where === undefined) continue;
    const file =
      controllers === ''
        ? path.join(CGROUP_ROOT, where, 'memory.events') // v2: the unified hierarchy
        : controllers?.split(',').includes('memory')
          ? path.join(CGROUP_ROOT, 'memory', where, 'memory.oom_control') // v1
          : undefined;
    if (file && existsSync(file)) return file;
  }
  return undefined;
}

export function oomKillCount(file: string): number | undefined {
  const m = /^oom_kill (\d+)$/m.exec(readText(file) ?? '');
  return m ? Number(m[1]) : undefined;
}

/** Samples group `pgid` (its leader's pid) every 200 ms until stopped. */
export function watchMemory(pgid: number): MemoryWatch {
  let peakKb: number | undefined;
  const before = new Map<string, number>();
  const remember = (file: string | undefined) => {
    if (file === undefined || before.has(file)) return;
    const count = oomKillCount(file);
    if (count !== undefined) before.set(file, count);
  };
  // The leader's cgroup at once: an OOM kill may come before the first sample.
  remember(oomEventsFile(pgid));
  const sample = () => {
    const procs = groupProcesses(pgid);
    if (!procs.length) return;
    // The supervisor (the group's leader, a small Node process) is rea's, not the trainer's memory.
    const kb = procs.reduce((sum, p) => sum + (p.pid === pgid ? 0 : p.rssKb), 0);
    peakKb = Math.max(peakKb ?? 0, kb);
    for (const p of procs) remember(p.events);
  };
  sample();
  const timer = setInterval(sample, SAMPLE_MS);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      const oomKills = [...before].flatMap(([cgroup, count]) => {
        const after = oomKillCount(cgroup);
        return after !== undefined && after > count ? [{ cgroup, before: count, after }] : [];
      });
      return { ...(peakKb !== undefined ? { peakRssMb: peakKb / 1024 } : {}), oomKills };
    },
  };
}
