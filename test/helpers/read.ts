import { type CaptureInput, readCapture, readCaptures } from '../../core/capture/reader.js';
import { CaptureSession } from '../../core/capture/session.js';
import type { Mbuf } from '../../core/mbuf/mbuf.js';

/** A frame as plain data, for comparisons. */
export interface FrameData {
  frameNo: number;
  tsSec: number;
  tsNsec: number;
  caplen: number;
  origLen: number;
  linktype: number;
  hex: string;
}

export const frameData = (m: Mbuf): FrameData => ({
  frameNo: m.hdr!.frameNo,
  tsSec: m.hdr!.tsSec,
  tsNsec: m.hdr!.tsNsec,
  caplen: m.hdr!.caplen,
  origLen: m.hdr!.origLen,
  linktype: m.hdr!.linktype,
  hex: Buffer.from(m.data()).toString('hex'),
});

/** Read every frame of some inputs; an error is returned with the frames read before it. */
export async function readAll(inputs: CaptureInput | CaptureInput[], session = new CaptureSession()): Promise<{
  frames: FrameData[]; error: (Error & { code?: string; offset?: number }) | null; session: CaptureSession;
}> {
  const frames: FrameData[] = [];
  let error = null;
  try {
    const gen = Array.isArray(inputs) ? readCaptures(inputs, session) : readCapture(inputs, session);
    for await (const batch of gen) for (const m of batch) frames.push(frameData(m));
  } catch (e) {
    error = e as Error;
  }
  return { frames, error, session };
}
