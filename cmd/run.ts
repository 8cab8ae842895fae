#!/usr/bin/env node
// `sockcap follow ... | head`: a reader that went away is not an error
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

// oclif and the commands come from one bundle (dist/sockcap.js, made by `npm run build` from
// cli.ts): one file to load instead of ~150
const cli = (await import(new URL('../sockcap.js', import.meta.url).href)) as typeof import('./cli.js');
await cli.execute({ dir: import.meta.url });
