import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChangeType, Instance, InstanceStatus, RemovalCause } from '../../src/gen/roster/v1/instance.js';
import { address, applicationsTable, changeHeader, changeLine, parseStatus, statusName, table } from '../../src/cli/format.js';

test('statuses parse the way operators type them and print without the enum prefix', () => {
  assert.equal(parseStatus('up'), InstanceStatus.INSTANCE_STATUS_UP);
  assert.equal(parseStatus('out-of-service'), InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
  assert.equal(parseStatus('INSTANCE_STATUS_DOWN'), InstanceStatus.INSTANCE_STATUS_DOWN);
  assert.equal(parseStatus('unspecified'), undefined);
  assert.equal(parseStatus('sideways'), undefined);
  assert.equal(statusName(InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE), 'OUT_OF_SERVICE');
  assert.equal(statusName(InstanceStatus.INSTANCE_STATUS_UNSPECIFIED), '-');
});

test('tables align columns and leave no trailing blanks', () => {
  assert.equal(
    table(
      ['A', 'LONG'],
      [
        ['xyz', '1'],
        ['q', ''],
      ],
    ),
    'A    LONG\nxyz  1\nq\n',
  );
});

test('applications are summarised per status', () => {
  const mk = (app: string, instanceId: string, status: InstanceStatus): Instance => Instance.fromPartial({ app, instanceId, status });
  const out = applicationsTable([
    mk('billing', 'a', InstanceStatus.INSTANCE_STATUS_UP),
    mk('billing', 'b', InstanceStatus.INSTANCE_STATUS_DOWN),
    mk('billing', 'c', InstanceStatus.INSTANCE_STATUS_UP),
    mk('search', 'd', InstanceStatus.INSTANCE_STATUS_UP),
  ]);
  assert.equal(out, 'APP      INSTANCES  STATUS\nbilling  3          DOWN 1, UP 2\nsearch   1          UP 1\n');
});

test('addresses and change lines', () => {
  const i = Instance.fromPartial({
    app: 'billing',
    instanceId: 'i-1',
    ipAddr: '10.0.0.7',
    port: { number: 8080, enabled: true },
    securePort: { number: 8443, enabled: true },
    status: InstanceStatus.INSTANCE_STATUS_UP,
  });
  assert.equal(address(i), '10.0.0.7:8080,8443s');
  assert.equal(address(Instance.fromPartial({ hostName: 'h' })), 'h');
});

test('watch lines sit in aligned columns under their header and tell evictions from cancels', () => {
  const i = Instance.fromPartial({ app: 'billing', instanceId: 'i-1', ipAddr: '10.0.0.7', port: { number: 8080, enabled: true }, status: InstanceStatus.INSTANCE_STATUS_UP });
  const lines = [
    changeHeader(),
    changeLine({ revision: 12, type: ChangeType.CHANGE_TYPE_ADDED, instance: i, removal: RemovalCause.REMOVAL_CAUSE_UNSPECIFIED }),
    changeLine({ revision: 1234, type: ChangeType.CHANGE_TYPE_DELETED, instance: i, removal: RemovalCause.REMOVAL_CAUSE_EVICTED }),
    changeLine({ revision: 1235, type: ChangeType.CHANGE_TYPE_DELETED, instance: i, removal: RemovalCause.REMOVAL_CAUSE_CANCELLED }),
  ];
  assert.deepEqual(
    lines.map((l) => l.split(/\s{2,}/)[1]),
    ['CHANGE', 'ADDED', 'EVICTED', 'CANCELLED'],
  );
  // Every column starts at the same offset on every line.
  for (const word of ['CHANGE', 'INSTANCE', 'STATUS', 'ADDRESS']) {
    const at = lines[0]!.indexOf(word);
    const cells = lines.slice(1).map((l) => l.slice(at).split(/\s{2,}/)[0]);
    assert.ok(
      cells.every((c) => c !== '' && c !== undefined),
      `${word} column aligned: ${JSON.stringify(lines)}`,
    );
  }
  assert.equal(lines[1], '12        ADDED      billing/i-1                           UP              10.0.0.7:8080\n');
});
