import { ChangeType, InstanceStatus, RemovalCause, type Change, type Instance } from '../gen/roster/v1/instance.js';

const STATUS_PREFIX = 'INSTANCE_STATUS_';

/** `INSTANCE_STATUS_OUT_OF_SERVICE` → `OUT_OF_SERVICE`; "-" for unset. */
export function statusName(status: InstanceStatus): string {
  if (status === InstanceStatus.INSTANCE_STATUS_UNSPECIFIED) return '-';
  return (InstanceStatus[status] ?? String(status)).replace(STATUS_PREFIX, '');
}

/** Parses a status as an operator types it (`up`, `OUT_OF_SERVICE`, `INSTANCE_STATUS_DOWN`). */
export function parseStatus(text: string): InstanceStatus | undefined {
  const key = text.trim().toUpperCase().replace(/-/g, '_');
  const value = (InstanceStatus as unknown as Record<string, InstanceStatus | undefined>)[key.startsWith(STATUS_PREFIX) ? key : STATUS_PREFIX + key];
  return value === undefined || value === InstanceStatus.INSTANCE_STATUS_UNSPECIFIED ? undefined : value;
}

/** Rows as columns separated by two spaces, each as wide as its widest cell; no trailing blanks. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

/** `10.0.0.7:8080`, with the secure port when enabled (`10.0.0.7:8080,8443s`). */
export function address(i: Instance): string {
  const host = i.ipAddr || i.hostName || '-';
  const ports = [i.port?.enabled ? String(i.port.number) : '', i.securePort?.enabled ? `${i.securePort.number}s` : ''].filter((p) => p !== '');
  return ports.length === 0 ? host : `${host}:${ports.join(',')}`;
}

/** One line per application: its instance count and the count per status. */
export function applicationsTable(instances: readonly Instance[]): string {
  const apps = new Map<string, Map<string, number>>();
  for (const i of instances) {
    const counts = apps.get(i.app) ?? new Map<string, number>();
    const s = statusName(i.status);
    counts.set(s, (counts.get(s) ?? 0) + 1);
    apps.set(i.app, counts);
  }
  const rows = [...apps].map(([app, counts]) => {
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const summary = [...counts]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([s, n]) => `${s} ${n}`)
      .join(', ');
    return [app, String(total), summary];
  });
  return table(['APP', 'INSTANCES', 'STATUS'], rows);
}

/** One line per instance of an application. */
export function instancesTable(instances: readonly Instance[]): string {
  return table(
    ['INSTANCE', 'STATUS', 'OVERRIDE', 'ADDRESS', 'HOST', 'VIP', 'ZONE'],
    instances.map((i) => [i.instanceId, statusName(i.status), statusName(i.overriddenStatus), address(i), i.hostName || '-', i.vipAddress || '-', i.zone || '-']),
  );
}

/** Every field of one instance, one per line. */
export function instanceDetails(i: Instance): string {
  const time = (ms: number | undefined): string => (ms ? new Date(ms).toISOString() : '-');
  const rows: [string, string][] = [
    ['app', i.app],
    ['instance', i.instanceId],
    ['status', statusName(i.status)],
    ['override', statusName(i.overriddenStatus)],
    ['host', i.hostName || '-'],
    ['address', address(i)],
    ['vip', i.vipAddress || '-'],
    ['secure vip', i.secureVipAddress || '-'],
    ['zone', i.zone || '-'],
    ['region', i.region || '-'],
    ['home page', i.homePageUrl || '-'],
    ['status page', i.statusPageUrl || '-'],
    ['health check', i.healthCheckUrl || '-'],
    ['lease', `renew every ${i.lease?.renewalIntervalSecs ?? 0}s, expires after ${i.lease?.durationSecs ?? 0}s`],
    ['registered', time(i.lease?.registrationTimestamp)],
    ['last renewal', time(i.lease?.lastRenewalTimestamp)],
    ['up since', time(i.lease?.serviceUpTimestamp)],
    ['last dirty', time(i.lastDirtyTimestamp)],
    ['last updated', time(i.lastUpdatedTimestamp)],
    ...Object.keys(i.metadata)
      .sort()
      .map((k): [string, string] => [`metadata ${k}`, i.metadata[k]!]),
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return `${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`;
}

/** The statuses an operator may force, as typed on the command line. */
export const SETTABLE_STATUSES = ['UP', 'DOWN', 'STARTING', 'OUT_OF_SERVICE'] as const;

/** Watch columns are fixed-width (a stream cannot measure rows it has not seen); longer cells push the line. */
const WATCH_COLUMNS = [
  { header: 'REVISION', width: 8 },
  { header: 'CHANGE', width: 9 },
  { header: 'INSTANCE', width: 36 },
  { header: 'STATUS', width: 14 },
  { header: 'ADDRESS', width: 0 },
] as const;

function watchRow(cells: readonly string[]): string {
  return `${cells
    .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(WATCH_COLUMNS[i]!.width)))
    .join('  ')
    .trimEnd()}\n`;
}

/** The column header printed once above {@link changeLine}s. */
export function changeHeader(): string {
  return watchRow(WATCH_COLUMNS.map((c) => c.header));
}

/** What happened, in one word: ADDED, MODIFIED, and for removals CANCELLED or EVICTED (DELETED when not said). */
export function changeKind(c: Change): string {
  if (c.type === ChangeType.CHANGE_TYPE_DELETED) {
    if (c.removal === RemovalCause.REMOVAL_CAUSE_CANCELLED) return 'CANCELLED';
    if (c.removal === RemovalCause.REMOVAL_CAUSE_EVICTED) return 'EVICTED';
  }
  return (ChangeType[c.type] ?? String(c.type)).replace('CHANGE_TYPE_', '');
}

/** `12        EVICTED    billing/i-1   UP   10.0.0.7:8080`, aligned under {@link changeHeader}. */
export function changeLine(c: Change): string {
  const i = c.instance;
  if (i === undefined) return watchRow([String(c.revision), changeKind(c)]);
  return watchRow([String(c.revision), changeKind(c), `${i.app}/${i.instanceId}`, statusName(i.status), address(i)]);
}
