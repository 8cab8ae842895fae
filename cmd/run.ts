#!/usr/bin/env node
import { execute } from '@oclif/core';

// `sockcap follow ... | head`: a reader that went away is not an error
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

await execute({ dir: import.meta.url });
