import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * What a credential may do. `read`: lists, lookups, Watch, xDS. `register`: Register,
 * Heartbeat(s) and Cancel, optionally only for named apps. `operate`: status overrides,
 * metadata, cancel of any instance. `replicate`: the peer-to-peer ReplicationService.
 */
export const ROLES = ['read', 'register', 'operate', 'replicate'] as const;
export type Role = (typeof ROLES)[number];

/** Who a caller turned out to be. Carries no secret, so it may be logged by name. */
export interface Principal {
  readonly name: string;
  readonly roles: ReadonlySet<Role>;
  /** Apps the `register` role is limited to (lower case); undefined: any app. */
  readonly apps?: ReadonlySet<string>;
}

/** A principal as configured: how it proves itself (token digest and/or certificate name). */
export interface PrincipalEntry extends Principal {
  /** SHA-256 of the bearer token. Only digests are kept, so a heap dump shows no token. */
  readonly tokenSha256?: Buffer;
  /** A verified client certificate's subject CN or one of its DNS/URI names. */
  readonly certificate?: string;
}

/** What a caller presented: a bearer token and/or the names of a verified client certificate. */
export interface Presented {
  readonly token?: string;
  readonly certificateNames?: readonly string[];
}

/** The roles that satisfy a call; `register` may come with an app restriction checked per message. */
export interface Need {
  /** For messages: the method or endpoint, e.g. `Register` or `POST /eureka/apps/:app`. */
  readonly action: string;
  readonly anyOf: readonly Role[];
}

export type Decision =
  | {
      readonly allowed: true;
      readonly principal: Principal | undefined;
      /** Apps this call may touch (from a `register` restriction); undefined: any. */
      readonly apps: ReadonlySet<string> | undefined;
    }
  | { readonly allowed: false; readonly code: 'unauthenticated' | 'permission_denied'; readonly message: string };

export interface AccessPolicyOptions {
  readonly principals: readonly PrincipalEntry[];
  /** Roles refused to callers who present no known credential. Empty: an open node. */
  readonly enforced: ReadonlySet<Role>;
  /**
   * Roles of a verified client certificate that matches no entry (mTLS without a credentials
   * file: the CA is the trust boundary). Empty: such a certificate identifies nobody.
   */
  readonly certificateRoles: ReadonlySet<Role>;
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** The SHA-256 digest of a token, as the credentials file may hold it instead of the token. */
export function tokenDigest(token: string): Buffer {
  return sha256(token);
}

/**
 * Decides who a caller is and whether it may do something. Transport-free: the gRPC guard and
 * the HTTP wrapper both feed it what the caller presented. Tokens are compared as SHA-256
 * digests with `timingSafeEqual` against every entry (no early exit), so neither a token's
 * content nor its length nor its position in the file shows in the timing.
 */
export class AccessPolicy {
  readonly #principals: readonly PrincipalEntry[];
  readonly #enforced: ReadonlySet<Role>;
  readonly #certificateRoles: ReadonlySet<Role>;

  constructor(options: AccessPolicyOptions) {
    this.#principals = options.principals;
    this.#enforced = options.enforced;
    this.#certificateRoles = options.certificateRoles;
  }

  /** A node that lets everyone do everything (no credentials configured). */
  static open(): AccessPolicy {
    return new AccessPolicy({ principals: [], enforced: new Set(), certificateRoles: new Set() });
  }

  /** True when no role is enforced: anyone who reaches the port may do anything. */
  get open(): boolean {
    return this.#enforced.size === 0;
  }

  /** Whether a role is refused to anonymous callers. */
  enforces(role: Role): boolean {
    return this.#enforced.has(role);
  }

  /** The principal behind a credential, if any; a token wins over a certificate. */
  identify(presented: Presented): Principal | undefined {
    if (presented.token !== undefined) {
      const given = sha256(presented.token);
      let found: PrincipalEntry | undefined;
      for (const p of this.#principals) {
        if (p.tokenSha256 !== undefined && timingSafeEqual(p.tokenSha256, given) && found === undefined) found = p;
      }
      return found;
    }
    const names = presented.certificateNames;
    if (names === undefined || names.length === 0) return undefined;
    const entry = this.#principals.find((p) => p.certificate !== undefined && names.includes(p.certificate));
    if (entry) return entry;
    return this.#certificateRoles.size > 0 ? { name: `certificate:${names[0]}`, roles: this.#certificateRoles } : undefined;
  }

  /** May this caller do `need`? Refusals carry a message fit for the caller (it names roles, never secrets). */
  decide(presented: Presented, need: Need): Decision {
    const principal = this.identify(presented);
    if (!need.anyOf.some((role) => this.#enforced.has(role))) return { allowed: true, principal, apps: undefined };
    if (principal === undefined) {
      const message =
        presented.token !== undefined
          ? `${need.action}: the credential presented is not known`
          : `${need.action} requires a credential with role ${need.anyOf.join(' or ')} (authorization: Bearer <token>, or a client certificate)`;
      return { allowed: false, code: 'unauthenticated', message };
    }
    const held = need.anyOf.filter((role) => principal.roles.has(role));
    if (held.length === 0) {
      return { allowed: false, code: 'permission_denied', message: `${need.action}: ${principal.name} lacks role ${need.anyOf.join(' or ')}` };
    }
    // Only `register` is app-scoped: a principal that also holds another sufficient role is not limited.
    const scoped = held.every((role) => role === 'register') ? principal.apps : undefined;
    return { allowed: true, principal, apps: scoped };
  }
}

/** The refusal for an app outside a `register` restriction, or undefined when `app` is allowed. */
export function outsideScope(decision: Decision, action: string, app: string): Decision | undefined {
  if (!decision.allowed || decision.apps === undefined) return undefined;
  if (decision.apps.has(app.toLowerCase())) return undefined;
  const who = decision.principal?.name ?? 'caller';
  return { allowed: false, code: 'permission_denied', message: `${action}: ${who} may not register app "${app.toLowerCase()}"` };
}
