import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiClient, createMember, createProgram, expectStatus } from '../../support/api.ts';
import { CarefulClient } from './client.ts';
import { createCluster, type Cluster } from './cluster.ts';
import { reconcile, type Reconciliation } from './reconcile.ts';
import {
  newInstallation,
  ServiceProcess,
  type Installation,
  type ServiceOptions,
} from './service.ts';
import { startWebhookRecorder, type WebhookRecorder } from './webhooks.ts';

/** Everything one reliability scenario owns; `close` removes all of it. */
export type Scenario = {
  cluster: Cluster;
  /** The service's database in the cluster. */
  database: string;
  installation: Installation;
  recorder: WebhookRecorder;
  services: ServiceProcess[];
  programId: string;
  memberIds: string[];
  /** A careful client aimed at every api process started by `setUpScenario`. */
  client: CarefulClient;
  /** Starts one more process of this installation (kept in `services`, closed by `close`). */
  startService: (options: Omit<ServiceOptions, 'installation'>) => Promise<ServiceProcess>;
  /**
   * After the load stopped: waits until every process the test did not close is up again (a
   * crash being restarted), then gives the client `timeoutMs` to get its definite answers;
   * returns how many keys stayed unresolved.
   */
  drain: (timeoutMs: number) => Promise<number>;
  reconcile: (settleTimeoutMs?: number) => Promise<Reconciliation>;
  close: () => Promise<void>;
};

/**
 * A fresh cluster and database, the service processes asked for (started in order, each ready
 * before the next), a program with `members` members and one webhook endpoint for points.awarded
 * on a recording receiver, and a careful client aimed at the api processes.
 */
export const setUpScenario = async (options: {
  members: number;
  services: Omit<ServiceOptions, 'installation'>[];
}): Promise<Scenario> => {
  const cluster = await createCluster();
  const services: ServiceProcess[] = [];
  let recorder: WebhookRecorder | null = null;
  let client: CarefulClient | null = null;
  const dataDir = mkdtempSync(join(tmpdir(), 'incentable-rel-'));
  const close = async () => {
    // A scenario that failed midway leaves awards retrying: they must not outlive it.
    await client?.close();
    for (const s of services) await s.close();
    await recorder?.close();
    await cluster.remove();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const database = `incentable_rel_${randomBytes(4).toString('hex')}`;
    const installation = newInstallation(await cluster.createDatabase(database), dataDir);
    recorder = await startWebhookRecorder();
    const startService = async (o: Omit<ServiceOptions, 'installation'>) => {
      const service = await ServiceProcess.start({ installation, ...o });
      services.push(service);
      return service;
    };
    for (const o of options.services) await startService(o);
    const apis = services.filter((s) => s.hasApi);
    if (apis.length === 0) throw new Error('a scenario needs at least one api process');
    const api = apiClient(apis[0]!.baseUrl, installation.rootKey);
    const program = await createProgram(api);
    const endpoint = expectStatus(
      await api.post<{ secret: string }>(`/v1/programs/${program.id}/webhook-endpoints`, {
        url: recorder.url,
        events: ['points.awarded'],
      }),
      201,
    ).body;
    recorder.trust(endpoint.secret);
    const memberIds = await Promise.all(
      Array.from({ length: options.members }, async () => (await createMember(api, program.id)).id),
    );
    client = new CarefulClient({
      targets: apis.map((s) => s.baseUrl),
      rootKey: installation.rootKey,
    });
    const theRecorder = recorder;
    const theClient = client;
    return {
      cluster,
      database,
      installation,
      recorder: theRecorder,
      services,
      programId: program.id,
      memberIds,
      client: theClient,
      startService,
      drain: async (timeoutMs) => {
        for (const s of services) await s.up();
        return theClient.drain(timeoutMs);
      },
      reconcile: (settleTimeoutMs) =>
        reconcile({
          cluster,
          database,
          programId: program.id,
          client: theClient,
          recorder: theRecorder,
          services,
          ...(settleTimeoutMs !== undefined && { settleTimeoutMs }),
        }),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
};
