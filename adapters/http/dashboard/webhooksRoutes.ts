import type { EndpointOrdering } from '../../../delivery/ordering.ts';
import { Router, type Request, type Response } from 'express';
import {
  isSubscribableEventType,
  isWebhookEventType,
  webhookEventTypes,
} from '../../../delivery/catalogue.ts';
import { validateEndpointUrl } from '../../../delivery/ssrf.ts';
import { isId } from '../../../domain/ids.ts';
import { createEndpointSchema, updateEndpointSchema } from '../api/webhookRoutes.ts';
import {
  formList,
  formText,
  programIdOf,
  redirect,
  sessionOf,
  type DashboardContext,
} from './context.ts';
import { endpointForm, type EndpointFormValues, type FormError } from './endpointForm.ts';
import {
  deleteConfirmPage,
  deliveryHref,
  deliveryPage,
  endpointHref,
  endpointPage,
  webhooksBase,
  webhooksPage,
} from './webhookPages.ts';

/**
 * "Select all" stands for every type in the catalogue, so the form works without script; the
 * opt-in types (audit.checkpoint) are never in it and come only from their own boxes.
 */
const endpointValues = (body: unknown): EndpointFormValues => ({
  url: formText(body, 'url').trim(),
  description: formText(body, 'description').replace(/\r\n/g, '\n').trim(),
  events: [
    ...(formText(body, 'all_events') === 'on'
      ? [...webhookEventTypes]
      : formList(body, 'events').filter(isWebhookEventType)),
    ...formList(body, 'opt_in_events').filter(
      (type) => isSubscribableEventType(type) && !isWebhookEventType(type),
    ),
  ],
  rate_limit_per_second: rateLimitValue(formText(body, 'rate_limit_per_second').trim()),
  ordering: formText(body, 'ordering') || 'unordered',
});

/** The form's ordering, once checkEndpoint has let it through the API's schema. */
const orderingOf = (values: EndpointFormValues): EndpointOrdering =>
  values.ordering === 'ordered' ? 'ordered' : 'unordered';

/** Empty: no limit; digits: that number; anything else NaN, which the API's schema refuses. */
const rateLimitValue = (text: string): number | null =>
  text === '' ? null : /^\d{1,6}$/.test(text) ? Number(text) : Number.NaN;

const firstIssue = (issues: { path: PropertyKey[]; message: string }[]): FormError => {
  const issue = issues[0];
  const field = issue?.path[0];
  if (field === 'events') return { field, message: 'Select at least one event.' };
  if (field === 'url') return { field, message: 'Enter the endpoint URL.' };
  if (field === 'ordering') return { field, message: 'Choose ordered or unordered.' };
  if (field === 'rate_limit_per_second')
    return {
      field,
      message: 'Enter a whole number of deliveries per second, 1 to 10,000, or leave it empty.',
    };
  if (field === 'description')
    return { field, message: `Description ${issue?.message ?? 'is not valid'}.` };
  return { field: null, message: issue?.message ?? 'The form is not valid.' };
};

const webhookCrumbs = [{ href: webhooksBase, label: 'Webhooks' }];

type FormOptions = {
  title: string;
  action: string;
  submitLabel: string;
  cancelHref: string;
  values: EndpointFormValues;
  error: FormError | null;
};

const showForm = (ctx: DashboardContext, res: Response, options: FormOptions) =>
  ctx.render(
    res,
    { title: options.title, section: 'webhooks', crumbs: webhookCrumbs },
    endpointForm({ ...options, csrfToken: sessionOf(res).csrfToken }),
    options.error ? 400 : 200,
  );

/** The API's own rules (schema and URL policy), as a form error instead of a JSON 400. */
const checkEndpoint = (
  ctx: DashboardContext,
  values: EndpointFormValues,
  partial: boolean,
): FormError | null => {
  const schema = partial ? updateEndpointSchema : createEndpointSchema;
  const parsed = schema.safeParse(values);
  if (!parsed.success) return firstIssue(parsed.error.issues);
  const url = validateEndpointUrl(values.url, ctx.network);
  return url.ok ? null : { field: 'url', message: url.message };
};

