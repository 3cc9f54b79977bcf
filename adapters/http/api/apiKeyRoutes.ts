import { Router } from 'express';
import type { ApiKeyStore } from '../../db/apiKeyStore.ts';
import type { IdempotencyStore } from '../../db/idempotencyStore.ts';
import type { ApiKeyVerifier } from '../../db/apiKeyVerifier.ts';
import { principalOf } from './auth.ts';
import { sendError } from './errors.ts';
import { answerAtomically } from './idempotency.ts';
import { idParam, parse, programOf } from './request.ts';
import * as s from './schemas.ts';
import type * as r from './responses.ts';
import type { Body } from './responses.ts';

export type ApiKeyRouteDeps = {
  /** For the transaction that settles an Idempotency-Key with the key it creates. */
  idempotencyKeys: Pick<IdempotencyStore, 'withinTransaction'>;
  apiKeys: ApiKeyStore;
  /** This process's key check: a revoked key is forgotten here at once. */
  keys: ApiKeyVerifier;
};

/** A program's API keys. */
export const apiKeyRoutes = (deps: ApiKeyRouteDeps): Router => {
  const { idempotencyKeys, apiKeys } = deps;
  const router = Router();

  router.post('/programs/:programId/api-keys', async (req, res) => {
    if (principalOf(res).kind !== 'root')
      return sendError(res, 403, {
        code: 'forbidden',
        message: 'only the root key creates program keys',
      });
    const body = parse(s.createApiKeyBody, req.body, res);
    if (!body) return;
    await answerAtomically(idempotencyKeys, res, async (tx) => {
      const key = await apiKeys.create({ programId: programOf(res), label: body.label }, tx);
      return {
        status: 201,
        body: { id: key.id, key: key.key, program_id: programOf(res) } satisfies Body<
          typeof r.apiKeyCreatedSchema
        >,
        sensitive: true,
      };
    });
  });

  // A program key may list and revoke its own program's keys (itself included), as the root key
  // may any program's: revoking only takes access away. Creating one stays with the root key.
  router.get('/programs/:programId/api-keys', async (_req, res) => {
    const keys = await apiKeys.list(programOf(res));
    res.json({
      data: keys.map((k) => ({
        id: k.id,
        label: k.label,
        created_at: k.createdAt.toISOString(),
        last_used_at: k.lastUsedAt?.toISOString() ?? null,
        revoked_at: k.revokedAt?.toISOString() ?? null,
      })),
    } satisfies Body<typeof r.apiKeyListSchema>);
  });

  router.delete('/programs/:programId/api-keys/:keyId', async (req, res) => {
    const keyId = idParam(req, res, 'keyId', 'apiKey');
    if (!keyId) return;
    if ((await apiKeys.revokeProgramKey(programOf(res), keyId)) === 'not_found')
      return sendError(res, 404, {
        code: 'api_key_not_found',
        message: `no key ${keyId} in this program`,
        field: 'key_id',
      });
    deps.keys.forget(keyId);
    res.status(204).end();
  });

  return router;
};
