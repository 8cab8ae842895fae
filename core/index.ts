/**
 * sockcap as a library: `open()` for connections as Node streams, and the pieces the CLI is built
 * from (readers, the Stack, the pipeline, sockets).
 */
export { open, type CapturedConnection, type OpenOptions } from './api.js';
export { CaptureSession, type Batch, type Iface, type FileInfo } from './capture/session.js';
export { readCapture, readCaptures, type CaptureInput } from './capture/reader.js';
export { CaptureOutput, type OutFormat } from './capture/output.js';
export { Stack, type StackOptions } from './stack.js';
export { runPipeline, type PipelineResult, type PipelineOptions } from './pipeline.js';
export { replaySummary, type ReplaySummary } from './report.js';
export type { ConnSummary, DirSummary } from './tcp/summary.js';
export { DrainApp, type SocketApp } from './socket/reader.js';
export { Socket, soreceive_stream, MSG_PEEK, MSG_WAITALL, type SoError, type ReceiveResult } from './socket/socket.js';
export { Connection, type Dir } from './net/in-pcb.js';
export { Mbuf, m_adj, m_split, m_copym, m_cat, m_copydata, m_length, type PktHdr } from './mbuf/mbuf.js';
export { SockcapError, CaptureFormatError, type ErrorCode } from './errors.js';
