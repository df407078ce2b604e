/**
 * What real Loki clients (promtail, grafana's docker driver) POST to /loki/api/v1/push: a snappy-compressed (block
 * format, unframed) protobuf `logproto.PushRequest`. Decoded by hand, like the driver's LogEntry frames.
 *
 *   PushRequest   { repeated StreamAdapter streams = 1; }
 *   StreamAdapter { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
 *   EntryAdapter  { google.protobuf.Timestamp timestamp = 1; string line = 2; ... }
 *   Timestamp     { int64 seconds = 1; int32 nanos = 2; }
 */
import { parseSelector } from './selector.js';

export class PushDecodeError extends Error {
  override readonly name = 'PushDecodeError';
}

function varint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (let i = pos; i < buf.length; i++) {
    const b = buf[i]!;
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, i + 1];
    shift += 7n;
    if (shift > 63n) throw new PushDecodeError('varint longer than 10 bytes');
  }
  throw new PushDecodeError('truncated varint');
}

/** Snappy block format decompression (literals and the three copy element kinds). */
export function snappyDecompress(src: Buffer): Buffer {
  const [len, start] = varint(src, 0);
  if (len > 256n * 1024n * 1024n) throw new PushDecodeError(`snappy: declared length ${len} is too large`);
  const out = Buffer.alloc(Number(len));
  let o = 0;
  let i = start;
  while (i < src.length) {
    const tag = src[i++]!;
    const kind = tag & 3;
    if (kind === 0) {
      let n = tag >> 2;
      if (n >= 60) {
        const bytes = n - 59;
        if (i + bytes > src.length) throw new PushDecodeError('snappy: truncated literal length');
        n = src.readUIntLE(i, bytes);
        i += bytes;
      }
      n += 1;
      if (i + n > src.length || o + n > out.length) throw new PushDecodeError('snappy: literal runs past the end');
      src.copy(out, o, i, i + n);
      i += n;
      o += n;
      continue;
    }
    let n: number;
    let offset: number;
    if (kind === 1) {
      n = ((tag >> 2) & 7) + 4;
      offset = ((tag >> 5) << 8) | src[i++]!;
    } else if (kind === 2) {
      n = (tag >> 2) + 1;
      offset = src.readUInt16LE(i);
      i += 2;
    } else {
      n = (tag >> 2) + 1;
      offset = src.readUInt32LE(i);
      i += 4;
    }
    if (offset === 0 || offset > o || o + n > out.length) throw new PushDecodeError('snappy: bad copy');
    // Byte by byte: a copy may overlap its own output (run-length style).
    for (let k = 0; k < n; k++) out[o + k] = out[o - offset + k]!;
    o += n;
  }
  if (o !== out.length) throw new PushDecodeError(`snappy: got ${o} bytes, expected ${out.length}`);
  return out;
}

/** Calls fn(field, wireType, value) for each field; value is a bigint for varints, a Buffer for length-delimited. */
function fields(msg: Buffer, fn: (field: number, value: bigint | Buffer) => void): void {
  let pos = 0;
  while (pos < msg.length) {
    const [key, p] = varint(msg, pos);
    pos = p;
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [v, q] = varint(msg, pos);
      pos = q;
      fn(field, v);
    } else if (wire === 2) {
      const [l, q] = varint(msg, pos);
      const end = q + Number(l);
      if (end > msg.length) throw new PushDecodeError(`field ${field} runs past the message`);
      fn(field, msg.subarray(q, end));
      pos = end;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw new PushDecodeError(`unsupported wire type ${wire}`);
  }
}

export interface DecodedStream {
  stream: Record<string, string>;
  values: [string, string][];
}

/** `{a="b", c="d"}` as Prometheus prints a label set. */
export function parseLabelSet(text: string): Record<string, string> {
  const sel = parseSelector(text);
  const out: Record<string, string> = {};
  for (const m of sel.matchers) {
    if (m.op !== '=') throw new PushDecodeError(`labels ${text}: only name="value" pairs are allowed`);
    out[m.name] = m.value;
  }
  return out;
}

export function decodePushRequest(body: Buffer): DecodedStream[] {
  const streams: DecodedStream[] = [];
  fields(body, (f, v) => {
    if (f !== 1 || !Buffer.isBuffer(v)) return;
    let labels = '';
    const values: [string, string][] = [];
    fields(v, (sf, sv) => {
      if (sf === 1 && Buffer.isBuffer(sv)) labels = sv.toString('utf8');
      if (sf === 2 && Buffer.isBuffer(sv)) {
        let seconds = 0n;
        let nanos = 0n;
        let line = '';
        fields(sv, (ef, ev) => {
          if (ef === 1 && Buffer.isBuffer(ev)) {
            fields(ev, (tf, tv) => {
              if (tf === 1 && typeof tv === 'bigint') seconds = BigInt.asIntN(64, tv);
              if (tf === 2 && typeof tv === 'bigint') nanos = BigInt.asIntN(32, tv);
            });
          }
          if (ef === 2 && Buffer.isBuffer(ev)) line = ev.toString('utf8');
        });
        values.push([(seconds * 1_000_000_000n + nanos).toString(), line]);
      }
    });
    streams.push({ stream: parseLabelSet(labels), values });
  });
  return streams;
}
