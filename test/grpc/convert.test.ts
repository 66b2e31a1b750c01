import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RegistryError } from '../../src/core/errors.js';
import { STATUSES, type InstanceView } from '../../src/core/types.js';
import { ChangeType, Instance, InstanceStatus } from '../../src/gen/roster/v1/instance.js';
import { ListApplicationsResponse } from '../../src/gen/roster/v1/registry_service.js';
import { changeToProto, encodedSizeBound, instanceToProto, registrationFromProto, statusFromProto, statusToProto } from '../../src/grpc/convert.js';
import { protoInstance, registration } from './helpers.js';

const invalidField = (field: string) => (err: unknown) => err instanceof RegistryError && err.kind === 'invalid_argument' && err.field === field;

const view = (overrides: Partial<InstanceView['record']> = {}): InstanceView => ({
  record: {
    ...registration(),
    overriddenStatus: undefined,
    lastUpdatedTimestamp: 2_000,
    ...overrides,
  },
  lease: { registrationTimestamp: 10, lastRenewalTimestamp: 20, evictionTimestamp: 0, serviceUpTimestamp: 15 },
});

describe('statuses', () => {
  test('every domain status survives the round trip', () => {
    for (const s of STATUSES) assert.equal(statusFromProto(statusToProto(s), 'status'), s);
  });

  test('UNSPECIFIED means "not set" both ways', () => {
    assert.equal(statusFromProto(InstanceStatus.INSTANCE_STATUS_UNSPECIFIED, 'status'), undefined);
    assert.equal(statusToProto(undefined), InstanceStatus.INSTANCE_STATUS_UNSPECIFIED);
  });

  test('a number outside the enum is refused naming the field', () => {
    assert.throws(() => statusFromProto(42 as InstanceStatus, 'instance.status'), invalidField('instance.status'));
    assert.throws(() => statusFromProto(InstanceStatus.UNRECOGNIZED, 'status'), invalidField('status'));
  });
});

describe('registrationFromProto', () => {
  test('copies every client-set field', () => {
    assert.deepEqual(registrationFromProto(protoInstance()), {
      app: 'Billing',
      instanceId: 'i-1',
      hostName: 'billing-1.example.internal',
      ipAddr: '10.0.0.1',
      port: { number: 8080, enabled: true },
      securePort: { number: 8443, enabled: true },
      status: 'UP',
      vipAddress: 'billing,billing-v2',
      secureVipAddress: 'billing-secure',
      zone: 'us-east-1a',
      region: 'us-east-1',
      metadata: { version: '1.2.3', team: 'payments' },
      homePageUrl: 'http://billing-1:8080/',
      statusPageUrl: 'http://billing-1:8080/status',
      healthCheckUrl: 'http://billing-1:8080/health',
      renewalIntervalSecs: 10,
      durationSecs: 30,
      lastDirtyTimestamp: 1_700_000_000_000,
    });
  });

  test('status UNSPECIFIED means UP; missing ports and lease mean "not set"', () => {
    const input = registrationFromProto(Instance.fromPartial({ app: 'a', instanceId: 'i', status: InstanceStatus.INSTANCE_STATUS_UNSPECIFIED }));
    assert.equal(input.status, 'UP');
    assert.deepEqual(input.port, { number: 0, enabled: false });
    assert.deepEqual(input.securePort, { number: 0, enabled: false });
    assert.equal(input.renewalIntervalSecs, 0);
    assert.equal(input.durationSecs, 0);
  });

  test('other statuses pass through; overridden_status is ignored', () => {
    const input = registrationFromProto(protoInstance({ status: InstanceStatus.INSTANCE_STATUS_STARTING, overriddenStatus: InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE }));
    assert.equal(input.status, 'STARTING');
    assert.equal('overriddenStatus' in input, false);
  });

  test('refuses what only the wire can get wrong', () => {
    assert.throws(() => registrationFromProto(undefined), invalidField('instance'));
    assert.throws(() => registrationFromProto(protoInstance({ status: 9 as InstanceStatus })), invalidField('instance.status'));
  });
});

describe('instanceToProto and changeToProto', () => {
  test('fill lease timestamps from the view and settings from the record', () => {
    const p = instanceToProto(view({ overriddenStatus: 'OUT_OF_SERVICE', status: 'OUT_OF_SERVICE' }));
    assert.deepEqual(p.lease, {
      renewalIntervalSecs: 30,
      durationSecs: 90,
      registrationTimestamp: 10,
      lastRenewalTimestamp: 20,
      evictionTimestamp: 0,
      serviceUpTimestamp: 15,
    });
    assert.equal(p.status, InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
    assert.equal(p.overriddenStatus, InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
    assert.equal(p.lastDirtyTimestamp, 1_000);
    assert.equal(p.lastUpdatedTimestamp, 2_000);
    assert.deepEqual(p.metadata, { version: '1.2.3' });
    assert.equal(instanceToProto(view()).overriddenStatus, InstanceStatus.INSTANCE_STATUS_UNSPECIFIED);
  });

  test('a registration survives proto -> domain -> proto', () => {
    const sent = protoInstance({ app: 'billing' });
    const back = instanceToProto({ ...view(), record: { ...view().record, ...registrationFromProto(sent) } });
    const { lease: sentLease, ...sentRest } = sent;
    const { lease: backLease, ...backRest } = back;
    assert.deepEqual({ ...backRest, lastUpdatedTimestamp: 0 }, sentRest);
    assert.equal(backLease?.renewalIntervalSecs, sentLease?.renewalIntervalSecs);
    assert.equal(backLease?.durationSecs, sentLease?.durationSecs);
  });

  test('change types map one to one', () => {
    const types = { ADDED: ChangeType.CHANGE_TYPE_ADDED, MODIFIED: ChangeType.CHANGE_TYPE_MODIFIED, DELETED: ChangeType.CHANGE_TYPE_DELETED } as const;
    for (const [type, expected] of Object.entries(types)) {
      const change = changeToProto({ revision: 7, type: type as keyof typeof types, instance: view() });
      assert.equal(change.type, expected);
      assert.equal(change.revision, 7);
      assert.equal(change.instance?.instanceId, 'i-1');
    }
  });
});

describe('encodedSizeBound', () => {
  test('bounds the real encoded size, also with multi-byte metadata', () => {
    const records = [
      view().record,
      view({ metadata: {}, vipAddress: '', secureVipAddress: '' }).record,
      view({ metadata: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}-ключ`, 'значение✓'.repeat(20)])) }).record,
    ];
    for (const record of records) {
      const real = Instance.encode(instanceToProto({ record, lease: view().lease })).finish().length;
      const listed = ListApplicationsResponse.encode({ revision: 0, reconcileHash: '', totalInstances: 0, nodeId: '', instances: [instanceToProto({ record, lease: view().lease })] }).finish().length;
      assert.ok(encodedSizeBound(record) >= listed, `${encodedSizeBound(record)} >= ${listed}, the instance with its list framing`);
      assert.ok(encodedSizeBound(record) <= real * 2 + 300, 'and is not wildly off');
    }
  });
});
