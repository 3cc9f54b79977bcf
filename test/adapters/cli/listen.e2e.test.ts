import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { Webhook } from 'standardwebhooks';
import {
  award,
  createMember,
  createProgram,
  runningClock,
  startTestApp,
  type TestApp,
} from '../../support/api.ts';
import { startFaultProxy, type FaultProxy } from '../../support/faultProxy.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';
import { headerOf, startReceiver, type Receiver } from '../../support/receiver.ts';

const root = new URL('../../../', import.meta.url).pathname;

/** The docs' verification snippet, unchanged but for types. */
function verifyWebhook(payload: string, signature: string, secret: string): boolean {
  const expected = createHmac('sha256', secret).update(payload).digest('hex');
  return timingSafeEqual(Buffer.from(signature), Buffer.from(expected));
}

type Cli = { child: ChildProcess; out: () => string; err: () => string };

/** `incentable listen …` as a child process, as a developer runs it. */
const startCli = (args: string[]): Cli => {
  const child = spawn(process.execPath, ['bin/incentable.js', 'listen', ...args], {
    cwd: root,
    env: { ...process.env, INCENTABLE_KEY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  return { child, out: () => out, err: () => err };
};

const count = (text: string, pattern: RegExp) => text.match(pattern)?.length ?? 0;

describe('incentable listen', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let proxy: FaultProxy;
  let receiver: Receiver;
  let programId: string;
  const clis: Cli[] = [];

  before(async () => {
    app = await startTestApp({ clock: runningClock() });
    proxy = await startFaultProxy(app.url);
    receiver = await startReceiver();
    programId = (await createProgram(app.api)).id;
  });
  after(async () => {
    for (const cli of clis) if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    await proxy?.close();
    await receiver?.close();
    await app?.stop();
  });

  const envelopesOf = async (types: string[]) =>
    (
      await sql<{ envelope_id: string; body: string }>`
        select envelope_id, body from webhook_envelopes
        where program_id = ${programId} and type = any(${types}::text[]) and not is_test
        order by seq`.execute(app.runtime.database.db)
    ).rows;

  it('forwards each new webhook, byte for byte and signed, through a dropped stream, and ends at Ctrl-C', async () => {
    const before = await createMember(app.api, programId); // before the session: not forwarded
    const cli = startCli([
      '--url',
      proxy.url.replace(/\/$/, ''),
      '--key',
      app.rootKey,
      '--program',
      programId,
      '--forward-to',
      receiver.url,
      '--events',
      'points.*,member.created',
    ]);
    clis.push(cli);
    await waitFor('the CLI to connect', () => cli.err().includes('Connected'), 30_000);
    const secret = /session is (whsec_\S+)/.exec(cli.err())?.[1];
    assert.ok(secret, cli.err());

    const member = await createMember(app.api, programId);
    await award(app.api, programId, member.id, 40);
    await receiver.waitForCount(2);

    // The stream drops (a proxy restart, a deploy): the CLI resumes after its last event.
    proxy.cut();
    await award(app.api, programId, member.id, 2);
    await award(app.api, programId, before.id, 3);
    await receiver.waitForCount(4, { timeoutMs: 20_000 });
    await waitFor('four lines printed', () => count(cli.out(), /-> 200/g) === 4);
    assert.match(cli.err(), /Stream dropped|Reconnecting/);

    const expected = await envelopesOf(['member.created', 'points.awarded']);
    // Only what happened after the session began, each exactly once, in order.
    const ours = expected.slice(expected.findIndex((e) => e.body.includes(member.id)));
    assert.deepEqual(
      receiver.received.map((r) => headerOf(r, 'webhook-id')),
      ours.map((e) => e.envelope_id),
    );
    for (const [i, got] of receiver.received.entries()) {
      assert.equal(got.body, ours[i]!.body, 'the envelope bytes as stored');
      assert.ok(verifyWebhook(got.body, headerOf(got, 'x-incentable-signature'), secret));
      new Webhook(secret).verify(got.body, got.headers as Record<string, string>);
      assert.equal(
        headerOf(got, 'x-incentable-event'),
        (JSON.parse(got.body) as { type: string }).type,
      );
    }
    assert.match(cli.out(), /points\.awarded {2}evt_\S+ {2}-> 200 {2}\(\d+ ms\)/);

    cli.child.kill('SIGINT');
    const [code] = (await once(cli.child, 'exit')) as [number | null];
    assert.equal(code, 0);
    assert.match(cli.err(), /Session ended/);
  });

  it('prints the envelopes with --print-json', async () => {
    const cli = startCli([
      '--url',
      app.url,
      '--key',
      app.rootKey,
      '--program',
      programId,
      '--print-json',
      '--events',
      'member.created',
    ]);
    clis.push(cli);
    await waitFor('the CLI to connect', () => cli.err().includes('Connected'), 30_000);
    const member = await createMember(app.api, programId);
    await waitFor('one line', () => cli.out().includes(member.id));
    const printed = JSON.parse(cli.out().trim()) as { type: string; data: { member_id: string } };
    assert.equal(printed.type, 'member.created');
    const [stored] = (await envelopesOf(['member.created'])).filter((e) =>
      e.body.includes(member.id),
    );
    assert.equal(cli.out().trim(), stored!.body);
    cli.child.kill('SIGINT');
    await once(cli.child, 'exit');
  });

  it('stops with a clear message when the key is refused, and refuses an unknown type', async () => {
    const refused = startCli([
      '--url',
      app.url,
      '--key',
      'not-a-key-at-all-0123456789abcdef',
      '--program',
      programId,
      '--print-json',
    ]);
    clis.push(refused);
    const [code] = (await once(refused.child, 'exit')) as [number | null];
    assert.equal(code, 1);
    assert.match(refused.err(), /refused the stream \(401/);

    const badType = startCli([
      ...['--url', app.url, '--key', app.rootKey, '--program', programId],
      ...['--print-json', '--events', 'points.teleported'],
    ]);
    clis.push(badType);
    const [badCode] = (await once(badType.child, 'exit')) as [number | null];
    assert.equal(badCode, 1);
    assert.match(badType.err(), /refused the stream \(400: .*event type/);
  });
});
