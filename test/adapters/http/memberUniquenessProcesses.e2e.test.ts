import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  apiClient,
  createProgram,
  expectStatus,
  type Api,
  type MemberView,
  type Page,
} from '../../support/api.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  waitFor,
  type TestDatabase,
} from '../../support/postgres.ts';
import { listeningUrl, startService, type Service } from '../../support/service.ts';

type Created = MemberView & { position: string };
type Conflict = { error: { code: string; field?: string; member_id?: string } };

/**
 * The test: a CRM sync that retries a create through two API processes on one
 * PostgreSQL. Only the event store's optimistic concurrency stands between them.
 */
describe('one member per person across two processes', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  let dataDir: string;
  const rootKey = randomBytes(24).toString('base64url');
  const services: Service[] = [];
  const apis: Api[] = [];

  before(async () => {
    database = await createTestDatabase();
    dataDir = mkdtempSync(join(tmpdir(), 'incentable-unique-'));
    for (let i = 0; i < 2; i++) {
      const service = startService({
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'test',
        DATABASE_URL: database.url,
        PORT: '0',
        HOST: '127.0.0.1',
        ADMIN_API_KEY: rootKey,
        LOG_LEVEL: 'warn',
        DATA_DIR: dataDir,
        WEBHOOK_SECRET_KEY: randomBytes(32).toString('base64'),
      });
      services.push(service);
    }
    // Both compile through tsx at once: slow on a busy machine.
    for (const service of services) {
      const url = await listeningUrl(service).catch((error: unknown) => {
        throw new Error(`service did not start: ${service.output.join('')}`, { cause: error });
      });
      await waitFor(
        'the service to answer /healthz',
        async () => (await fetch(`${url}/healthz`).catch(() => null))?.status === 200,
        120_000,
      );
      apis.push(apiClient(url, rootKey));
    }
  });

  after(async () => {
    for (const service of services) {
      if (service.child.exitCode === null && service.child.signalCode === null) {
        service.child.kill('SIGKILL');
        await service.exit;
      }
    }
    await database?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('20 parallel creates of one external id give one member and 19 × 409 naming it', async () => {
    const [a, b] = apis as [Api, Api];
    const programId = (await createProgram(a)).id;
    const externalId = `crm-${randomBytes(6).toString('hex')}`;
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? a : b).post<Created & Conflict>(`/v1/programs/${programId}/members`, {
          email: `sync${i}-${randomBytes(4).toString('hex')}@example.com`,
          name: `CRM sync attempt ${i}`,
          external_id: externalId,
        }),
      ),
    );
    const summary = responses.map((r) => `${r.status} ${r.text}`).join('\n');
    const created = responses.filter((r) => r.status === 201);
    assert.equal(created.length, 1, summary);
    const winner = created[0]!.body;
    const losers = responses.filter((r) => r.status !== 201);
    assert.deepEqual(
      losers.map((r) => [r.status, r.body.error.code, r.body.error.member_id]),
      Array.from({ length: 19 }, () => [409, 'member_exists', winner.id]),
      summary,
    );

    for (const api of apis) {
      const listed = expectStatus(
        await api.get<Page<MemberView>>(
          `/v1/programs/${programId}/members?external_id=${externalId}&after_position=${winner.position}`,
        ),
        200,
      ).body;
      assert.deepEqual(
        listed.data.map((m) => m.id),
        [winner.id],
      );
    }
  });
});
