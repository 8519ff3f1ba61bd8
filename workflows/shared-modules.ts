/**
 * Modules every workflow in a worker shares (src/temporal/bundle.ts preloads this file before any
 * workflow starts, and Temporal deep-freezes what it loaded). Each must keep no per-workflow state and
 * call no workflow API at import.
 *
 * Zod declares itself free of side effects, so a bare `require('zod')` in the preload list is dropped
 * by webpack; this module uses it, which keeps it (and makes its modules the shared ones).
 */
import { z } from 'zod';

// Zod sets its defaults (English messages, the containers' memoizer) on a global the first time a
// schema and a container are built. Frozen after the preload, that global could not take them then,
// and every workflow's first schema would fail: build and parse both here, before the freeze.
z.object({ n: z.number(), s: z.array(z.string()).optional() })
  .strict()
  .safeParse({ n: 'not a number', x: 1 });

export const sharedZod = z;
