import type { InstanceStatus } from './types.js';

/**
 * The status override rule chain (Eureka's InstanceStatusOverrideRule), first match wins:
 * 1. an instance reporting DOWN, STARTING or UNKNOWN keeps that status;
 * 2. else an operator override applies;
 * 3. else, for client writes, an existing lease's UP or OUT_OF_SERVICE is kept;
 * 4. else the instance's own status.
 */
export function resolveStatus(reported: InstanceStatus, override: InstanceStatus | undefined, existing: InstanceStatus | undefined): InstanceStatus {
  if (reported === 'DOWN' || reported === 'STARTING' || reported === 'UNKNOWN') return reported;
  if (override !== undefined) return override;
  if (existing === 'UP' || existing === 'OUT_OF_SERVICE') return existing;
  return reported;
}

/**
 * The status an instance itself last reported, recovered from a stored record (which keeps
 * only the effective status and the override). An effective DOWN, STARTING or UNKNOWN that the
 * override did not produce can only come from rule 1, so it is the reported one; anything
 * else resolves the same as UP under the rule chain (an override then applies), so UP stands
 * for it. Exact whenever the distinction matters, except a DOWN or STARTING that both the
 * instance and the override say, which the instance's next register settles.
 */
export function reportedStatusOf(record: { readonly status: InstanceStatus; readonly overriddenStatus: InstanceStatus | undefined }): InstanceStatus {
  const { status, overriddenStatus } = record;
  if ((status === 'DOWN' || status === 'STARTING' || status === 'UNKNOWN') && status !== overriddenStatus) return status;
  return status === 'OUT_OF_SERVICE' && overriddenStatus === undefined ? 'OUT_OF_SERVICE' : 'UP';
}