/** Loads the endpoint named in the path, in the session's program, or null (the caller 404s). */
const endpointParam = async (ctx: DashboardContext, req: Request, res: Response) => {
  const endpointId = req.params.endpointId;
  if (typeof endpointId !== 'string' || !isId('webhookEndpoint', endpointId)) return null;
  return ctx.webhooks.getEndpoint(programIdOf(res), endpointId);
};

/** An endpoint's page with its delivery log; false when there is no such endpoint. */
const showEndpoint = async (
  ctx: DashboardContext,
  req: Request,
  res: Response,
  secret: { value: string; label: string; hint: string } | null,
): Promise<boolean> => {
  const programId = programIdOf(res);
  const endpoint = await endpointParam(ctx, req, res);
  if (!endpoint) return false;
  const session = sessionOf(res);
  const flash = session.flash;
  let shown = secret;
  if (flash?.kind === 'secret' && flash.endpointId === endpoint.endpointId) {
    shown = {
      value: flash.secret,
      label: flash.label,
      hint: 'Copy it into your receiver now. You can reveal it again here later.',
    };
    session.flash = { kind: 'notice', message: flash.message };
  }
  const cursor = typeof req.query.cursor === 'string' ? req.query.cursor.slice(0, 200) : null;
  const [page, health] = await Promise.all([
    ctx.webhooks.listDeliveries({ programId, endpointId: endpoint.endpointId, cursor, limit: 20 }),
    ctx.dashboardQueries.endpointHealth(programId),
  ]);
  const deliveries = (
    await Promise.all(page.items.map((d) => ctx.webhooks.getDelivery(programId, d.deliveryId)))
  ).filter((d) => d !== null);
  const testType =
    typeof req.query.type === 'string' && isWebhookEventType(req.query.type)
      ? req.query.type
      : (endpoint.events.find(isWebhookEventType) ?? 'points.awarded');
  await ctx.render(
    res,
    { title: endpoint.description || endpoint.url, section: 'webhooks', crumbs: webhookCrumbs },
    endpointPage({
      endpoint,
      csrfToken: session.csrfToken,
      health: health.get(endpoint.endpointId),
      secret: shown,
      deliveries,
      nextCursor: page.nextCursor,
      testType,
      now: ctx.clock.now(),
    }),
  );
  return true;
};

