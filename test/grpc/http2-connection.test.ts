import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { Http2Connection, type Http2ConnectionOptions } from '../../src/grpc/http2/connection.js';
import type { ServerStream } from '../../src/grpc/http2/stream.js';
import { encodeHeaders } from '../../src/grpc/http2/hpack.js';
import { TurnBudget, type Pausable } from '../../src/grpc/http2/turn-budget.js';
import { WAIT_MS } from './helpers.js';
import { rawFrame } from './raw-http2.js';

/** A plain-text server of Http2Connections on 127.0.0.1:0; `handle` answers each stream. */
async function serve(handle: (stream: ServerStream, headers: http2.IncomingHttpHeaders) => void, options: Partial<Http2ConnectionOptions> = {}) {
  const connections: Http2Connection[] = [];
  const server = net.createServer((socket) => connections.push(new Http2Connection(socket, { maxConcurrentStreams: 100, ...options, onStream: handle })));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    connections,
    close: async () => {
      for (const c of connections) c.destroy();
      server.close();
    },
  };
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** The error code of the last GOAWAY frame in what a server sent, or undefined. */
function goawayCode(bytes: Buffer): number | undefined {
  let code: number | undefined;
  for (let at = 0; at + 9 <= bytes.length; at += 9 + bytes.readUIntBE(at, 3)) {
    if (bytes[at + 3] === 7) code = bytes.readUInt32BE(at + 9 + 4);
  }
  return code;
}

