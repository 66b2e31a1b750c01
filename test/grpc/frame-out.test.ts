import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameOut } from '../../src/grpc/http2/frame-out.js';
import { rawFrame as frame } from './raw-http2.js';

const payload = (bytes: number, fill: number): Buffer => Buffer.alloc(bytes, fill);

test('connections writing in turn each get exactly their own frames, in order, in few parts', () => {
  const a = new FrameOut();
  const b = new FrameOut();
  const wantA: Buffer[] = [];
  const wantB: Buffer[] = [];
  for (let i = 0; i < 50; i++) {
    const out = i % 3 === 0 ? b : a;
    const want = out === a ? wantA : wantB;
    const p = payload(i * 7, i);
    out.frame(0, i & 1, 2 * i + 1, p);
    want.push(frame(0, i & 1, 2 * i + 1, p));
  }
  const bytesA = a.bytes;
  const partsA = a.take();
  assert.equal(bytesA, Buffer.concat(wantA).length);
  assert.deepEqual(Buffer.concat(partsA), Buffer.concat(wantA));
  assert.deepEqual(Buffer.concat(b.take()), Buffer.concat(wantB));
  assert.equal(a.bytes, 0);
  assert.deepEqual(a.take(), []);

  // Frames written with no other connection in between are one contiguous part.
  const c = new FrameOut();
  for (let i = 0; i < 10; i++) c.frame(1, 4, 3, payload(20, i));
  assert.equal(c.take().length, 1);
});

test('a large payload is written as given, between the runs around it', () => {
  const out = new FrameOut();
  const large = payload(100_000, 7);
  out.frame(1, 4, 1, payload(10, 1));
  out.frame(0, 0, 1, large);
  out.frame(0, 1, 1, payload(5, 2));
  const parts = out.take();
  assert.ok(parts.includes(large), 'the large payload was copied');
  assert.deepEqual(Buffer.concat(parts), Buffer.concat([frame(1, 4, 1, payload(10, 1)), frame(0, 0, 1, large), frame(0, 1, 1, payload(5, 2))]));
});

test('bytes taken are never written over, across chunk replacements', () => {
  const out = new FrameOut();
  const other = new FrameOut();
  const taken: Array<{ parts: Buffer[]; want: Buffer }> = [];
  // about 11 MB of frames (hundreds of chunks), in takes of a few frames each, another connection writing between.
  for (let round = 0; round < 2000; round++) {
    const want: Buffer[] = [];
    for (let i = 0; i < 3; i++) {
      const p = payload(400 + ((round * 31 + i) % 3000), (round + i) & 0xff);
      out.frame(0, 0, 2 * round + 1, p);
      want.push(frame(0, 0, 2 * round + 1, p));
      other.frame(8, 0, 0, payload(4, round & 0xff));
    }
    taken.push({ parts: out.take(), want: Buffer.concat(want) });
    other.take();
  }
  for (const { parts, want } of taken) assert.deepEqual(Buffer.concat(parts), want);
});
