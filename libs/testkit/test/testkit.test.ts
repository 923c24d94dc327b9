import { existsSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  findNatsServer,
  freePort,
  type NatsServerHandle,
  startNatsServer,
  tempDir,
  waitFor,
} from '../src/index.js';

/** Reads the INFO line a NATS server sends on connect. */
function readInfo(port: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\r\n');
      if (nl >= 0) {
        sock.destroy();
        const line = buf.slice(0, nl);
        if (!line.startsWith('INFO ')) reject(new Error(`unexpected first line: ${line}`));
        else resolve(JSON.parse(line.slice(5)) as Record<string, unknown>);
      }
    });
    sock.on('error', reject);
  });
}

describe('freePort / tempDir / waitFor', () => {
  it('freePort returns a port that can be bound', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    await new Promise<void>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()));
    });
  });

  it('tempDir creates a directory and removes it', async () => {
    const dir = tempDir('testkit-');
    expect(existsSync(dir.path)).toBe(true);
    writeFileSync(join(dir.path, 'x.txt'), 'x');
    await dir.remove();
    expect(existsSync(dir.path)).toBe(false);
    await dir.remove(); // idempotent
  });

  it('waitFor returns the truthy value', async () => {
    let n = 0;
    const v = await waitFor(() => (++n >= 3 ? n : 0), { intervalMs: 1 });
    expect(v).toBe(3);
  });

  it('waitFor names what it waited for on timeout, with the last error', async () => {
    await expect(
      waitFor(
        () => {
          throw new Error('not yet');
        },
        { timeoutMs: 50, intervalMs: 5, what: 'the widget to be ready' },
      ),
    ).rejects.toThrow(/timed out after 50 ms waiting for the widget to be ready.*not yet/);
  });
});

describe('findNatsServer', () => {
  it('finds the installed binary', () => {
    expect(findNatsServer()).toMatch(/nats-server$/);
  });

  it('explains how to install nats-server when missing', () => {
    expect(() => findNatsServer({ PATH: '/nonexistent' }, ['/also-nonexistent'])).toThrow(
      /apt-get install nats-server/,
    );
    expect(() => findNatsServer({ NATS_SERVER_BIN: '/nope/nats-server' })).toThrow(
      /NATS_SERVER_BIN=\/nope\/nats-server is not an executable/,
    );
  });
});

describe('startNatsServer', () => {
  const servers: NatsServerHandle[] = [];
  afterAll(async () => {
    for (const s of servers) await s.stop();
  });

  it('starts a JetStream server on a free loopback port', async () => {
    const s = await startNatsServer({ jetstream: true });
    servers.push(s);
    expect(s.url).toBe(`nats://127.0.0.1:${s.port}`);
    expect(s.running).toBe(true);
    expect(s.pid).toBeGreaterThan(0);
    expect(existsSync(s.storeDir)).toBe(true);
    const info = await readInfo(s.port);
    expect(info['jetstream']).toBe(true);
    expect(s.logs().some((l) => l.includes('Server is ready'))).toBe(true);
  });

  it('kill(SIGKILL) then restart() comes back on the same port and store dir', async () => {
    const s = await startNatsServer({ jetstream: true });
    servers.push(s);
    const { port, storeDir, pid } = s;
    await s.kill('SIGKILL');
    expect(s.running).toBe(false);
    await expect(readInfo(port)).rejects.toThrow();
    await s.restart();
    expect(s.running).toBe(true);
    expect(s.port).toBe(port);
    expect(s.storeDir).toBe(storeDir);
    expect(s.pid).not.toBe(pid);
    expect((await readInfo(port))['jetstream']).toBe(true);
  });

  it('stop() removes a temp store dir but keeps a given one', async () => {
    const s = await startNatsServer();
    await s.stop();
    expect(s.running).toBe(false);
    expect(existsSync(s.storeDir)).toBe(false);

    const dir = tempDir('testkit-store-');
    const t = await startNatsServer({ storeDir: dir.path });
    expect(t.storeDir).toBe(dir.path);
    await t.stop();
    expect(existsSync(dir.path)).toBe(true);
    await dir.remove();
  });

  it('honours a fixed port and reports a clear error when it is taken', async () => {
    const port = await freePort();
    const s = await startNatsServer({ port });
    servers.push(s);
    expect(s.port).toBe(port);
    await expect(startNatsServer({ port, startTimeoutMs: 5000 })).rejects.toThrow(
      /nats-server exited during startup/,
    );
  });

  it('requires credentials when user/pass are set', async () => {
    const s = await startNatsServer({ user: 'alice', pass: 's3cret' });
    servers.push(s);
    const info = await readInfo(s.port);
    expect(info['auth_required']).toBe(true);
  });
});
