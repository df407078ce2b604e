import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePushRequest, parseLabelSet, snappyDecompress } from '../../../src/lab/loki/push-proto.js';
import { type LokiReceiver, runLokiReceiver } from '../../../src/lab/loki/receiver.js';

// A minimal protobuf writer for the test's fixtures.
function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  while (v >= 0x80n) {
    out.push(Number((v & 0x7fn) | 0x80n));
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}
const ld = (field: number, b: Buffer) =>
  Buffer.concat([Buffer.from([(field << 3) | 2, ...varint(BigInt(b.length))]), b]);
const vi = (field: number, n: bigint) => Buffer.from([(field << 3) | 0, ...varint(n)]);
const str = (s: string) => Buffer.from(s, 'utf8');

function pushRequest(streams: { labels: string; entries: [bigint, number, string][] }[]): Buffer {
  return Buffer.concat(
    streams.map((s) =>
      ld(
        1,
        Buffer.concat([
          ld(1, str(s.labels)),
          ...s.entries.map(([sec, nanos, line]) =>
            ld(2, Buffer.concat([ld(1, Buffer.concat([vi(1, sec), vi(2, BigInt(nanos))])), ld(2, str(line))])),
          ),
        ]),
      ),
    ),
  );
}

/** Snappy with literals only (valid snappy, the simplest encoder there is). */
function snappyLiterals(b: Buffer): Buffer {
  const parts: Buffer[] = [Buffer.from(varint(BigInt(b.length)))];
  for (let i = 0; i < b.length; i += 60) {
    const chunk = b.subarray(i, i + 60);
    parts.push(Buffer.from([(chunk.length - 1) << 2]), chunk);
  }
  return Buffer.concat(parts);
}

describe('snappy block decompression', () => {
  it('expands literals and overlapping copies', () => {
    // "abc" literal, then a 1-byte-offset copy of 9 bytes at offset 3 (overlapping its own output)
    const block = Buffer.from([12, (3 - 1) << 2, ...Buffer.from('abc'), 1 | ((9 - 4) << 2), 3]);
    expect(snappyDecompress(block).toString()).toBe('abcabcabcabc');
    // 2-byte-offset copy: "hello " + copy(5, offset 6) -> "hello hello"
    const two = Buffer.from([11, (6 - 1) << 2, ...Buffer.from('hello '), 2 | ((5 - 1) << 2), 6, 0]);
    expect(snappyDecompress(two).toString()).toBe('hello hello');
    expect(() => snappyDecompress(Buffer.from([5, 1 | (1 << 2), 9]))).toThrow(/bad copy/);
  });
});

describe('protobuf push requests', () => {
  it('decodes streams, label sets and timestamps', () => {
    const body = pushRequest([
      { labels: '{container_name="api", host="vps1"}', entries: [[1_795_399_345n, 225_248_225, 'GET /']] },
    ]);
    expect(decodePushRequest(body)).toEqual([
      { stream: { container_name: 'api', host: 'vps1' }, values: [['1795399345225248225', 'GET /']] },
    ]);
    expect(() => parseLabelSet('{a="x", b!="c"}')).toThrow(/name="value"/);
  });

  let receiver: LokiReceiver;
  beforeAll(async () => {
    receiver = await runLokiReceiver({ port: 0 });
  });
  afterAll(async () => {
    await receiver.close();
  });

  it('are accepted by the receiver (snappy protobuf, as promtail sends) and found by query_range', async () => {
    const body = snappyLiterals(
      pushRequest([
        { labels: '{container_name="proto-app", source="stdout"}', entries: [[1_795_399_000n, 5, 'from promtail']] },
      ]),
    );
    const res = await fetch(`${receiver.pushUrl}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf' },
      body,
    });
    expect(res.status).toBe(204);
    const q = await fetch(
      `${receiver.url}/loki/api/v1/query_range?query=${encodeURIComponent('{container_name="proto-app"}')}&start=1795398000000000000&end=1795400000000000000`,
    );
    expect(((await q.json()) as { data: { result: unknown[] } }).data.result).toEqual([
      { stream: { container_name: 'proto-app', source: 'stdout' }, values: [['1795399000000000005', 'from promtail']] },
    ]);
    const bad = await fetch(receiver.pushUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf' },
      body: 'nope',
    });
    expect(bad.status).toBe(400);
  });
});
