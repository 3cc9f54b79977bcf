import { Router, type Response } from 'express';
import { z } from 'zod';
import { isId } from '../../../domain/ids.ts';
import { parsePosition } from '../../../domain/recordedEvent.ts';
import { exportedEvent } from '../../audit/export.ts';
import type { AuditQueries } from '../../db/auditQueries.ts';
import type { AuditProofs } from '../../audit/proofService.ts';
import { parse } from './request.ts';
import { canAccessProgram, principalOf } from './auth.ts';
import { sendError } from './errors.ts';
import { wireString } from './schemas.ts';
import type * as r from './responses.ts';
import type { Body } from './responses.ts';

export type AuditRouteDeps = { audit: AuditQueries; proofs: AuditProofs };

/** A tree size: a whole number from 0, no sign, no leading zeros. */
const treeSizeParam = wireString()
  .regex(/^(0|[1-9]\d{0,14})$/, 'must be a tree size (a whole number from 0)')
  .transform(Number);

export const consistencyQuerySchema = z.strictObject({ from: treeSizeParam, to: treeSizeParam });

export const checkpointsQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  before_size: treeSizeParam.optional(),
});

export const eventsQuerySchema = z
  .object({
    after_position: wireString()
      .refine((value) => parsePosition(value) !== null, 'must be a position (<commit>.<prepare>)')
      .optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    type: wireString()
      .regex(/^[A-Za-z]{1,100}(,[A-Za-z]{1,100})*$/, 'a domain event type, or a comma list')
      .optional(),
    stream: wireString().min(1).max(300).optional(),
  })
  .strict();

/**
 * The auditors' endpoints under /v1. They expect the API's authentication to have run (mount
 * after `authenticate`); the program check is repeated here so the router is safe on its own.
 */
export const auditRoutes = (deps: AuditRouteDeps): Router => {
  const router = Router();

  const programOf = (programId: string | undefined, res: Response): string | undefined => {
    if (typeof programId !== 'string' || !isId('program', programId)) {
      sendError(res, 400, {
        code: 'validation_error',
        message: 'program_id is not a valid program id',
        field: 'program_id',
      });
      return undefined;
    }
    if (!canAccessProgram(principalOf(res), programId)) {
      sendError(res, 403, { code: 'forbidden', message: 'this key belongs to another program' });
      return undefined;
    }
    return programId;
  };

  /** Domain events of the program in the global order, with metadata and hashes; keyset paged. */
  router.get('/programs/:programId/audit/events', async (req, res) => {
    const programId = programOf(req.params.programId, res);
    if (!programId) return;
    const parsed = eventsQuerySchema.safeParse(req.query);
    if (!parsed.success) {
      // A failed parse carries at least one issue; the fallback only satisfies the type.
      const issue = parsed.error.issues[0] ?? { code: 'custom', path: [], message: 'is not valid' };
      // An unknown parameter's issue has an empty path; the parameter is in `keys`.
      const field =
        issue.path.map(String).join('.') ||
        (issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined);
      return sendError(res, 400, {
        code: 'validation_error',
        message: `${field ?? 'query'}: ${issue.message}`,
        field,
      });
    }
    const q = parsed.data;
    const rows = await deps.audit.eventsPage({
      after: q.after_position === undefined ? null : parsePosition(q.after_position),
      limit: q.limit,
      programId,
      ...(q.type !== undefined && { types: q.type.split(',') }),
      ...(q.stream !== undefined && { stream: q.stream }),
    });
    const data = rows.map(exportedEvent);
    res.json({
      data,
      next_position: data.length === q.limit ? (data.at(-1)?.position ?? null) : null,
    } satisfies Body<typeof r.auditEventListSchema>);
  });

  /**
   * The CLI's `audit verify` for one program, streamed as NDJSON: one `{"break":…}` line per broken
   * place as it is found, then `{"summary":…}`. The status is 200 once streaming has begun: read
   * `summary.ok`.
   */
  router.get('/programs/:programId/audit/verify', async (req, res) => {
    const programId = programOf(req.params.programId, res);
    if (!programId) return;
    res.status(200).type('application/x-ndjson');
    res.flushHeaders();
    const write = async (line: Body<typeof r.auditVerifyLineSchema>) => {
      if (!res.write(`${JSON.stringify(line)}\n`))
        await new Promise((resolve) => res.once('drain', resolve));
    };
    try {
      const report = await deps.audit.verifyChains({
        programId,
        onBreak: (chainBreak) => write({ break: chainBreak }),
      });
      await write({ summary: report });
    } catch {
      await write({ error: { code: 'internal_error', message: 'verification failed' } });
    }
    res.end();
  });

  /** The key that signs checkpoints: a signed-note verifier key and a PEM. */
  router.get('/audit/public-key', (_req, res) => {
    res.json(deps.proofs.publicKey() satisfies Body<typeof r.auditPublicKeySchema>);
  });

  /** Signed checkpoints, newest first; keyset paged on size. */
  router.get('/audit/checkpoints', async (req, res) => {
    const query = parse(checkpointsQuerySchema, req.query, res);
    if (!query) return;
    const data = await deps.proofs.checkpoints({
      limit: query.limit,
      ...(query.before_size !== undefined && { beforeSize: query.before_size }),
    });
    const last = data.at(-1);
    res.json({
      data,
      next_before_size: data.length === query.limit && last ? last.size : null,
    } satisfies Body<typeof r.checkpointListSchema>);
  });

  /** RFC 9162 consistency proof between two tree sizes. */
  router.get('/audit/proofs/consistency', async (req, res) => {
    const query = parse(consistencyQuerySchema, req.query, res);
    if (!query) return;
    const outcome = await deps.proofs.consistency(query.from, query.to);
    if (!outcome.ok)
      return sendError(res, 400, {
        code: 'invalid_tree_size',
        message: outcome.message,
        field: outcome.field,
      });
    res.json(outcome.proof satisfies Body<typeof r.consistencyProofSchema>);
  });

  return router;
};
