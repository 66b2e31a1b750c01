import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startHarness, type Harness } from './helpers.js';

const run = promisify(execFile);
/** h2spec, the HTTP/2 conformance suite, from the Go module proxy (Go's caches keep it for the next run). */
const H2SPEC = 'github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible';
const BIN_DIR = fileURLToPath(new URL('../../node_modules/.cache/roster-h2spec/', import.meta.url));

/**
 * The cases that fail, and why: each sends a request that is not gRPC (no `content-type:
 * application/grpc`) and expects the server to wait for the rest of it, where a gRPC server
 * answers such a request at once (415, as grpc-js does) and closes the stream; h2spec's frames
 * that follow then meet a closed stream.
 */
const ANSWERED_AT_ONCE = [
  'generic/2: Sends a WINDOW_UPDATE frame on half-closed (remote) stream',
  'generic/2: Sends a PRIORITY frame on half-closed (remote) stream',
  'http2/5.1.2: Sends HEADERS frames that causes their advertised concurrent stream limit to be exceeded',
  'http2/6.9: Sends a WINDOW_UPDATE frame with a flow control window increment of 0 on a stream',
  'http2/6.9.1: Sends multiple WINDOW_UPDATE frames increasing the flow control window to above 2^31-1 on a stream',
  'http2/8.1.2.6: Sends a HEADERS frame with the "content-length" header field which does not equal the DATA frame payload length',
  'http2/8.1.2.6: Sends a HEADERS frame with the "content-length" header field which does not equal the sum of the multiple DATA frames payload length',
];

describe('HTTP/2 conformance of the gRPC port (h2spec)', { timeout: 240_000 }, () => {
  let h: Harness;
  const dir = mkdtempSync(join(tmpdir(), 'roster-h2spec-'));
  const h2spec = join(BIN_DIR, 'h2spec');

  before(async () => {
    if (!existsSync(h2spec)) await run('go', ['install', H2SPEC], { env: { ...process.env, GOBIN: BIN_DIR }, timeout: 180_000 });
    h = await startHarness();
  });

  after(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes every h2spec case but those answered at once because they are not gRPC', async () => {
    const report = join(dir, 'h2spec.xml');
    // h2spec exits 1 when any case fails; the report says which.
    await run(h2spec, ['-h', '127.0.0.1', '-p', String(h.server.port), '-o', '3', '-j', report], { timeout: 200_000 }).catch(() => undefined);
    const xml = readFileSync(report, 'utf8');
    const cases = [...xml.matchAll(/<testcase package="([^"]*)" classname="([^"]*)"[^>]*>([\s\S]*?)<\/testcase>/g)];
    const decode = (text: string): string => text.replace(/&#34;/g, '"').replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
    const failed = cases.filter(([, , , body]) => /<(failure|error)/.test(body!)).map(([, pkg, name]) => `${pkg}: ${decode(name!)}`);
    assert.ok(cases.length >= 140, `h2spec ran ${cases.length} cases`);
    assert.deepEqual(failed.sort(), [...ANSWERED_AT_ONCE].sort());
  });
});
