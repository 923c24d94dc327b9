/**
 * Test PKI made with the `openssl` command at test time: a CA, a certificate for the
 * services (server and client use, SAN 127.0.0.1 / localhost), and a second, untrusted CA
 * with a client certificate of its own. EC P-256 keys (fast to make).
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  /** Trusted CA certificate. */
  ca: string;
  /** Service certificate and key signed by `ca` (serverAuth + clientAuth). */
  cert: string;
  key: string;
  /** A client certificate and key signed by another CA (must be refused). */
  rogueCert: string;
  rogueKey: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): void {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
    ],
    dir,
  );
}

function makeLeaf(dir: string, name: string, ca: string): void {
  openssl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      '/CN=localhost',
    ],
    dir,
  );
  writeFileSync(
    join(dir, `${name}.ext`),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    ],
    dir,
  );
}

/** Makes the test PKI in `dir` (which must exist). Needs the openssl command. */
export function makeTestPki(dir: string): TestPki {
  makeCa(dir, 'ca');
  makeLeaf(dir, 'service', 'ca');
  makeCa(dir, 'rogue-ca');
  makeLeaf(dir, 'rogue', 'rogue-ca');
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    cert: join(dir, 'service.crt'),
    key: join(dir, 'service.key'),
    rogueCert: join(dir, 'rogue.crt'),
    rogueKey: join(dir, 'rogue.key'),
  };
}
