import { propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import type { Request, RequestHandler, Response } from 'express';
import { noTrace, tracer, type TraceContext } from '../../application/tracing.ts';

/** The methods the HTTP semantic conventions name; any other is `_OTHER`. */
const knownMethods = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
]);

/**
 * The matched route's template (`/v1/programs/:programId/members/:memberId/points`), never the
 * path with its ids: span names and routes must stay few. Express gives it only once a route
 * matched, as the mount path plus the route's own path; a request no route took has none.
 */
const routeOf = (req: Request): string | undefined => {
  const route = (req as { route?: { path?: unknown } }).route;
  return typeof route?.path === 'string' ? `${req.baseUrl}${route.path}` : undefined;
};

/** The trace the request runs in, for the commands it issues (CommandContext.trace). */
export const traceOf = (res: Response): TraceContext =>
  (res.locals.trace as TraceContext | undefined) ?? noTrace;

/**
 * A SERVER span per request, the root of the command's trace unless the caller sent a W3C
 * `traceparent` (then its child). Named and described as the HTTP semantic conventions say:
 * `http.request.method`, `http.route`, `http.response.status_code`, `url.path`; a 5xx is an error.
 * Its context is kept in res.locals (`traceOf`) for the commands the route issues. With tracing
 * off the propagator and tracer are the API's no-ops: one no-op span per request.
 */
export const serverSpans = (): RequestHandler => (req, res, next) => {
  const parent = propagation.extract(ROOT_CONTEXT, req.headers);
  const method = knownMethods.has(req.method) ? req.method : '_OTHER';
  const span = tracer().startSpan(
    method,
    {
      kind: SpanKind.SERVER,
      attributes: {
        [ATTR_HTTP_REQUEST_METHOD]: method,
        [ATTR_URL_PATH]: req.path,
        [ATTR_URL_SCHEME]: req.protocol,
      },
    },
    parent,
  );
  // Not sampled (or tracing off): the context still goes down, so children are not sampled anew.
  res.locals.trace = trace.setSpan(parent, span);
  if (!span.isRecording()) {
    next();
    return;
  }
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    const route = routeOf(req);
    if (route !== undefined) {
      span.setAttribute(ATTR_HTTP_ROUTE, route);
      span.updateName(`${method} ${route}`);
    }
    if (res.writableFinished) {
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.statusCode);
      if (res.statusCode >= 500) {
        span.setAttribute(ATTR_ERROR_TYPE, String(res.statusCode));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
    } else {
      // The client went away before the response was written.
      span.setAttribute(ATTR_ERROR_TYPE, 'aborted');
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  };
  res.once('finish', end);
  res.once('close', end);
  next();
};
