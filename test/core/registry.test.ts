import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { FakeClock, type Clock } from '../../src/core/clock.js';
import { recordFields } from '../../src/core/entry.js';
import { RegistryError } from '../../src/core/errors.js';
import { Registry } from '../../src/core/registry.js';
import type { Change } from '../../src/core/types.js';
import { newRegistry, registration } from './fixtures.js';

const SEC = 1000;

function assertInvalid(fn: () => unknown, field: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof RegistryError);
    assert.equal(err.kind, 'invalid_argument');
    assert.equal(err.field, field);
    return true;
  });
}

describe('register', () => {
  test('stores a record with normalised app name and server-filled lease times', () => {
    const { registry, clock } = newRegistry();
    const { view, revision } = registry.register(registration({ app: 'Billing' }));
    assert.equal(view.record.app, 'billing');
    assert.equal(revision, 1);
    assert.equal(view.lease.registrationTimestamp, clock.wallNow());
    assert.equal(view.lease.serviceUpTimestamp, clock.wallNow());
    assert.deepEqual(recordFields(registry.get('BILLING', 'i-1').record), recordFields(view.record));
  });

  test('a register that omits last_dirty_timestamp gets the node wall time', () => {
    const { registry, clock } = newRegistry();
    const { view } = registry.register(registration({ lastDirtyTimestamp: 0 }));
    assert.equal(view.record.lastDirtyTimestamp, clock.wallNow());
  });

  test('lease defaults apply when interval and duration are 0', () => {
    const { registry } = newRegistry({ leaseRenewalSecs: 10, leaseDurationSecs: 40 });
    const { view } = registry.register(registration({ renewalIntervalSecs: 0, durationSecs: 0 }));
    assert.equal(view.record.renewalIntervalSecs, 10);
    assert.equal(view.record.durationSecs, 40);
  });

  test('rule: a stored record with a newer dirty timestamp wins, caller still gets OK', () => {
    const { registry } = newRegistry();
    registry.register(registration({ lastDirtyTimestamp: 2_000, hostName: 'new' }));
    const { view } = registry.register(registration({ lastDirtyTimestamp: 1_000, hostName: 'old' }));
    assert.equal(view.record.hostName, 'new');
    assert.equal(registry.get('billing', 'i-1').record.hostName, 'new');
  });

  test('rule: a newer dirty timestamp replaces the stored record', () => {
    const { registry } = newRegistry();
    registry.register(registration({ lastDirtyTimestamp: 1_000, hostName: 'old' }));
    const { view } = registry.register(registration({ lastDirtyTimestamp: 2_000, hostName: 'new' }));
    assert.equal(view.record.hostName, 'new');
  });

  test('rule: equal dirty timestamps break the same way whatever the arrival order', () => {
    const a = registration({ lastDirtyTimestamp: 5_000, hostName: 'a' });
    const b = registration({ lastDirtyTimestamp: 5_000, hostName: 'b' });
    const one = newRegistry().registry;
    one.register(a);
    one.register(b);
    const two = newRegistry().registry;
    two.register(b);
    two.register(a);
    assert.equal(one.get('billing', 'i-1').record.hostName, two.get('billing', 'i-1').record.hostName);
  });

  test('an identical re-register renews the lease without a visible change', () => {
    const { registry } = newRegistry();
    registry.register(registration());
    const before = registry.revision;
    registry.register(registration());
    assert.equal(registry.revision, before);
  });

  test('bad input is refused naming the field and changes nothing', () => {
    const { registry } = newRegistry();
    const cases: Array<[Parameters<typeof registration>[0], string]> = [
      [{ app: '' }, 'instance.app'],
      [{ app: 'has space' }, 'instance.app'],
      [{ app: 'a'.repeat(129) }, 'instance.app'],
      [{ instanceId: '' }, 'instance.instance_id'],
      [{ instanceId: '/etc/passwd' }, 'instance.instance_id'],
      [{ hostName: 'bad host' }, 'instance.host_name'],
      [{ port: { number: 70000, enabled: true } }, 'instance.port.number'],
      [{ port: { number: 0, enabled: true } }, 'instance.port.number'],
      [{ securePort: { number: -1, enabled: false } }, 'instance.secure_port.number'],
      [{ metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }, 'instance.metadata'],
      [{ metadata: { k: 'v'.repeat(1025) } }, 'instance.metadata'],
      [{ renewalIntervalSecs: 301 }, 'instance.lease.renewal_interval_secs'],
      [{ durationSecs: 3601 }, 'instance.lease.duration_secs'],
      [{ renewalIntervalSecs: 60, durationSecs: 30 }, 'instance.lease.duration_secs'],
      [{ lastDirtyTimestamp: -5 }, 'instance.last_dirty_timestamp'],
      [{ homePageUrl: 'x'.repeat(2049) }, 'instance.home_page_url'],
    ];
    for (const [overrides, field] of cases) assertInvalid(() => registry.register(registration(overrides)), field);
    assert.equal(registry.revision, 0);
    assert.equal(registry.stats().size, 0);
  });

  test('metadata is bounded at 16 KiB of UTF-8 in all, however few code units it takes', () => {
    const { registry } = newRegistry();
    // `n` entries with keys "k00".."kNN" and values of `length` copies of `char`.
    const metadata = (n: number, char: string, length: number): Record<string, string> =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${String(i).padStart(2, '0')}`, char.repeat(length)]));
    // 16 x (3 + 1,021) = 16,384 bytes: at the bound. One more byte is over it.
    registry.register(registration({ instanceId: 'ascii', metadata: metadata(16, 'v', 1021) }));
    assertInvalid(() => registry.register(registration({ instanceId: 'ascii-over', metadata: { ...metadata(16, 'v', 1021), x: '' } })), 'instance.metadata');
    // "€" is one code unit and three bytes: 5 x (3 + 3,000) bytes fit, 6 x (3 + 3,000) do not,
    // though their 6,018 code units are far below 16,384.
    registry.register(registration({ instanceId: 'euro', metadata: metadata(5, '€', 1000) }));
    assertInvalid(() => registry.register(registration({ instanceId: 'euro-over', metadata: metadata(6, '€', 1000) })), 'instance.metadata');
    assert.deepEqual(
      registry.snapshot().instances.map((v) => v.record.instanceId),
      ['ascii', 'euro'],
    );
  });
});

describe('compact records', () => {
  test('equal metadata maps are one frozen object, whatever the key order; an update makes a new one', () => {
    const { registry } = newRegistry();
    const a = registry.register(registration({ instanceId: 'a', metadata: { zone: 'z1', version: '1' } })).view.record;
    const b = registry.register(registration({ instanceId: 'b', metadata: { version: '1', zone: 'z1' } })).view.record;
    const c = registry.register(registration({ instanceId: 'c', metadata: { version: '2', zone: 'z1' } })).view.record;
    assert.equal(a.metadata, b.metadata);
    assert.notEqual(a.metadata, c.metadata);
    assert.ok(Object.isFrozen(a.metadata));
    assert.deepEqual(Object.keys(b.metadata), ['version', 'zone']);
    const updated = registry.updateMetadata('billing', 'a', { team: 'x' }, ['zone']).record;
    assert.deepEqual(updated.metadata, { team: 'x', version: '1' });
    assert.deepEqual(registry.get('billing', 'b').record.metadata, { version: '1', zone: 'z1' }, 'the shared object is untouched');
  });

  test('a replaced version keeps the lease times it had; the current one reads them live', () => {
    const { registry, clock } = newRegistry();
    const first = registry.register(registration()).view;
    const registeredAt = first.lease.registrationTimestamp;
    clock.advance(10_000);
    registry.heartbeat('billing', 'i-1');
    assert.equal(first.lease.lastRenewalTimestamp, registeredAt + 10_000, 'live while current');
    const second = registry.register(registration({ lastDirtyTimestamp: 2_000 })).view;
    clock.advance(10_000);
    registry.heartbeat('billing', 'i-1');
    assert.equal(first.lease.lastRenewalTimestamp, registeredAt + 10_000, 'kept once replaced');
    assert.equal(second.lease.lastRenewalTimestamp, registeredAt + 20_000);
    assert.equal(second.lease.registrationTimestamp, registeredAt, 'one lease for all versions');
    registry.cancel('billing', 'i-1');
    registry.register(registration({ instanceId: 'other' }));
    assert.equal(second.lease.evictionTimestamp, registeredAt + 20_000, 'a removed version keeps its times, though its slot is reused');
    assert.equal(second.lease.registrationTimestamp, registeredAt);
  });
});

describe('status override rules', () => {
  test('rule 1: an instance reporting DOWN, STARTING or UNKNOWN keeps that status despite an override', () => {
    const { registry, clock } = newRegistry();
    registry.register(registration());
    registry.setStatusOverride('billing', 'i-1', 'OUT_OF_SERVICE');
    for (const [i, status] of (['DOWN', 'STARTING', 'UNKNOWN'] as const).entries()) {
      const { view } = registry.register(registration({ status, lastDirtyTimestamp: clock.wallNow() + 1 + i }));
      assert.equal(view.record.status, status);
    }
  });

  test('rule 2: an operator override applies to an instance reporting UP', () => {
    const { registry, clock } = newRegistry();
    registry.register(registration());
    registry.setStatusOverride('billing', 'i-1', 'OUT_OF_SERVICE');
    const { view } = registry.register(registration({ lastDirtyTimestamp: clock.wallNow() + 1 }));
    assert.equal(view.record.status, 'OUT_OF_SERVICE');
    assert.equal(view.record.overriddenStatus, 'OUT_OF_SERVICE');
  });

  test('rule 3: without an override, an existing lease keeps its UP or OUT_OF_SERVICE', () => {
    const { registry } = newRegistry();
    registry.register(registration({ status: 'UP' }));
    const { view } = registry.register(registration({ status: 'OUT_OF_SERVICE', lastDirtyTimestamp: 2_000 }));
    assert.equal(view.record.status, 'UP');
  });

  test('rule 4: otherwise the instance reports its own status', () => {
    const { registry } = newRegistry();
    registry.register(registration({ status: 'STARTING' }));
    const { view } = registry.register(registration({ status: 'UP', lastDirtyTimestamp: 2_000 }));
    assert.equal(view.record.status, 'UP');
  });

  test('override chain: an instance reporting DOWN or STARTING keeps it when an operator sets OUT_OF_SERVICE afterwards', () => {
    for (const reported of ['DOWN', 'STARTING'] as const) {
      const { registry, clock } = newRegistry();
      registry.register(registration({ status: reported }));
      const view = registry.setStatusOverride('billing', 'i-1', 'OUT_OF_SERVICE');
      assert.equal(view.record.status, reported, `${reported} wins over the override (rule 1)`);
      assert.equal(view.record.overriddenStatus, 'OUT_OF_SERVICE', 'the override is kept for later');
      // Once the instance reports UP, the override applies (rule 2).
      const { view: up } = registry.register(registration({ status: 'UP', lastDirtyTimestamp: clock.wallNow() + 1 }));
      assert.equal(up.record.status, 'OUT_OF_SERVICE');
      // An operator override of an UP instance still applies at once, and can be changed.
      assert.equal(registry.setStatusOverride('billing', 'i-1', 'UP').record.status, 'UP');
      assert.equal(registry.setStatusOverride('billing', 'i-1', 'DOWN').record.status, 'DOWN');
      assert.equal(registry.setStatusOverride('billing', 'i-1', 'OUT_OF_SERVICE').record.status, 'OUT_OF_SERVICE');
    }
  });

  test('set override is a new version of the record and is replicated as a register', () => {
    const { registry, writes } = newRegistry();
    registry.register(registration());
    const before = registry.get('billing', 'i-1').record.lastDirtyTimestamp;
    const view = registry.setStatusOverride('billing', 'i-1', 'OUT_OF_SERVICE');
    assert.ok(view.record.lastDirtyTimestamp > before);
    assert.equal(writes.at(-1)?.action, 'register');
  });

  test('UNKNOWN cannot be forced and nothing changes', () => {
    const { registry } = newRegistry();
    registry.register(registration());
    assertInvalid(() => registry.setStatusOverride('billing', 'i-1', 'UNKNOWN'), 'status');
    assert.equal(registry.get('billing', 'i-1').record.status, 'UP');
  });

  test('clearing the override makes the next heartbeat NOT_FOUND, and the re-register restores the real status', () => {
    const { registry, clock } = newRegistry();
    registry.register(registration());
    registry.setStatusOverride('billing', 'i-1', 'OUT_OF_SERVICE');
    const cleared = registry.clearStatusOverride('billing', 'i-1');
    assert.equal(cleared.record.status, 'UNKNOWN');
    assert.equal(cleared.record.overriddenStatus, undefined);
    assert.deepEqual(registry.heartbeat('billing', 'i-1'), { kind: 'not_found', reason: 'status_unknown' });
    clock.advance(1000);
    const { view } = registry.register(registration({ lastDirtyTimestamp: clock.wallNow() }));
    assert.equal(view.record.status, 'UP');
    assert.equal(registry.heartbeat('billing', 'i-1').kind, 'ok');
  });

  test('overrides and metadata updates on unknown instances are NOT_FOUND', () => {
    const { registry } = newRegistry();
    for (const fn of [
      () => registry.setStatusOverride('billing', 'nope', 'DOWN'),
      () => registry.clearStatusOverride('billing', 'nope'),
      () => registry.updateMetadata('billing', 'nope', { a: 'b' }, []),
    ]) {
      assert.throws(fn, (err: unknown) => err instanceof RegistryError && err.kind === 'not_found');
    }
  });
});

describe('heartbeat', () => {
  test('rule: an unknown instance is NOT_FOUND', () => {
    const { registry } = newRegistry();
    assert.deepEqual(registry.heartbeat('billing', 'i-1'), { kind: 'not_found', reason: 'unknown' });
  });

  test('rule: a caller with a newer dirty timestamp is NOT_FOUND so it re-registers', () => {
    const { registry } = newRegistry();
    registry.register(registration({ lastDirtyTimestamp: 1_000 }));
    assert.deepEqual(registry.heartbeat('billing', 'i-1', 2_000), { kind: 'not_found', reason: 'caller_newer' });
  });

  test('rule: a client with an older dirty timestamp gets OK', () => {
    const { registry } = newRegistry();
    registry.register(registration({ lastDirtyTimestamp: 2_000 }));
    assert.deepEqual(registry.heartbeat('billing', 'i-1', 1_000), { kind: 'ok', status: 'UP' });
  });

  test('rule: a peer with an older dirty timestamp gets a conflict carrying the stored record', () => {
    const { registry } = newRegistry();
    registry.register(registration({ lastDirtyTimestamp: 2_000 }));
    const outcome = registry.heartbeat('billing', 'i-1', 1_000, 'replication');
    assert.equal(outcome.kind, 'conflict');
    assert.equal(outcome.kind === 'conflict' && outcome.record.lastDirtyTimestamp, 2_000);
  });

  test('renews the lease: the instance outlives its first deadline', () => {
    const { registry, clock } = newRegistry();
    registry.register(registration());
    clock.advance(80 * SEC);
    assert.equal(registry.heartbeat('billing', 'i-1').kind, 'ok');
    clock.advance(80 * SEC);
    assert.equal(registry.heartbeat('billing', 'i-1').kind, 'ok');
  });

  test('plain renewals do not move the revision', () => {
    const { registry } = newRegistry();
    registry.register(registration());
    const before = registry.revision;
    registry.heartbeat('billing', 'i-1');
    assert.equal(registry.revision, before);
  });

  test('client heartbeats are handed to replication, replicated ones are not', () => {
    const { registry, writes } = newRegistry();
    registry.register(registration());
    writes.length = 0;
    registry.heartbeat('billing', 'i-1');
    registry.heartbeat('billing', 'i-1', 0, 'replication');
    assert.deepEqual(writes, [{ action: 'heartbeat', app: 'billing', instanceId: 'i-1', lastDirtyTimestamp: 1_000 }]);
  });
});

/** A log destination that parses each JSON line into `lines`. */
function jsonLogSink(): { lines: Record<string, unknown>[]; sink: Writable } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, sink };
}

describe('leases and eviction', () => {
  /** Ten instances heartbeating every 30 s except those listed as dead; log lines land in `logs`. */
  function fleet(dead: number) {
    const logs: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logs.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const ctx = newRegistry({ random: () => 0.5, logger: pino({ level: 'info' }, sink) });
    const ids = Array.from({ length: 10 }, (_, i) => `i-${i}`);
    for (const id of ids) ctx.registry.register(registration({ instanceId: id }));
    const beat = (alive: string[]): void => {
      for (const id of alive) ctx.registry.heartbeat('billing', id);
    };
    const tick = (seconds: number, alive = ids.slice(dead)): void => {
      for (let t = 0; t < seconds; t += 30) {
        ctx.clock.advance(30 * SEC);
        beat(alive);
      }
    };
    return { ...ctx, ids, tick, beat, logs };
  }

  test('rule: a dead instance is evicted at last renewal + duration, not twice that', () => {
    const { registry, clock, tick } = fleet(1);
    // i-0 never renews: registered at t=0, so its lease ends at t=90 s.
    const changes: Change[] = [];
    registry.subscribe((c) => changes.push(c));
    tick(60);
    clock.advance(29 * SEC);
    assert.equal(registry.stats().size, 10);
    clock.advance(2 * SEC);
    assert.equal(registry.stats().size, 9);
    assert.equal(changes.at(-1)?.type, 'DELETED');
    assert.equal(changes.at(-1)?.instance.record.instanceId, 'i-0');
    assert.equal(registry.stats().evictionsTotal, 1);
  });

  test('rule: an expired lease cannot be renewed (NOT_FOUND until re-registered)', () => {
    // The eviction pass has not come round yet: the instance is still listed, but expired.
    const { registry, clock } = newRegistry({ evictionIntervalMs: 60 * SEC });
    registry.register(registration());
    clock.advance(90 * SEC);
    assert.equal(registry.stats().size, 1);
    assert.deepEqual(registry.heartbeat('billing', 'i-1'), { kind: 'not_found', reason: 'expired' });
  });

  test('rule: expected renewals follow the registered instances, each since it registered', () => {
    const { registry, clock } = newRegistry();
    registry.register(registration({ instanceId: 'a', renewalIntervalSecs: 30 }));
    registry.register(registration({ instanceId: 'b', renewalIntervalSecs: 10 }));
    clock.advance(30 * SEC);
    assert.equal(registry.stats().expectedRenewalsPerMinute, 4, 'half a minute: 1 + 3');
    clock.advance(30 * SEC);
    assert.equal(registry.stats().expectedRenewalsPerMinute, 8);
    registry.cancel('billing', 'b');
    assert.equal(registry.stats().expectedRenewalsPerMinute, 2);
  });

  test('rule: evictions are local and not replicated', () => {
    const { registry, clock, writes } = newRegistry({ selfPreservation: false });
    registry.register(registration());
    writes.length = 0;
    clock.advance(120 * SEC);
    assert.equal(registry.stats().size, 0);
    assert.deepEqual(writes, []);
  });
});

describe('prompt expiry', () => {
  test('a lone instance with a 1 s lease on a new, quiet node is gone within lease + eviction interval', () => {
    const { registry, clock } = newRegistry();
    registry.register(registration({ renewalIntervalSecs: 1, durationSecs: 1 }));
    clock.advance(2 * SEC);
    assert.equal(registry.stats().size, 0);
    assert.equal(registry.stats().evictionsTotal, 1);
  });

  test('a lone expiry is never delayed by the cap, whatever the registry size or node age', () => {
    for (const others of [0, 5, 200]) {
      const { registry, clock } = newRegistry();
      // The node has run a while with `others` healthy instances (none at all for 0).
      const ids = Array.from({ length: others }, (_, i) => `ok-${i}`);
      for (const id of ids) registry.register(registration({ instanceId: id }));
      for (let t = 0; t < 150; t += 30) {
        clock.advance(30 * SEC);
        for (const id of ids) registry.heartbeat('billing', id);
      }
      registry.register(registration({ instanceId: 'lone', renewalIntervalSecs: 1, durationSecs: 1 }));
      clock.advance(2 * SEC);
      assert.throws(() => registry.get('billing', 'lone'), RegistryError, `with ${others} others`);
      assert.equal(registry.stats().size, others);
    }
  });

  test('a mass expiry is spread by the cap: at most 15 % of the registry per minute, at random', () => {
    const { registry, clock } = newRegistry({ selfPreservation: false, random: () => 0 });
    for (let i = 0; i < 200; i++) registry.register(registration({ instanceId: `i-${i}` }));
    clock.advance(91 * SEC);
    assert.equal(registry.stats().size, 170, '15 % of 200');
    clock.advance(58 * SEC);
    assert.equal(registry.stats().size, 170, 'not again within the sliding minute');
    clock.advance(2 * SEC);
    assert.equal(registry.stats().size, 145, '15 % of the 170 left');
  });

  test('a large pass evicts in slices, yielding between them, and logs one summary line', () => {
    const { lines, sink } = jsonLogSink();
    const { registry, clock } = newRegistry({ selfPreservation: false, evictionCapPercent: 100, logger: pino({ level: 'info' }, sink) });
    for (let i = 0; i < 2500; i++) registry.register(registration({ app: `app-${i % 7}`, instanceId: `i-${i}` }));
    registry.register(registration({ instanceId: 'late', durationSecs: 300 }));
    // An instance due in the pass that re-registers before its turn is not evicted.
    let renewed: { app: string; instanceId: string } | undefined;
    registry.subscribe((change) => {
      if (change.type !== 'DELETED' || renewed !== undefined) return;
      const i = change.instance.record.instanceId === 'i-0' ? 1 : 0;
      renewed = { app: `app-${i % 7}`, instanceId: `i-${i}` };
      registry.register(registration({ ...renewed, lastDirtyTimestamp: 5_000 }));
    });
    clock.advance(91 * SEC);
    const summaries = lines.filter((l) => l.msg === 'evicted expired leases');
    assert.equal(summaries.length, 1, 'one line for the pass, none per eviction');
    assert.equal(summaries[0]!.slices, 3);
    assert.equal(summaries[0]!.apps, 7);
    assert.equal(registry.stats().size, 2, 'every expired lease evicted but the one re-registered during the pass');
    assert.equal(summaries[0]!.evicted, 2499);
    assert.equal(registry.stats().evictionsTotal, 2499);
    assert.doesNotThrow(() => registry.get(renewed!.app, renewed!.instanceId));
  });

  test('a slice also ends after 10 ms, so evictions that run slow never hold the event loop for long', () => {
    const { lines, sink } = jsonLogSink();
    // Every eviction takes 3 ms of monotonic time: a slice fits 4 (at 0, 3, 6 and 9 ms).
    const fake = new FakeClock();
    let spent = 0;
    const clock: Clock = {
      now: () => fake.now() + spent,
      wallNow: () => fake.wallNow(),
      setTimeout: (fn, ms) => fake.setTimeout(fn, ms),
      clearTimeout: (handle) => fake.clearTimeout(handle),
    };
    const registry = new Registry({ clock, selfPreservation: false, evictionCapPercent: 100, logger: pino({ level: 'info' }, sink) });
    registry.start();
    for (let i = 0; i < 100; i++) registry.register(registration({ instanceId: `i-${i}` }));
    registry.subscribe((change) => {
      if (change.type === 'DELETED') spent += 3;
    });
    fake.advance(91 * SEC);
    registry.stop();
    const summary = lines.find((l) => l.msg === 'evicted expired leases');
    assert.equal(summary?.evicted, 100);
    assert.equal(summary?.slices, 25);
    assert.equal(summary?.longestSliceMs, 12);
  });
});

describe('self-preservation', () => {
  /** `size` instances renewing every 30 s in step; `beat(alive)` advances 30 s and renews those. */
  function fleet(size: number, options: Parameters<typeof newRegistry>[0] = {}) {
    const logs: { msg: string; time: number }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as { msg: string; time: number });
        done();
      },
    });
    const clock = new FakeClock();
    const ctx = newRegistry({ random: () => 0.5, logger: pino({ level: 'info', timestamp: () => `,"time":${clock.now()}` }, sink), clock, ...options });
    const ids = Array.from({ length: size }, (_, i) => `i-${i}`);
    for (const id of ids) ctx.registry.register(registration({ instanceId: id }));
    const beat = (alive: readonly string[], seconds = 30): void => {
      for (let t = 0; t < seconds; t += 30) {
        ctx.clock.advance(30 * SEC);
        for (const id of alive) ctx.registry.heartbeat('billing', id);
      }
    };
    const switches = () => logs.filter((l) => l.msg.startsWith('self-preservation'));
    return { ...ctx, ids, beat, logs, switches };
  }

  test('a fleet that registers mid-minute with a 5 s interval never trips it', () => {
    const { registry, clock } = newRegistry();
    clock.advance(35 * SEC);
    registry.register(registration({ instanceId: 'a', renewalIntervalSecs: 5, durationSecs: 15 }));
    registry.register(registration({ instanceId: 'dead', renewalIntervalSecs: 5, durationSecs: 15 }));
    for (let t = 0; t < 180; t += 5) {
      clock.advance(5 * SEC);
      registry.heartbeat('billing', 'a');
      assert.equal(registry.stats().selfPreservation, false, `at ${clock.now()} ms`);
    }
    assert.throws(() => registry.get('billing', 'dead'), RegistryError, 'the dead one was evicted');
  });

  test('a registry of a few dozen evicts dead instances at expiry even when renewals fall below the threshold', () => {
    const { registry, ids, beat, clock } = fleet(30);
    // Renewals at 45, 75 and 105 s: the 6 that die at 105 s expire at 195 s, after a whole
    // minute of renewals below the threshold.
    clock.advance(15 * SEC);
    beat(ids, 90);
    // 6 of 30 die (renewals at 80 %, below 85 %): too few to be a network fault.
    const alive = ids.slice(6);
    beat(alive, 150);
    assert.equal(registry.stats().selfPreservation, false);
    assert.equal(registry.stats().size, 24, 'evicted within lease duration + eviction interval');
  });

  test('a mass lapse (30 % of 1,000 stop) pauses eviction, is logged once, and resumes when renewals recover', () => {
    const { registry, ids, beat, switches, clock } = fleet(1000);
    beat(ids, 120);
    assert.equal(registry.stats().selfPreservation, false);
    const alive = ids.slice(300);
    beat(alive, 180);
    const held = registry.stats();
    assert.equal(held.selfPreservation, true);
    assert.equal(held.size, 1000, 'nothing evicted while preserving');
    assert.equal(held.lapsedInstances, 300);
    beat(alive, 300);
    assert.equal(registry.stats().size, 1000, 'still held minutes later');
    assert.deepEqual(
      switches().map((l) => l.msg.split(':')[0]),
      ['self-preservation on'],
      'logged once, not every minute',
    );
    // The network heals: the silent 300 re-register and renew again.
    for (const id of ids.slice(0, 300)) registry.register(registration({ instanceId: id, lastDirtyTimestamp: clock.wallNow() }));
    beat(ids, 120);
    assert.equal(registry.stats().selfPreservation, false);
    assert.deepEqual(
      switches().map((l) => l.msg.split(':')[0]),
      ['self-preservation on', 'self-preservation off'],
    );
    // Eviction works again: one death is now evicted at its expiry.
    beat(ids.slice(1), 120);
    assert.equal(registry.stats().size, 999);
  });

  test('hysteresis: it never switches on and off within a minute, even while an operator cancels the lapsed instances', () => {
    const { registry, ids, beat, switches, clock } = fleet(100);
    beat(ids, 120);
    const alive = ids.slice(40);
    beat(alive, 120);
    assert.equal(registry.stats().selfPreservation, true);
    // Right after it engaged, an operator cancels the dead instances one by one (status changes with each).
    for (const id of ids.slice(0, 35)) {
      registry.setStatusOverride('billing', id, 'OUT_OF_SERVICE');
      registry.cancel('billing', id);
      clock.advance(100);
    }
    beat(alive, 120);
    assert.equal(registry.stats().selfPreservation, false, 'off once the lapse is too small to matter');
    const times = switches().map((l) => l.time);
    assert.equal(times.length, 2);
    assert.ok(times[1]! - times[0]! >= 60 * SEC, `on at ${times[0]}, off at ${times[1]}`);
    assert.equal(registry.stats().size, 60, 'the remaining 5 dead were evicted once it let go');
  });

  test('off: expired instances are evicted whatever the renewal rate', () => {
    const { registry, ids, beat } = fleet(100, { selfPreservation: false });
    beat(ids.slice(20), 240);
    assert.equal(registry.stats().selfPreservation, false);
    assert.equal(registry.stats().size, 80, 'the 15 % cap spread the 20 over two minutes');
  });
});

describe('clock skew', () => {
  test('a last_dirty_timestamp more than a day ahead is refused naming the field, and changes nothing', () => {
    const { registry, clock } = newRegistry();
    registry.register(registration({ lastDirtyTimestamp: clock.wallNow() }));
    const before = recordFields(registry.get('billing', 'i-1').record);
    const year3000 = Date.UTC(3000, 0, 1);
    assertInvalid(() => registry.register(registration({ lastDirtyTimestamp: year3000 })), 'instance.last_dirty_timestamp');
    assertInvalid(() => registry.heartbeat('billing', 'i-1', year3000), 'last_dirty_timestamp');
    assert.deepEqual(recordFields(registry.get('billing', 'i-1').record), before);
    // Within the skew is fine; a normal register then still replaces it.
    registry.register(registration({ lastDirtyTimestamp: clock.wallNow() + 23 * 3600 * SEC, hostName: 'ahead' }));
    assert.equal(registry.get('billing', 'i-1').record.hostName, 'ahead');
  });

  test('the skew is configurable', () => {
    const { registry, clock } = newRegistry({ maxClockSkewMs: 1000 });
    assertInvalid(() => registry.register(registration({ lastDirtyTimestamp: clock.wallNow() + 1001 })), 'instance.last_dirty_timestamp');
    registry.register(registration({ lastDirtyTimestamp: clock.wallNow() + 1000 }));
  });

  test('versions are bounded to a sane range, so version arithmetic never leaves the safe integers', () => {
    const { registry } = newRegistry({ maxClockSkewMs: Number.MAX_SAFE_INTEGER });
    for (const ts of [Number.MAX_SAFE_INTEGER, Date.UTC(10000, 0, 1), -1, 1.5]) {
      assertInvalid(() => registry.register(registration({ lastDirtyTimestamp: ts })), 'instance.last_dirty_timestamp');
      assertInvalid(() => registry.cancel('billing', 'i-1', 'replication', ts), 'last_dirty_timestamp');
    }
    const last = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
    registry.register(registration({ lastDirtyTimestamp: last }));
    registry.setStatusOverride('billing', 'i-1', 'DOWN');
    assert.ok(Number.isSafeInteger(registry.get('billing', 'i-1').record.lastDirtyTimestamp));
  });
});

describe('removal cause', () => {
  test('a DELETED change says whether the instance was cancelled or evicted', () => {
    const { registry, clock } = newRegistry();
    const changes: Change[] = [];
    registry.subscribe((c) => changes.push(c));
    registry.register(registration({ instanceId: 'a' }));
    registry.register(registration({ instanceId: 'b', renewalIntervalSecs: 1, durationSecs: 1 }));
    registry.cancel('billing', 'a');
    clock.advance(2 * SEC);
    const deleted = changes.filter((c) => c.type === 'DELETED').map((c) => [c.instance.record.instanceId, c.removal]);
    assert.deepEqual(deleted, [
      ['a', 'cancelled'],
      ['b', 'evicted'],
    ]);
    assert.equal(changes.find((c) => c.type === 'ADDED')?.removal, undefined);
  });
});

describe('cancel', () => {
  test('removes the instance, bumps the revision and replicates with the cancel time as its version', () => {
    const { registry, writes, clock } = newRegistry();
    registry.register(registration());
    const revision = registry.cancel('billing', 'i-1');
    assert.equal(revision, 2);
    assert.equal(registry.stats().size, 0);
    assert.deepEqual(writes.at(-1), { action: 'cancel', app: 'billing', instanceId: 'i-1', lastDirtyTimestamp: clock.wallNow() });
  });

  test('an unknown instance is NOT_FOUND', () => {
    const { registry } = newRegistry();
    assert.throws(
      () => registry.cancel('billing', 'i-1'),
      (e: unknown) => e instanceof RegistryError && e.kind === 'not_found',
    );
  });

  test('a replicated copy at or below the cancelled version does not resurrect it', () => {
    const { registry } = newRegistry();
    const { view } = registry.register(registration());
    registry.cancel('billing', 'i-1');
    assert.equal(registry.applyRecord(view.record), 'stale');
    assert.equal(registry.stats().size, 0);
  });

  test('a client coming back after a cancel with its old version gets a newer one', () => {
    const { registry, clock } = newRegistry();
    registry.register(registration({ lastDirtyTimestamp: 1_000 }));
    registry.cancel('billing', 'i-1');
    const { view } = registry.register(registration({ lastDirtyTimestamp: 1_000 }));
    assert.equal(view.record.lastDirtyTimestamp, clock.wallNow() + 1);
  });

  test('tombstones are bounded: past the cap the oldest is forgotten first', () => {
    const { registry } = newRegistry({ maxTombstones: 3 });
    for (let i = 0; i < 5; i++) {
      registry.register(registration({ instanceId: `i-${i}` }));
      registry.cancel('billing', `i-${i}`);
    }
    assert.deepEqual(
      registry.tombstones().map((t) => t.instanceId),
      ['i-2', 'i-3', 'i-4'],
    );
  });

  test('a replicated cancel older than the stored version is ignored', () => {
    const { registry } = newRegistry();
    registry.register(registration({ lastDirtyTimestamp: 2_000 }));
    registry.cancel('billing', 'i-1', 'replication', 1_000);
    assert.equal(registry.stats().size, 1);
  });
});

describe('reads', () => {
  test('revision counts visible changes; reconcile hash counts per status', () => {
    const { registry } = newRegistry();
    registry.register(registration({ instanceId: 'a' }));
    registry.register(registration({ instanceId: 'b', status: 'DOWN' }));
    registry.register(registration({ instanceId: 'c' }));
    registry.updateMetadata('billing', 'a', { k: 'v' }, ['version']);
    const snap = registry.snapshot();
    assert.equal(snap.revision, 4);
    assert.equal(snap.reconcileHash, 'DOWN_1_UP_2_');
    assert.deepEqual(
      snap.instances.map((v) => v.record.instanceId),
      ['a', 'b', 'c'],
    );
    assert.deepEqual(registry.get('billing', 'a').record.metadata, { k: 'v' });
  });

  test('getApplication and listByVip find instances by app and by plain or secure VIP', () => {
    const { registry } = newRegistry();
    registry.register(registration({ instanceId: 'a', vipAddress: 'pay, billing' }));
    registry.register(registration({ app: 'other', instanceId: 'b', vipAddress: 'x', secureVipAddress: 'billing' }));
    assert.equal(registry.getApplication('BILLING').instances.length, 1);
    assert.equal(registry.getApplication('nothing').instances.length, 0);
    assert.deepEqual(
      registry.listByVip('billing', false).instances.map((v) => v.record.instanceId),
      ['a'],
    );
    assert.deepEqual(
      registry.listByVip('billing', true).instances.map((v) => v.record.instanceId),
      ['b'],
    );
  });

  test('findById finds an id in every app, ordered by app, and validates the id', () => {
    const { registry } = newRegistry();
    registry.register(registration({ app: 'zeta', instanceId: 'shared' }));
    registry.register(registration({ app: 'alpha', instanceId: 'shared' }));
    registry.register(registration({ app: 'alpha', instanceId: 'other' }));
    assert.deepEqual(
      registry.findById('shared').map((v) => v.record.app),
      ['alpha', 'zeta'],
    );
    assert.deepEqual(registry.findById('missing'), []);
    registry.cancel('zeta', 'shared');
    assert.deepEqual(
      registry.findById('shared').map((v) => v.record.app),
      ['alpha'],
    );
    assertInvalid(() => registry.findById(''), 'instance_id');
  });

  test('delta returns changes after a revision, pages, and asks for a resync when the cursor is too old', () => {
    const { registry } = newRegistry({ changeLogSize: 5 });
    for (let i = 0; i < 4; i++) registry.register(registration({ instanceId: `i-${i}` }));
    const page = registry.delta(1, 2);
    assert.deepEqual(
      page.changes.map((c) => c.revision),
      [2, 3],
    );
    assert.equal(page.hasMore, true);
    assert.equal(registry.delta(page.revision, 10).hasMore, false);
    for (let i = 4; i < 8; i++) registry.register(registration({ instanceId: `i-${i}` }));
    assert.equal(registry.oldestReplayableRevision, 3);
    assert.equal(registry.delta(2, 10).resyncRequired, true);
    assert.equal(registry.delta(3, 10).changes.length, 5);
    assert.equal(registry.delta(99, 10).resyncRequired, true, 'a cursor from the future is invalid');
    assert.deepEqual(registry.delta(8, 10), { changes: [], revision: 8, hasMore: false, resyncRequired: false });
  });

  test('subscribers see every change in revision order', () => {
    const { registry } = newRegistry();
    const seen: string[] = [];
    registry.subscribe((c) => seen.push(`${c.revision}:${c.type}`));
    registry.register(registration());
    registry.setStatusOverride('billing', 'i-1', 'DOWN');
    registry.cancel('billing', 'i-1');
    assert.deepEqual(seen, ['1:ADDED', '2:MODIFIED', '3:DELETED']);
  });
});
