import { Command } from '@oclif/core/command';
import { ERROR_EXIT, SockcapError } from '../core/errors.js';
import { usageLine } from './argv.js';

/**
 * Base of every sockcap command: known failures become one line on stderr and a distinct exit
 * code (DESIGN.md channel 3); anything else is a bug and keeps oclif's report.
 */
export abstract class SockcapCommand extends Command {
  /** --json output: plain JSON (oclif colorizes it, which costs seconds on 100,000 connections). */
  override logJson(json: unknown): void {
    if (json === undefined) return; // the command wrote its JSON itself, as a stream
    process.stdout.write(JSON.stringify(json, null, 2) + '\n');
  }

  /** Print one line for a known failure and exit with its code. */
  protected fail(err: SockcapError): never {
    process.stderr.write(`sockcap: ${err.message}\n`);
    return this.exit(err.exitCode);
  }

  /**
   * A run that produced results and then met a failure (a corrupt record after good ones): the
   * results stand, the failure is one line on stderr and sets the exit code.
   */
  protected failAfter(err: SockcapError): void {
    process.stderr.write(`sockcap: ${err.message}\n`);
    process.exitCode = err.exitCode;
  }

  protected override async catch(err: Error & { exitCode?: number; code?: string; oclif?: { exit?: number }; flags?: unknown }): Promise<unknown> {
    if (err instanceof SockcapError) this.fail(err);
    const line = usageLine(this.id ?? '', err, this.ctor.flags ?? {});
    if (line !== null) {
      process.stderr.write(`sockcap: ${line}\n`);
      return this.exit(ERROR_EXIT.ERR_USAGE);
    }
    // fail() inside run(): its one line is on stderr; oclif's catch would print the exit as an
    // error object after a --json report (two documents on stdout) and exit 1 instead
    if (err.code === 'EEXIT' && err.oclif?.exit !== undefined) throw err;
    return super.catch(err);
  }
}
