/**
 * NATS as a trust boundary (issue 15): the users `metaprune up` generates, on a real
 * nats-server configured the way `up` configures it. Strangers cannot connect; an evaluator
 * cannot publish jobs or write the memo; the console cannot write anything; the controller
 * can do its work.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateSecrets, natsUrlWithCredentials, natsUsers } from '@metaprune/cli';
import { connectNats, openKv } from '@metaprune/runtime';
import { type NatsServerHandle, startNatsServer } from '@metaprune/testkit';
import { NATS_NAMES, type NatsRole, natsAuthorizationBlock } from '@metaprune/wire';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('NATS users and subject permissions of the local stack', () => {
  const home = mkdtempSync(join(tmpdir(), 'sec-nats-'));
  const secrets = loadOrCreateSecrets(home);
  let nats: NatsServerHandle;
  const conns: NatsConnection[] = [];
  const as = async (role: NatsRole) => {
    const nc = await connectNats({
      servers: natsUrlWithCredentials(nats.url, secrets, role),
      name: `sec-${role}`,
      timeoutMs: 3000,
    });
    conns.push(nc);
    return nc;
  };
  const refused = (p: Promise<unknown>) =>
    expect(p).rejects.toThrow(/[Pp]ermission|[Aa]uthoriz|timeout|TIMEOUT|503|no responders/);

  beforeAll(async () => {
    const conf = join(home, 'nats.conf');
    writeFileSync(conf, natsAuthorizationBlock(natsUsers(secrets)), { mode: 0o600 });
    nats = await startNatsServer({ extraArgs: ['-c', conf] });
    // the streams and buckets exist as in a running stack (created by their owners)
    const admin = await as('admin');
    const jsm = await jetstreamManager(admin);
    const { ensureEvaluationStreams } = await import('@metaprune/wire');
    await ensureEvaluationStreams(jsm);
    for (const b of [NATS_NAMES.memoBucket, NATS_NAMES.trainingBucket]) {
      await openKv(jetstream(admin), b);
    }
  });
  afterAll(async () => {
    for (const c of conns) await c.close().catch(() => {});
    await nats?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('keeps the secrets owner-only and refuses connections without credentials', async () => {
    expect(statSync(join(home, 'secrets.json')).mode & 0o777).toBe(0o600);
    await expect(
      connectNats({ servers: nats.url, name: 'stranger', timeoutMs: 3000 }),
    ).rejects.toThrow(/[Aa]uthoriz/);
    await expect(
      connectNats({
        servers: nats.url,
        name: 'guesser',
        user: secrets.nats.evaluator.user,
        pass: 'wrong',
        timeoutMs: 3000,
      }),
    ).rejects.toThrow(/[Aa]uthoriz/);
  });

  it('an evaluator cannot publish evaluation jobs nor write the memo or training records', async () => {
    const nc = await as('evaluator');
    const js = jetstream(nc, { timeout: 2000 });
    await refused(js.publish(`${NATS_NAMES.jobsSubjectPrefix}.e${'0'.repeat(40)}`, 'forged'));
    await refused(js.publish(`$KV.${NATS_NAMES.memoBucket}.e${'1'.repeat(40)}`, '{"top1":1}'));
    await refused(js.publish(`$KV.${NATS_NAMES.trainingBucket}.job-x`, '{}'));
    // what it is for still works: a result
    const ack = await js.publish(`${NATS_NAMES.resultsSubjectPrefix}.e${'2'.repeat(40)}`, 'r');
    expect(ack.stream).toBe(NATS_NAMES.resultsStream);
  });

  it('the console reads but writes nothing; the controller publishes jobs and writes the memo', async () => {
    const consoleNc = await as('console');
    const cjs = jetstream(consoleNc, { timeout: 2000 });
    await refused(cjs.publish(`$KV.${NATS_NAMES.trainingBucket}.job-y`, '{}'));
    await refused(cjs.publish(`${NATS_NAMES.resultsSubjectPrefix}.e${'3'.repeat(40)}`, 'r'));
    const info = await (await jetstreamManager(consoleNc)).streams.info(NATS_NAMES.jobsStream);
    expect(info.config.name).toBe(NATS_NAMES.jobsStream);

    const ctl = jetstream(await as('controller'), { timeout: 2000 });
    const ack = await ctl.publish(`${NATS_NAMES.jobsSubjectPrefix}.e${'4'.repeat(40)}`, 'job');
    expect(ack.stream).toBe(NATS_NAMES.jobsStream);
    const memo = await openKv(ctl, NATS_NAMES.memoBucket);
    expect(await memo.put(`e${'5'.repeat(40)}`, '{}')).toBeGreaterThan(0);
  });
});
