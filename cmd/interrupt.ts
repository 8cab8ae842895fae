/** The exit status a shell gives a process that `sig` ended (128 + its number). */
const exitOf = (sig: NodeJS.Signals): number => 128 + (sig === 'SIGINT' ? 2 : 15);

/**
 * Ctrl-C (SIGINT) or SIGTERM while a command reads captures: the read stops at the end of the batch
 * in progress, and what was read is finished as at the end of the input (connections leave the
 * stack, readers read what they hold, files and the index are closed, the report is printed), as
 * tcpdump prints its counts when interrupted. Then the command says so on stderr and exits 130
 * (SIGINT) or 143 (SIGTERM), the status a shell gives a process the signal ended, so a script can
 * tell a cut-short run from a whole one. A second signal ends the process at once.
 */
export class Interrupt {
  private readonly ac = new AbortController();
  private sig: NodeJS.Signals | null = null;
  private readonly on = (sig: NodeJS.Signals): void => {
    if (this.sig) process.exit(exitOf(sig));
    this.sig = sig;
    this.ac.abort();
  };

  constructor() {
    process.on('SIGINT', this.on);
    process.on('SIGTERM', this.on);
  }

  /** Aborted at the first signal (runPipeline's `signal`). */
  get signal(): AbortSignal {
    return this.ac.signal;
  }

  /** The run is over: a signal ends the process as it would have without this. */
  dispose(): void {
    process.off('SIGINT', this.on);
    process.off('SIGTERM', this.on);
  }

  /** After the command's output: say the run was cut short, and set the exit status. */
  report(frames: number): void {
    this.dispose();
    if (!this.sig) return;
    process.stderr.write(`sockcap: interrupted by ${this.sig} after ${frames.toLocaleString('en-US')} frames: the output covers them\n`);
    process.exitCode = exitOf(this.sig);
  }
}
