/**
 * The local stack's secrets, generated on the first `metaprune up` and kept in
 * `<home>/secrets.json` (mode 0600, tightened if it was wider): one NATS user per service
 * role (subject permissions in runtime's nats-permissions), and the bearer token that
 * mutating RPCs require. Kept across restarts, so the persisted NATS store, the stack file
 * and the CLI keep matching; delete the file (with the stack down) to rotate everything.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NATS_ROLES, type NatsRole, type NatsUser } from '@metaprune/wire';

export const SECRETS_FORMAT = 1;

export interface StackSecrets {
  format: typeof SECRETS_FORMAT;
  /** NATS user and password per role. */
  nats: Record<NatsRole, { user: string; password: string }>;
  /** Bearer token of mutating RPCs (the operator's; services accept it as admin). */
  token: string;
}

const secret = () => randomBytes(24).toString('base64url');

export function secretsPath(home: string): string {
  return join(home, 'secrets.json');
}

function generate(): StackSecrets {
  const nats = {} as StackSecrets['nats'];
  for (const role of NATS_ROLES) nats[role] = { user: `metaprune-${role}`, password: secret() };
  return { format: SECRETS_FORMAT, nats, token: secret() };
}

function valid(s: unknown): s is StackSecrets {
  const x = s as StackSecrets;
  return (
    x !== null &&
    typeof x === 'object' &&
    x.format === SECRETS_FORMAT &&
    typeof x.token === 'string' &&
    x.token.length >= 16 &&
    NATS_ROLES.every(
      (r) => typeof x.nats?.[r]?.user === 'string' && typeof x.nats[r].password === 'string',
    )
  );
}

/** Reads `<home>/secrets.json`, creating it (0600) when missing; refuses a malformed one. */
export function loadOrCreateSecrets(home: string): StackSecrets {
  const file = secretsPath(home);
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw err;
  }
  if (text === undefined) {
    mkdirSync(home, { recursive: true });
    const s = generate();
    writeFileSync(file, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    return s;
  }
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!valid(parsed)) {
    throw new Error(`${file} is not a metaprune secrets file; move it away to generate a new one`);
  }
  return parsed;
}

/** The NATS users of the stack, for the server's authorization block. */
export function natsUsers(s: StackSecrets): NatsUser[] {
  return NATS_ROLES.map((role) => ({ role, ...s.nats[role] }));
}

/** `nats://user:password@host:port` for a role (what connectNats understands). */
export function natsUrlWithCredentials(url: string, s: StackSecrets, role: NatsRole): string {
  const { user, password } = s.nats[role];
  return url.replace(
    /^([a-z]+:\/\/)/i,
    `$1${encodeURIComponent(user)}:${encodeURIComponent(password)}@`,
  );
}
