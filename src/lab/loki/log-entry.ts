/**
 * The frames Docker writes into a log-driver plugin's FIFO: a uint32 big-endian length, then a protobuf `LogEntry`
 * (moby api/types/plugins/logdriver/entry.proto). Decoded by hand: four fields do not justify a protobuf runtime
 * inside the plugin's rootfs.
 *
 *   message LogEntry { string source = 1; int64 time_nano = 2; bytes line = 3; bool partial = 4;
 *                      PartialLogEntryMetadata partial_log_metadata = 5; }
 */
export interface LogEntry {
  source: string;
  /** Nanoseconds since the epoch. A bigint: a JS number loses the last digits of a nanosecond timestamp. */
  timeNano: bigint;
  line: Buffer;
  partial: boolean;
}

/** Docker's own reader refuses frames above 1e6 bytes; so does this one, rather than allocate what a bad length asks. */
export const MAX_FRAME_BYTES = 1_000_000;

export class FrameError extends Error {
  override readonly name = 'FrameError';
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (let i = pos; i < buf.length; i++) {
    const b = buf[i]!;
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [BigInt.asIntN(64, result), i + 1];
    shift += 7n;
    if (shift > 63n) throw new FrameError('varint longer than 10 bytes');
  }
  throw new FrameError('truncated varint');
}

/** Decodes one protobuf LogEntry message (without its length prefix). Unknown fields are skipped. */
export function decodeLogEntry(msg: Buffer): LogEntry {
  const entry: LogEntry = { source: '', timeNano: 0n, line: Buffer.alloc(0), partial: false };
  let pos = 0;
  while (pos < msg.length) {
    const [key, afterKey] = readVarint(msg, pos);
    pos = afterKey;
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === WIRE_VARINT) {
      const [v, next] = readVarint(msg, pos);
      pos = next;
      if (field === 2) entry.timeNano = v;
      else if (field === 4) entry.partial = v !== 0n;
    } else if (wire === WIRE_LEN) {
      const [len, next] = readVarint(msg, pos);
      const end = next + Number(len);
      if (len < 0n || end > msg.length) throw new FrameError(`field ${field}: length ${len} runs past the message`);
      const bytes = msg.subarray(next, end);
      if (field === 1) entry.source = bytes.toString('utf8');
      else if (field === 3) entry.line = Buffer.from(bytes);
      pos = end;
    } else if (wire === WIRE_I64) {
      pos += 8;
    } else if (wire === WIRE_I32) {
      pos += 4;
    } else {
      throw new FrameError(`field ${field}: unsupported wire type ${wire}`);
    }
  }
  if (pos !== msg.length) throw new FrameError('message ends inside a field');
  return entry;
}

function writeVarint(out: number[], value: bigint): void {
  let v = BigInt.asUintN(64, value);
  while (v >= 0x80n) {
    out.push(Number((v & 0x7fn) | 0x80n));
    v >>= 7n;
  }
  out.push(Number(v));
}

/** Encodes a LogEntry with its length prefix, as the daemon does (and as ReadLogs answers). */
export function encodeLogEntryFrame(entry: LogEntry): Buffer {
  const head: number[] = [];
  const parts: Buffer[] = [];
  const flush = () => {
    if (head.length) parts.push(Buffer.from(head.splice(0)));
  };
  if (entry.source) {
    const s = Buffer.from(entry.source, 'utf8');
    head.push((1 << 3) | WIRE_LEN);
    writeVarint(head, BigInt(s.length));
    flush();
    parts.push(s);
  }
  if (entry.timeNano !== 0n) {
    head.push((2 << 3) | WIRE_VARINT);
    writeVarint(head, entry.timeNano);
  }
  if (entry.line.length) {
    head.push((3 << 3) | WIRE_LEN);
    writeVarint(head, BigInt(entry.line.length));
    flush();
    parts.push(entry.line);
  }
  if (entry.partial) head.push((4 << 3) | WIRE_VARINT, 1);
  flush();
  const body = Buffer.concat(parts);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/** Splits a byte stream into LogEntry frames; feed it chunks as they arrive, in order. */
export class FrameSplitter {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): LogEntry[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: LogEntry[] = [];
    let pos = 0;
    while (this.pending.length - pos >= 4) {
      const len = this.pending.readUInt32BE(pos);
      if (len > MAX_FRAME_BYTES) throw new FrameError(`frame of ${len} bytes exceeds ${MAX_FRAME_BYTES}`);
      if (this.pending.length - pos - 4 < len) break;
      out.push(decodeLogEntry(this.pending.subarray(pos + 4, pos + 4 + len)));
      pos += 4 + len;
    }
    this.pending = this.pending.subarray(pos);
    return out;
  }

  /** Bytes of an incomplete frame still waiting for the rest. */
  get buffered(): number {
    return this.pending.length;
  }
}
