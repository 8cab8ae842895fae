/**
 * sockcap as a library: `open()` for connections as Node streams, and the pieces the CLI is built
 * from (readers, the Stack, the pipeline, sockets, splicing, fusing, live capture). Nothing here
 * loads libpcap until a LiveCapture is opened.
 */
export { open, type CapturedConnection, type OpenOptions } from './api.js';
export { CaptureSession, type Batch, type Iface, type FileInfo } from './capture/session.js';
export { readCapture, readCaptures, type CaptureInput } from './capture/reader.js';
export { CaptureFilter, bpfFilter, parseBpf, type BpfProgram, type BpfCompiler } from './capture/bpf.js';
export { ChunkZone } from './capture/zone.js';
export { CHUNK_SIZE } from './capture/chunks.js';
export { CaptureOutput, type OutFormat } from './capture/output.js';
export { Stack, type StackOptions } from './stack.js';
export { runPipeline, type PipelineResult, type PipelineOptions } from './pipeline.js';
export { replaySummary, type ReplaySummary } from './report.js';
export type { ConnSummary, DirSummary } from './tcp/summary.js';
export { DrainApp, type SocketApp } from './socket/reader.js';
export { Socket, soreceive_stream, MSG_PEEK, MSG_WAITALL, type SoError, type ReceiveResult } from './socket/socket.js';
export { Connection, type Dir } from './net/in-pcb.js';
export { Mbuf, Ext, m_adj, m_split, m_copym, m_cat, m_copydata, m_length, m_pin, m_unpin, type PktHdr } from './mbuf/mbuf.js';
export { SockcapError, CaptureFormatError, type ErrorCode } from './errors.js';
export { sosplice, somove, sounsplice, soidle, type SpliceArgs } from './socket/splice.js';
export { type ProtoSw, type SoSplice, type SpliceEnv } from './socket/socket.js';
export { SpliceModel, type SpliceSpec, type SpliceRecord } from './splice-model.js';
export { TcpFuse, type FuseOptions, type FuseRecord, type FuseSeq } from './tcp/tcp-fuse.js';
export { fuseSummary, type FuseSummary } from './fuse-report.js';
export { LiveCapture, liveDevices, type LiveOptions, type LiveStats, type LiveDevice } from './capture/live.js';
export type { StackHook, Output, SegmentFrame } from './hook.js';
