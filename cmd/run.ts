#!/usr/bin/env node
import { execute } from '@oclif/core';

// extract creates files in libuv's thread pool; creating a file is slow on some filesystems, so
// more threads than the default 4 (must be set before the pool's first use)
process.env.UV_THREADPOOL_SIZE ??= '16';

// `sockcap follow ... | head`: a reader that went away is not an error
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

await execute({ dir: import.meta.url });
