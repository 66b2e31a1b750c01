import type { InstanceStatus } from './types.js';

/**
 * The status override rule chain (Eureka's InstanceStatusOverrideRule), first match wins:
 * 1. an instance reporting DOWN, STARTING or UNKNOWN keeps that status;
 * 2. else an operator override applies;
 * 3. else, for client writes, an existing lease's UP or OUT_OF_SERVICE is kept;
 * 4. else the instance's own status.
 */
export function resolveStatus(
  reported: InstanceStatus,
  override: InstanceStatus | undefined,
  existing: InstanceStatus | undefined,
): InstanceStatus {
  if (reported === 'DOWN' || reported === 'STARTING' || reported === 'UNKNOWN') return reported;
  if (override !== undefined) return override;
  if (existing === 'UP' || existing === 'OUT_OF_SERVICE') return existing;
  return reported;
}
