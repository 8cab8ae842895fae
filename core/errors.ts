/**
 * Operational failures (DESIGN.md channel 3): typed errors with a stable `code`. Bad packets are
 * never errors (they are counted drops); these are for files and devices that cannot be used.
 */

/** Every code sockcap throws, with the process exit code cmd/ maps it to. */
export const ERROR_EXIT = {
  ERR_BAD_MAGIC: 3,
  ERR_TRUNCATED_HEADER: 3,
  ERR_TRUNCATED_RECORD: 3,
  ERR_BAD_VERSION: 3,
  ERR_BAD_CAPLEN: 3,
  ERR_BAD_BLOCK: 3,
  ERR_BAD_LINKTYPE: 3,
  ERR_UNSUPPORTED_LINKTYPE: 3,
  ERR_GZIP: 3,
  ERR_OPEN: 4,
  ERR_WRITE: 5,
  ERR_OUTPUT_FORMAT: 2,
  ERR_USAGE: 2,
  ERR_NOTHING: 6,
  ERR_CAPTURE_OPEN: 7,
  /** The libpcap binding is missing or did not build. */
  ERR_CAP_MISSING: 9,
  /** No right to capture (root or CAP_NET_RAW needed). */
  ERR_CAPTURE_PERM: 10,
  /** A claim the report makes did not hold (fused connections sent payload). */
  ERR_CLAIM: 8,
} as const;

export type ErrorCode = keyof typeof ERROR_EXIT;

/** Base class of every error sockcap throws on purpose. */
export class SockcapError extends Error {
  override name = 'SockcapError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Exit status for the CLI. */
  get exitCode(): number {
    return ERROR_EXIT[this.code];
  }
}

/** A capture file that cannot be read past some point: names the file and the byte offset. */
export class CaptureFormatError extends SockcapError {
  override name = 'CaptureFormatError';
  constructor(
    code: ErrorCode,
    readonly file: string,
    readonly offset: number,
    readonly detail: string,
    /** The offset counts bytes of the decompressed data (a gzip input), not of the file. */
    readonly decompressed = false,
    /** What to do about it, after the offset. */
    readonly hint = '',
  ) {
    super(code, `${file}: ${detail} at byte offset ${offset}${decompressed ? ' of the decompressed data' : ''}${hint ? `; ${hint}` : ''}`);
  }
}