/** Reads a client stream to its end: status, body, trailers. */
function collect(stream: http2.ClientHttp2Stream): Promise<{ status: number; body: Buffer; trailers: http2.IncomingHttpHeaders; rstCode: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no end within ${WAIT_MS} ms`)), WAIT_MS);
    let status = 0;
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => undefined);
    stream.on('close', () => {
      clearTimeout(timer);
      resolve({ status, body: Buffer.concat(chunks), trailers, rstCode: stream.rstCode });
    });
  });
}

/** Echoes the request body back, with trailers, as a gRPC server answers. */
function echo(stream: ServerStream): void {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-bytes': String(Buffer.concat(chunks).length) }));
    stream.end(Buffer.concat(chunks));
  });
}

describe('HTTP/2 connections (src/grpc/http2) against node:http2 clients', { timeout: 60_000 }, () => {
  const servers: Array<{ close(): Promise<void> }> = [];
  after(async () => {
    for (const s of servers) await s.close();
  });

  /**
   * Sends `blocks` on a raw connection as the HEADERS (ending the stream) of streams 1, 3, 5, ...;
   * gives the request headers the server took, once `expected` came or the wait ran out.
   */
  const headersTaken = async (blocks: readonly Buffer[], expected = blocks.length): Promise<http2.IncomingHttpHeaders[]> => {
    const seen: http2.IncomingHttpHeaders[] = [];
    const server = await serve((stream, headers) => {
      seen.push(headers);
      stream.respond({ ':status': 200 }, { endStream: true });
    });
    servers.push(server);
    const socket = net.connect(server.port, '127.0.0.1');
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.write(Buffer.concat([PREFACE, rawFrame(4, 0, 0, Buffer.alloc(0)), ...blocks.map((b, i) => rawFrame(1, 0x5, 2 * i + 1, b))]));
    const deadline = Date.now() + WAIT_MS;
    while (seen.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    socket.destroy();
    return seen;
  };

  it('answers many streams at once on one connection, each with its own body and trailers', async () => {
    const server = await serve(echo);
    servers.push(server);
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const stream = session.request({ ':method': 'POST', ':path': `/echo/${i}`, 'content-type': 'application/grpc' });
        stream.end(Buffer.from(`request ${i}`));
        return collect(stream);
      }),
    );
    session.close();
    results.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), `request ${i}`);
      assert.equal(r.trailers['grpc-status'], '0');
      assert.equal(r.rstCode, 0);
    });
  });

  it("yields the event loop during a burst (every chunk after a turn's budget pauses its socket) and still answers every stream", async () => {
    // A clock that moves on at every chunk, and a budget of 0: every chunk after a turn's first pauses.
    let clock = 0;
    let pauses = 0;
    const turn = new (class extends TurnBudget {
      override reading(reader: Pausable): void {
        const socket = reader as net.Socket;
        const was = socket.isPaused();
        super.reading(reader);
        if (!was && socket.isPaused()) pauses++;
      }
    })(0, () => clock++);
    const server = await serve(echo, { turn });
    servers.push(server);
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    const body = (i: number): Buffer => Buffer.alloc(16 * 1024, i % 251);
    const results = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const stream = session.request({ ':method': 'POST', ':path': `/echo/${i}`, 'content-type': 'application/grpc' });
        stream.end(body(i));
        return collect(stream);
      }),
    );
    session.close();
    results.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.ok(r.body.equals(body(i)), `stream ${i}'s body`);
      assert.equal(r.trailers['grpc-status'], '0');
    });
    assert.ok(pauses > 0, 'the burst spanned turns');
  });

  it('moves bodies far larger than every window both ways (flow control, CONTINUATION-free large headers)', async () => {
    const server = await serve(echo, { streamWindow: 65_535, connectionWindow: 65_535 * 2 });
    servers.push(server);
    // The client's own windows stay at 64 KiB: the server must wait for its WINDOW_UPDATEs.
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    const body = Buffer.alloc(5 * 1024 * 1024, 7);
    body.writeUInt32BE(0xdeadbeef, body.length - 4);
    const streams = [0, 1, 2].map(() => session.request({ ':method': 'POST', ':path': '/big', 'x-long': 'v'.repeat(8000) }));
    for (const stream of streams) stream.end(body);
    const results = await Promise.all(streams.map(collect));
    session.close();
    for (const r of results) {
      assert.equal(r.body.length, body.length);
      assert.ok(r.body.equals(body));
      assert.equal(r.trailers['x-bytes'], String(body.length));
    }
  });

  it('a paused stream stops the client at its window, and resumes it', async () => {
    let paused: ServerStream | undefined;
    let received = 0;
    const server = await serve(
      (stream) => {
        paused = stream;
        stream.on('data', (c: Buffer) => (received += c.length));
        stream.pause();
        stream.on('end', () => {
          stream.respond({ ':status': 200 }, { endStream: true });
        });
      },
      { streamWindow: 65_535 },
    );
    servers.push(server);
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    const stream = session.request({ ':method': 'POST', ':path': '/slow' });
    const done = collect(stream);
    stream.end(Buffer.alloc(1024 * 1024));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(received, 0, 'a paused stream delivers nothing');
    // The client could send no more than the stream's window.
    assert.ok(stream.bufferSize >= 1024 * 1024 - 65_535 * 2, `client still holds ${stream.bufferSize} bytes`);
    paused!.resume();
    const result = await done;
    session.close();
    assert.equal(result.status, 200);
    assert.equal(received, 1024 * 1024);
  });

  it("a client that resets a stream closes it with the client's code", async () => {
    const closed = new Promise<number>((resolve) => {
      void serve((stream) => {
        stream.on('data', () => undefined);
        stream.on('close', () => resolve(stream.rstCode));
      }).then((s) => {
        servers.push(s);
        const session = http2.connect(`http://127.0.0.1:${s.port}`);
        const stream = session.request({ ':method': 'POST', ':path': '/reset' });
        stream.write(Buffer.from('x'));
        setTimeout(() => {
          stream.close(http2.constants.NGHTTP2_CANCEL);
          session.close();
        }, 50);
      });
    });
    assert.equal(await closed, http2.constants.NGHTTP2_CANCEL);
  });

  it('answers PING, and close() sends GOAWAY, lets the open stream finish, then ends the socket', async () => {
    let held: ServerStream | undefined;
    const server = await serve((stream) => {
      held = stream;
      stream.on('data', () => undefined);
    });
    servers.push(server);
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    session.on('error', () => undefined);
    await once(session, 'connect');
    const rtt = await new Promise<number>((resolve, reject) => session.ping((err, duration) => (err ? reject(err) : resolve(duration))));
    assert.ok(rtt >= 0);
    const stream = session.request({ ':method': 'POST', ':path': '/held' });
    stream.end();
    const done = collect(stream);
    await new Promise((r) => setTimeout(r, 50));
    const goaway = once(session, 'goaway');
    server.connections[0]!.close();
    await goaway;
    held!.respond({ ':status': 200 }, { endStream: true });
    assert.equal((await done).status, 200);
    await once(session, 'close');
  });

  it('refuses a stream beyond the concurrency limit, and answers a header list too large with 431', async () => {
    const server = await serve((stream) => stream.on('data', () => undefined), { maxConcurrentStreams: 2, maxHeaderListBytes: 1024 });
    servers.push(server);
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    session.on('error', () => undefined);
    await once(session, 'remoteSettings');
    assert.equal(session.remoteSettings.maxConcurrentStreams, 2);
    const big = collect(session.request({ ':method': 'POST', ':path': '/big-headers', 'x-big': 'v'.repeat(2000) }));
    assert.equal((await big).status, 431);
    session.destroy();
  });

  it('ends a connection that does not speak HTTP/2 with GOAWAY PROTOCOL_ERROR', async () => {
    const server = await serve(echo);
    servers.push(server);
    const socket = net.connect(server.port, '127.0.0.1');
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    await once(socket, 'end');
    socket.destroy();
    // SETTINGS, WINDOW_UPDATE, then GOAWAY with PROTOCOL_ERROR (1).
    assert.equal(goawayCode(Buffer.concat(chunks)), 1);
  });

  it('closes a connection idle for idleMs, and one that does not answer its keepalive PING', async () => {
    const idle = await serve(echo, { idleMs: 100 });
    servers.push(idle);
    const session = http2.connect(`http://127.0.0.1:${idle.port}`);
    session.on('error', () => undefined);
    await once(session, 'goaway');
    session.destroy();

    const silent = await serve(echo, { keepaliveMs: 50, keepaliveTimeoutMs: 100 });
    servers.push(silent);
    const socket = net.connect(silent.port, '127.0.0.1');
    socket.on('data', () => undefined); // reads, never answers
    socket.write(Buffer.concat([PREFACE, rawFrame(4, 0, 0, Buffer.alloc(0))]));
    const started = Date.now();
    await once(socket, 'close');
    assert.ok(Date.now() - started < WAIT_MS);
  });

  it('closes a connection whose client resets streams as fast as it opens them (rapid reset)', async () => {
    let opened = 0;
    const server = await serve(() => opened++);
    servers.push(server);
    const socket = net.connect(server.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    const block = encodeHeaders([
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', '/x'],
      [':authority', 'a'],
    ]);
    const cancel = Buffer.from([0, 0, 0, 8]);
    const frames = [PREFACE, rawFrame(4, 0, 0, Buffer.alloc(0))];
    for (let id = 1; id < 2 * 3000; id += 2) frames.push(rawFrame(1, 0x4, id, block), rawFrame(3, 0, id, cancel));
    socket.write(Buffer.concat(frames));
    await once(socket, 'close');
    assert.equal(goawayCode(Buffer.concat(chunks)), 0xb, 'GOAWAY ENHANCE_YOUR_CALM');
    // The 1,001st reset in a second closes the connection; nothing it sent after that is read.
    assert.equal(opened, 1001, `${opened} streams reached the handler`);
  });

  it('hands header names Object.prototype holds (constructor, __proto__) over as plain values', async () => {
    const request = (extra: Array<[string, string]>): Buffer => encodeHeaders([[':method', 'POST'], [':scheme', 'http'], [':path', '/x'], ...extra]);
    const blocks = [
      request([
        ['constructor', 'c'],
        ['__proto__', 'p'],
      ]),
      request([['x-a', '1']]),
    ];
    const seen = await headersTaken(blocks);
    assert.equal(seen.length, 2);
    assert.deepEqual(Object.keys(seen[0]!), [':method', ':scheme', ':path', 'constructor', '__proto__']);
    assert.equal(seen[0]!['constructor'], 'c');
    // biome-ignore lint/suspicious/noProto: a header named __proto__ must be an own property
    assert.equal(seen[0]!['__proto__'], 'p');
    assert.equal(seen[1]!['x-a'], '1');
  });

  it("checks again each value that changed in a block with the last good block's names (te, content-length, an empty :path)", async () => {
    // The same names in every block; literal fields, so each block carries its own values.
    const request = (path: string, te: string, length: string, a: string): Buffer =>
      encodeHeaders([
        [':method', 'POST'],
        [':scheme', 'http'],
        [':path', path],
        ['te', te],
        ['content-length', length],
        ['x-a', a],
      ]);
    const blocks = [
      request('/x', 'trailers', '0', '1'),
      request('/y', 'trailers', '0', '2'),
      request('/x', 'gzip', '0', 'bad te'),
      request('', 'trailers', '0', 'empty path'),
      request('/x', 'trailers', 'zero', 'bad length'),
      request('/z', 'trailers', '0', '3'),
    ];
    const seen = await headersTaken(blocks, 3);
    assert.deepEqual(
      seen.map((h) => [h[':path'], h['x-a'], h['te'], h['content-length'], h[':method']]),
      [
        ['/x', '1', 'trailers', '0', 'POST'],
        ['/y', '2', 'trailers', '0', 'POST'],
        ['/z', '3', 'trailers', '0', 'POST'],
      ],
    );
    // Each request has an object of its own.
    seen[0]!['x-a'] = 'changed';
    assert.equal(seen[1]!['x-a'], '2');
  });

  it('reads a repeated header block again after a block changed the table (same bytes, new meaning)', async () => {
    // :method POST, :scheme http, :path / (static 3, 6, 4), then x-a as given.
    const pseudo = Buffer.from([0x83, 0x86, 0x84]);
    const insert = (value: string): Buffer => Buffer.concat([pseudo, Buffer.from([0x40, 3]), Buffer.from('x-a'), Buffer.from([value.length]), Buffer.from(value)]);
    const newest = Buffer.concat([pseudo, Buffer.from([0xbe])]); // index 62: the newest entry of the dynamic table
    const blocks = [insert('1'), newest, newest, insert('2'), newest];
    const seen = await headersTaken(blocks);
    assert.deepEqual(
      seen.map((h) => h['x-a']),
      ['1', '1', '1', '2', '2'],
    );
  });
});

describe('TurnBudget (src/grpc/http2/turn-budget.ts)', () => {
  it("pauses a reader whose chunk comes after the turn's budget is spent, once, and resumes it on the next turn", async () => {
    let now = 0;
    const budget = new TurnBudget(10, () => now);
    const log: string[] = [];
    const reader = (name: string): Pausable => ({ pause: () => log.push(`pause ${name}`), resume: () => log.push(`resume ${name}`) });
    const [a, b] = [reader('a'), reader('b')];
    budget.reading(a);
    now = 10;
    budget.reading(b);
    assert.deepEqual(log, [], 'within the budget');
    now = 11;
    budget.reading(a);
    budget.reading(a);
    budget.reading(b);
    assert.deepEqual(log, ['pause a', 'pause b']);
    await new Promise(setImmediate);
    assert.deepEqual(log, ['pause a', 'pause b', 'resume a', 'resume b']);
    // A new turn starts its own clock.
    now = 100;
    budget.reading(a);
    now = 105;
    budget.reading(a);
    assert.equal(log.length, 4);
  });
});
