import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { outsideScope, type AccessPolicy, type Decision, type Presented, type Role } from '../security/access.js';
import { certificateNames } from '../security/tls-material.js';
import type { ConnectionGate } from './connections.js';

/** What a method needs: `open` (health), or roles, plus where a message names the apps it touches. */
export type MethodNeed = 'open' | { readonly anyOf: readonly Role[]; readonly appsOf?: (message: unknown) => string[] };

type Fields = { app?: unknown; instance?: { app?: unknown }; heartbeats?: Array<{ app?: unknown }> };
const asFields = (message: unknown): Fields => (typeof message === 'object' && message !== null ? (message as Fields) : {});
const str = (value: unknown): string[] => (typeof value === 'string' && value !== '' ? [value] : []);

const ownApp = (message: unknown): string[] => str(asFields(message).app);
const read: MethodNeed = { anyOf: ['read'] };
const operate: MethodNeed = { anyOf: ['operate'] };
const replicate: MethodNeed = { anyOf: ['replicate'] };

/**
 * Every method served on the gRPC port and the roles that may call it. A method missing
 * here needs `operate` (closed by default); test/security checks that every served method
 * is listed.
 */
export const METHOD_NEEDS: Readonly<Record<string, MethodNeed>> = {
  '/roster.v1.RegistryService/Register': { anyOf: ['register'], appsOf: (m) => str(asFields(m).instance?.app) },
  '/roster.v1.RegistryService/Heartbeat': { anyOf: ['register'], appsOf: ownApp },
  '/roster.v1.RegistryService/Heartbeats': { anyOf: ['register'], appsOf: (m) => (asFields(m).heartbeats ?? []).flatMap((h) => str(h.app)) },
  // `register` cancels within its apps; `operate` cancels anything.
  '/roster.v1.RegistryService/Cancel': { anyOf: ['register', 'operate'], appsOf: ownApp },
  '/roster.v1.RegistryService/SetStatusOverride': operate,
  '/roster.v1.RegistryService/ClearStatusOverride': operate,
  '/roster.v1.RegistryService/UpdateMetadata': operate,
  '/roster.v1.RegistryService/GetInstance': read,
  '/roster.v1.RegistryService/ListApplications': read,
  '/roster.v1.RegistryService/GetApplication': read,
  '/roster.v1.RegistryService/ListByVip': read,
  '/roster.v1.RegistryService/GetDelta': read,
  '/roster.v1.RegistryService/Watch': read,
  '/roster.v1.ReplicationService/Replicate': replicate,
  '/roster.v1.ReplicationService/Snapshot': replicate,
  '/roster.v1.ReplicationService/Digest': replicate,
  '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources': read,
  '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources': read,
  // Load balancers and Kubernetes probe health without credentials.
  '/grpc.health.v1.Health/Check': 'open',
  '/grpc.health.v1.Health/Watch': 'open',
  '/grpc.health.v1.Health/List': 'open',
  '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo': read,
  '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo': read,
};

const UNLISTED: MethodNeed = operate;

/** The need of a method path. */
export function needOf(path: string): MethodNeed {
  return METHOD_NEEDS[path] ?? UNLISTED;
}

/** Why a call was refused before reaching its handler, for the metrics. */
export type RefusalReason = 'unauthenticated' | 'permission_denied' | 'call_limit';

export interface GuardOptions {
  /** The policy in force now (it changes when the credentials file is reloaded). */
  readonly policy: () => AccessPolicy;
  /** Counts calls per connection and in total; absent: no call caps. */
  readonly gate?: ConnectionGate;
  readonly onRefused?: (method: string, reason: RefusalReason) => void;
  readonly logger: Logger;
}

/** The method name alone, for messages: `/roster.v1.RegistryService/Register` → `Register`. */
const actionOf = (path: string): string => path.slice(path.lastIndexOf('/') + 1);

/** Bearer token from `authorization`, names of a certificate the TLS layer verified. */
function presentedBy(metadata: grpc.Metadata, call: grpc.ServerInterceptingCallInterface): Presented {
  const header = metadata.get('authorization')[0];
  const token = typeof header === 'string' ? (/^Bearer\s+(.+)$/i.exec(header)?.[1] ?? header) : undefined;
  const cert = call.getAuthContext().sslPeerCertificate;
  const names = cert ? certificateNames(cert.subject?.CN as string | undefined, cert.subjectaltname) : undefined;
  return { ...(token !== undefined ? { token } : {}), ...(names ? { certificateNames: names } : {}) };
}

/**
 * The one place calls are admitted: call caps first, then who the caller is and whether its
 * roles allow the method, then (for app-scoped `register` credentials) the apps each message
 * touches. A refused call or message never reaches the handler, so it changes nothing.
 */
export function guard(options: GuardOptions): grpc.ServerInterceptor {
  const log = options.logger.child({ component: 'guard' });
  return (descriptor, call) => {
    const method = descriptor.path;
    const need = needOf(method);
    let decision: Decision | undefined;
    let release: (() => void) | undefined;
    const refuse = (code: grpc.status, details: string, reason: RefusalReason): void => {
      options.onRefused?.(method, reason);
      if (reason !== 'call_limit') log.debug({ method, peer: call.getPeer(), reason }, 'call refused');
      intercepted.sendStatus({ code, details });
    };
    const intercepted: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, forward) => {
            if (options.gate) {
              const admission = options.gate.admitCall(call.getConnectionInfo());
              if (!admission.ok) return refuse(grpc.status.RESOURCE_EXHAUSTED, admission.message, 'call_limit');
              release = admission.release;
            }
            if (need !== 'open') {
              decision = options.policy().decide(presentedBy(metadata, call), { action: actionOf(method), anyOf: need.anyOf });
              if (!decision.allowed) {
                const unauthenticated = decision.code === 'unauthenticated';
                return refuse(unauthenticated ? grpc.status.UNAUTHENTICATED : grpc.status.PERMISSION_DENIED, decision.message, decision.code);
              }
            }
            forward(metadata);
          },
          onReceiveMessage: (message, deliver) => {
            if (need !== 'open' && need.appsOf && decision?.allowed && decision.apps !== undefined) {
              for (const app of need.appsOf(message)) {
                const refusal = outsideScope(decision, actionOf(method), app);
                if (refusal && !refusal.allowed) return refuse(grpc.status.PERMISSION_DENIED, refusal.message, 'permission_denied');
              }
            }
            deliver(message);
          },
          onCancel: () => release?.(),
        }),
      sendStatus: (status, next) => {
        release?.();
        next(status);
      },
    });
    return intercepted;
  };
}