/** The endpoint list, adding one, editing and deleting one. */
const endpointRoutes = (ctx: DashboardContext, router: Router): void => {
  router.get('/settings/webhooks', async (req, res) => {
    const programId = programIdOf(res);
    const [endpoints, health, notifications] = await Promise.all([
      ctx.webhooks.listEndpoints(programId),
      ctx.dashboardQueries.endpointHealth(programId),
      ctx.dashboardQueries.failureNotifications(programId),
    ]);
    await ctx.render(
      res,
      {
        title: 'Webhooks',
        section: 'webhooks',
        crumbs: [{ href: webhooksBase, label: 'Settings' }],
      },
      webhooksPage({
        endpoints,
        health,
        notifications,
        listen: { serviceUrl: `${req.protocol}://${req.get('host') ?? 'localhost'}`, programId },
      }),
    );
  });

  const addForm = { title: 'Add Endpoint', action: webhooksBase, submitLabel: 'Save endpoint' };
  router.get('/settings/webhooks/new', async (_req, res) => {
    await showForm(ctx, res, {
      ...addForm,
      cancelHref: webhooksBase,
      values: {
        url: '',
        description: '',
        events: [],
        rate_limit_per_second: null,
        ordering: 'unordered',
      },
      error: null,
    });
  });

  router.post('/settings/webhooks', async (req, res) => {
    const values = endpointValues(req.body);
    const error = checkEndpoint(ctx, values, false);
    if (error) return showForm(ctx, res, { ...addForm, cancelHref: webhooksBase, values, error });
    const { endpoint, secret } = await ctx.webhooks.createEndpoint({
      programId: programIdOf(res),
      url: values.url,
      events: values.events,
      description: values.description,
      rateLimitPerSecond: values.rate_limit_per_second,
      ordering: orderingOf(values),
    });
    sessionOf(res).flash = {
      kind: 'secret',
      message: 'Endpoint saved.',
      endpointId: endpoint.endpointId,
      secret,
      label: 'Your webhook secret',
    };
    redirect(res, endpointHref(endpoint.endpointId));
  });

  router.get('/settings/webhooks/:endpointId', async (req, res, next) => {
    if (!(await showEndpoint(ctx, req, res, null))) next();
  });

  const editForm = (href: string) => ({
    title: 'Edit endpoint',
    action: `${href}/edit`,
    submitLabel: 'Save changes',
    cancelHref: href,
  });
  router.get('/settings/webhooks/:endpointId/edit', async (req, res, next) => {
    const endpoint = await endpointParam(ctx, req, res);
    if (!endpoint) return next();
    await showForm(ctx, res, {
      ...editForm(endpointHref(endpoint.endpointId)),
      values: {
        url: endpoint.url,
        description: endpoint.description,
        events: endpoint.events,
        rate_limit_per_second: endpoint.rateLimitPerSecond,
        ordering: endpoint.ordering,
      },
      error: null,
    });
  });

  router.post('/settings/webhooks/:endpointId/edit', async (req, res, next) => {
    const endpoint = await endpointParam(ctx, req, res);
    if (!endpoint) return next();
    const href = endpointHref(endpoint.endpointId);
    const values = endpointValues(req.body);
    const error = checkEndpoint(ctx, values, true);
    if (error) return showForm(ctx, res, { ...editForm(href), values, error });
    const { rate_limit_per_second: rateLimitPerSecond, ordering: _ordering, ...changes } = values;
    await ctx.webhooks.updateEndpoint(programIdOf(res), endpoint.endpointId, {
      ...changes,
      rateLimitPerSecond,
      ordering: orderingOf(values),
    });
    sessionOf(res).flash = { kind: 'notice', message: 'Endpoint saved.' };
    redirect(res, href);
  });

  router.get('/settings/webhooks/:endpointId/delete', async (req, res, next) => {
    const endpoint = await endpointParam(ctx, req, res);
    if (!endpoint) return next();
    await ctx.render(
      res,
      { title: 'Delete endpoint', section: 'webhooks', crumbs: webhookCrumbs },
      deleteConfirmPage({ endpoint, csrfToken: sessionOf(res).csrfToken }),
    );
  });

  router.post('/settings/webhooks/:endpointId/delete', async (req, res, next) => {
    const endpoint = await endpointParam(ctx, req, res);
    if (!endpoint) return next();
    await ctx.webhooks.deleteEndpoint(programIdOf(res), endpoint.endpointId);
    sessionOf(res).flash = { kind: 'notice', message: `Endpoint ${endpoint.url} deleted.` };
    redirect(res, webhooksBase);
  });
};

/** An endpoint's secret (reveal, rotate), its on/off switch and its test event. */
const endpointActionRoutes = (ctx: DashboardContext, router: Router): void => {
  router.post('/settings/webhooks/:endpointId/reveal', async (req, res, next) => {
    const endpoint = await endpointParam(ctx, req, res);
    if (!endpoint) return next();
    const secret = await ctx.webhooks.revealSecret(programIdOf(res), endpoint.endpointId);
    if (secret === null) return next();
    await showEndpoint(ctx, req, res, {
      value: secret,
      label: 'Webhook secret',
      hint: 'Anyone with this secret can sign requests as Incentable: keep it out of logs and code.',
    });
  });

  router.post('/settings/webhooks/:endpointId/rotate', async (req, res, next) => {
    const endpoint = await endpointParam(ctx, req, res);
    if (!endpoint) return next();
    const rotated = await ctx.webhooks.rotateSecret(programIdOf(res), endpoint.endpointId);
    if (!rotated) return next();
    sessionOf(res).flash = {
      kind: 'secret',
      message: 'Secret rotated. The previous secret keeps signing for 24 hours.',
      endpointId: endpoint.endpointId,
      secret: rotated.secret,
      label: 'New webhook secret',
    };
    redirect(res, endpointHref(endpoint.endpointId));
  });

  router.post('/settings/webhooks/:endpointId/enabled', async (req, res, next) => {
    const endpoint = await endpointParam(ctx, req, res);
    if (!endpoint) return next();
    const enabled = formText(req.body, 'enabled') === 'true';
    await ctx.webhooks.updateEndpoint(programIdOf(res), endpoint.endpointId, { enabled });
    // Deliveries held back while disabled may go now.
    if (enabled) ctx.wakeDelivery();
    sessionOf(res).flash = {
      kind: 'notice',
      message: enabled ? 'Endpoint enabled.' : 'Endpoint disabled.',
    };
    redirect(res, endpointHref(endpoint.endpointId));
  });

  router.post('/settings/webhooks/:endpointId/test', async (req, res, next) => {
    const endpoint = await endpointParam(ctx, req, res);
    if (!endpoint) return next();
    const type = formText(req.body, 'type');
    const href = endpointHref(endpoint.endpointId);
    if (!isWebhookEventType(type)) {
      sessionOf(res).flash = { kind: 'error', message: 'Choose an event type.' };
      return redirect(res, href);
    }
    const queued = await ctx.webhooks.enqueueTest(programIdOf(res), endpoint.endpointId, type);
    if (!queued) return next();
    ctx.wakeDelivery();
    sessionOf(res).flash = {
      kind: 'notice',
      message: `Test event ${type} queued (${queued.envelopeId}). Refresh the log to see the attempt.`,
    };
    redirect(res, `${href}?type=${encodeURIComponent(type)}`);
  });
};

/** One delivery's page, the failure e-mail's link to it, and resending it. */
const deliveryRoutes = (ctx: DashboardContext, router: Router): void => {
  router.get('/settings/webhooks/:endpointId/deliveries/:deliveryId', async (req, res, next) => {
    const endpoint = await endpointParam(ctx, req, res);
    const deliveryId = req.params.deliveryId;
    if (!endpoint || !isId('webhookDelivery', deliveryId)) return next();
    const entry = await ctx.webhooks.getDelivery(programIdOf(res), deliveryId);
    if (!entry || entry.delivery.endpointId !== endpoint.endpointId) return next();
    await ctx.render(
      res,
      {
        title: `Delivery ${deliveryId}`,
        section: 'webhooks',
        crumbs: [
          ...webhookCrumbs,
          { href: endpointHref(endpoint.endpointId), label: endpoint.description || endpoint.url },
        ],
      },
      deliveryPage({ entry, csrfToken: sessionOf(res).csrfToken }),
    );
  });

  // The failure e-mail (deliveryWorker) links here.
  router.get('/webhooks/:endpointId/deliveries/:deliveryId', (req, res, next) => {
    const { endpointId, deliveryId } = req.params;
    if (!isId('webhookEndpoint', endpointId) || !isId('webhookDelivery', deliveryId)) return next();
    redirect(res, deliveryHref(endpointId, deliveryId));
  });

  router.post(
    '/settings/webhooks/:endpointId/deliveries/:deliveryId/resend',
    async (req, res, next) => {
      const endpoint = await endpointParam(ctx, req, res);
      const deliveryId = req.params.deliveryId;
      if (!endpoint || !isId('webhookDelivery', deliveryId)) return next();
      const programId = programIdOf(res);
      const found = await ctx.webhooks.getDelivery(programId, deliveryId);
      if (!found || found.delivery.endpointId !== endpoint.endpointId) return next();
      const queued = await ctx.webhooks.redeliver(programId, deliveryId);
      if (!queued) return next();
      ctx.wakeDelivery();
      sessionOf(res).flash = {
        kind: 'notice',
        message: `Resend of ${found.envelope.envelopeId} queued as ${queued.deliveryId}.`,
      };
      redirect(res, endpointHref(endpoint.endpointId));
    },
  );
};

/** Settings -> Webhooks: the endpoints, their secrets and their delivery log. */
export const webhooksRoutes = (ctx: DashboardContext): Router => {
  const router = Router();
  endpointRoutes(ctx, router);
  endpointActionRoutes(ctx, router);
  deliveryRoutes(ctx, router);
  return router;
};
