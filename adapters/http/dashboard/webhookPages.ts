import { catalogue } from '../../../delivery/catalogue.ts';
import type { DashboardQueries } from '../../db/dashboardQueries.ts';
import type {
  WebhookAttempt,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEnvelope,
} from '../../webhooks/webhookStore.ts';
import { html, type SafeHtml } from './html.ts';
import { base, csrfField, number, timeOf } from './layout.ts';
import { statusColours } from './overviewPage.ts';
import { swatch } from './charts.ts';

export const webhooksBase = `${base}/settings/webhooks`;
export const endpointHref = (endpointId: string) =>
  `${webhooksBase}/${encodeURIComponent(endpointId)}`;

type Notification = Awaited<ReturnType<DashboardQueries['failureNotifications']>>[number];
type Health = { finished: number; delivered: number };

/** What kind of receiver a stored endpoint URL names (docs/webhooks.md, "Broker destinations"). */
export const destinationLabel = (url: string): string => {
  if (url.startsWith('amqp://') || url.startsWith('amqps://')) return 'RabbitMQ (AMQP 0-9-1)';
  if (url.startsWith('nats://')) return 'NATS JetStream';
  return 'HTTP POST';
};

const eventsText = (events: string[]): string =>
  events.includes('*') ? 'All events' : events.join(', ');

const enabledBadge = (e: WebhookEndpoint): SafeHtml =>
  e.enabled
    ? html`<span class="badge badge-ok">Enabled</span>`
    : html`<span class="badge badge-off">Disabled</span
        >${e.disabledReason && html` <span class="muted">(${e.disabledReason})</span>`}`;

/** "Health": the share of the last 50 finished deliveries that were delivered. */
export const healthHint = (health: Health | undefined): SafeHtml => {
  if (!health || health.finished === 0)
    return html`<span class="health health-none">No finished deliveries yet</span>`;
  const rate = Math.round((health.delivered / health.finished) * 100);
  const level = rate >= 95 ? 'good' : rate >= 80 ? 'warn' : 'bad';
  const word = { good: 'Healthy', warn: 'Degraded', bad: 'Failing' }[level];
  return html`<span class="health health-${level}" data-health="${rate}"
    >${word}: ${rate}% delivered
    <span class="muted">(${health.delivered} of ${health.finished} recent)</span></span
  >`;
};

/** Where a developer learns to receive the program's webhooks locally, with no public URL. */
const listenPanel = (listen: { serviceUrl: string; programId: string }): SafeHtml =>
  html`<section class="panel" aria-labelledby="listen-heading">
    <h2 id="listen-heading">Develop a receiver locally</h2>
    <p class="muted">
      Forward this program's webhooks, as they happen, to a URL on your machine: no public URL, no
      tunnel. Each carries the event's exact bytes, signed with a secret the command prints.
    </p>
    <pre
      class="mono"
      data-listen-command
    ><code>npx incentable listen --url ${listen.serviceUrl} --key "$INCENTABLE_KEY" --program ${listen.programId} --forward-to http://localhost:4000/webhooks</code></pre>
  </section>`;

export const webhooksPage = (view: {
  endpoints: WebhookEndpoint[];
  health: Map<string, Health>;
  notifications: Notification[];
  /** For the `incentable listen` command shown at the end. */
  listen: { serviceUrl: string; programId: string };
}): SafeHtml =>
  html`<p class="lead">
      Endpoints receive a signed POST for each event they subscribe to.
      <a class="button button-primary" href="${webhooksBase}/new">Add Endpoint</a>
    </p>
    <section aria-labelledby="endpoints-heading">
      <h2 id="endpoints-heading">Endpoints</h2>
      <p class="hint">
        Health is the share of each endpoint's last 50 finished deliveries that were delivered.
      </p>
      ${
        view.endpoints.length === 0
          ? html`<p class="empty">No endpoints yet. Add one to start receiving events.</p>`
          : html`<ul class="cards endpoints">
              ${view.endpoints.map(
                (e) =>
                  html`<li class="card" data-endpoint="${e.endpointId}">
                    <h3 class="card-title">
                      <a href="${endpointHref(e.endpointId)}" class="url">${e.url}</a>
                    </h3>
                    ${e.description && html`<p class="description">${e.description}</p>`}
                    <dl class="facts facts-compact">
                      <div>
                        <dt>Events</dt>
                        <dd>${eventsText(e.events)}</dd>
                      </div>
                      <div>
                        <dt>State</dt>
                        <dd>${enabledBadge(e)}</dd>
                      </div>
                      <div>
                        <dt>Health</dt>
                        <dd>${healthHint(view.health.get(e.endpointId))}</dd>
                      </div>
                    </dl>
                  </li>`,
              )}
            </ul>`
      }
    </section>
    <section class="panel" aria-labelledby="notifications-heading">
      <h2 id="notifications-heading">Failed-delivery notifications</h2>
      <p class="muted">
        After the last retry fails, the program's notification address gets an e-mail; so it does
        when an endpoint has failed for half the disable time, and when it is disabled for it. The
        latest are listed here.
      </p>
      ${
        view.notifications.length === 0
          ? html`<p class="empty">No failed deliveries.</p>`
          : html`<div
              class="table-wrap"
              role="region"
              aria-label="Failed-delivery notifications"
              tabindex="0"
            >
              <table class="stack">
                <thead>
                  <tr>
                    <th scope="col">When</th>
                    <th scope="col">Subject</th>
                    <th scope="col">Delivery</th>
                    <th scope="col">To</th>
                    <th scope="col">E-mail</th>
                  </tr>
                </thead>
                <tbody>
                  ${view.notifications.map(
                    (n) =>
                      html`<tr>
                        <td data-label="When">${timeOf(n.createdAt)}</td>
                        <td data-label="Subject">${n.subject}</td>
                        <td data-label="Delivery">
                          <a class="mono" href="${endpointHref(n.endpointId)}">${n.endpointId}</a>
                        </td>
                        <td data-label="To">
                          ${n.toAddress ?? html`<span class="muted">no address</span>`}
                        </td>
                        <td data-label="E-mail">
                          ${n.sentAt ? html`sent ${timeOf(n.sentAt)}` : n.error ? html`<span class="text-bad">not sent: ${n.error}</span>` : html`<span class="muted">queued</span>`}
                        </td>
                      </tr>`,
                  )}
                </tbody>
              </table>
            </div>`
      }
    </section>
    ${listenPanel(view.listen)}`;

/** The secret in a read-only field (selectable without script) with a Copy button (script). */
export const secretBox = (options: { secret: string; label: string; hint: string }): SafeHtml =>
  html`<div class="secret">
    <label for="secret-value">${options.label}</label>
    <div class="inline">
      <input
        id="secret-value"
        class="mono"
        type="text"
        readonly
        value="${options.secret}"
        spellcheck="false"
        autocomplete="off"
        aria-describedby="secret-hint"
      />
      <button type="button" class="button" data-copy="secret-value" hidden>Copy</button>
    </div>
    <p class="hint" id="secret-hint">${options.hint}</p>
    <p class="copy-status" data-copy-status="secret-value" role="status" aria-live="polite"></p>
  </div>`;

export type DeliveryEntry = {
  delivery: WebhookDelivery;
  envelope: WebhookEnvelope;
  attempts: WebhookAttempt[];
};

const statusText = (d: WebhookDelivery): string => {
  switch (d.status) {
    case 'delivered':
      return 'Delivered';
    case 'pending':
      return d.attempts > 0 ? 'Retry scheduled' : 'Queued';
    case 'delivering':
      return 'Sending';
    case 'failed':
      return 'Failed';
    case 'gone':
      return 'Gone (410): endpoint disabled';
  }
};

const prettyJson = (body: string): string => {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
};

const excerpt = (text: string | null, max = 300): string | null =>
  text === null ? null : text.length > max ? `${text.slice(0, max)}…` : text;

const attemptsTable = (attempts: WebhookAttempt[]): SafeHtml =>
  attempts.length === 0
    ? html`<p class="muted">No attempt yet.</p>`
    : html`<div class="table-wrap" role="region" aria-label="Attempts" tabindex="0">
        <table class="attempts stack">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Sent</th>
              <th scope="col">HTTP</th>
              <th scope="col" class="num">Duration</th>
              <th scope="col">Response</th>
            </tr>
          </thead>
          <tbody>
            ${attempts.map(
              (a) =>
                html`<tr data-attempt="${a.attemptNumber}">
                  <td data-label="Attempt">${a.attemptNumber}</td>
                  <td data-label="Sent">${timeOf(a.startedAt)}</td>
                  <td data-label="HTTP">
                    ${attemptStatus(a)}
                    ${a.retryAfterS !== null && html`<span class="muted" data-retry-after="${a.retryAfterS}">Retry-After ${number(a.retryAfterS)} s</span>`}
                  </td>
                  <td class="num" data-label="Duration">${number(a.durationMs)} ms</td>
                  <td data-label="Response">
                    <code class="excerpt"
                      >${excerpt(a.responseBody) ?? excerpt(a.errorMessage) ?? ''}</code
                    >
                  </td>
                </tr>`,
            )}
          </tbody>
        </table>
      </div>`;

/** An attempt's outcome in the HTTP column: the status, a broker's confirm, or the error kind. */
const attemptStatus = (a: WebhookAttempt): SafeHtml => {
  if (a.httpStatus !== null)
    return html`<span
      class="${a.httpStatus >= 200 && a.httpStatus < 300 ? 'text-ok' : 'text-bad'}"
      data-http-status="${a.httpStatus}"
      >${a.httpStatus}</span
    >`;
  if (a.errorKind === null) return html`<span class="text-ok" data-published>published</span>`;
  return html`<span class="text-bad">${a.errorKind}</span>`;
};

export const deliveryHref = (endpointId: string, deliveryId: string) =>
  `${endpointHref(endpointId)}/deliveries/${encodeURIComponent(deliveryId)}`;

const deliveryCard = (entry: DeliveryEntry, endpointId: string, csrfToken: string): SafeHtml => {
  const d = entry.delivery;
  return html`<li
    class="card delivery"
    data-delivery="${d.deliveryId}"
    data-status="${d.status}"
    data-attempts="${d.attempts}"
  >
    <div class="delivery-head">
      <h3 class="card-title">
        <code>${d.type}</code>${d.isTest && html` <span class="badge">test</span>`}
      </h3>
      <span class="status">${swatch(statusColours[d.status])} ${statusText(d)}</span>
    </div>
    <dl class="facts facts-compact">
      <div>
        <dt>Event id</dt>
        <dd class="mono">${d.envelopeId}</dd>
      </div>
      <div>
        <dt>Delivery</dt>
        <dd class="mono">
          <a href="${deliveryHref(endpointId, d.deliveryId)}">${d.deliveryId}</a
          >${d.series > 0 && html` <span class="muted">(resend ${d.series})</span>`}
        </dd>
      </div>
      <div>
        <dt>Queued</dt>
        <dd>${timeOf(d.createdAt)}</dd>
      </div>
      <div>
        <dt>Attempts</dt>
        <dd>${d.attempts}</dd>
      </div>
      <div>
        <dt>Next retry</dt>
        <dd data-next-retry>
          ${d.status === 'pending' && d.attempts > 0 ? timeOf(d.nextAttemptAt) : html`<span class="muted">—</span>`}
        </dd>
      </div>
    </dl>
    ${attemptsTable(entry.attempts)}
    <details class="payload">
      <summary>Payload</summary>
      <pre tabindex="0"><code>${prettyJson(entry.envelope.body)}</code></pre>
    </details>
    <form
      method="post"
      action="${endpointHref(endpointId)}/deliveries/${encodeURIComponent(d.deliveryId)}/resend"
    >
      ${csrfField(csrfToken)}
      <button type="submit" class="button button-small">Resend</button>
    </form>
  </li>`;
};

/** What the endpoint page says of the endpoint, before its delivery log. */
const endpointFacts = (e: WebhookEndpoint, health: Health | undefined, now: Date): SafeHtml =>
  html`<dl class="facts">
    <div>
      <dt>URL</dt>
      <dd class="url" data-field="url">${e.url}</dd>
    </div>
    <div>
      <dt>Destination</dt>
      <dd data-field="destination">${destinationLabel(e.url)}</dd>
    </div>
    <div>
      <dt>Ordering</dt>
      <dd data-field="ordering">
        ${
          e.ordering === 'ordered'
            ? 'Ordered: each member’s, order’s and leaderboard’s events in the order they happened'
            : 'Unordered: each event as soon as it is due'
        }
      </dd>
    </div>
    <div>
      <dt>Rate limit</dt>
      <dd data-field="rate-limit">
        ${
          e.rateLimitPerSecond === null
            ? html`<span class="muted">none</span>`
            : `${number(e.rateLimitPerSecond)} deliveries per second`
        }
      </dd>
    </div>
    ${
      e.enabled &&
      e.failingSince &&
      html`<div>
        <dt>Failing since</dt>
        <dd data-field="failing-since" class="text-bad">
          ${timeOf(e.failingSince)}: every attempt since has failed. It is disabled once that has
          lasted the disable time (WEBHOOK_DISABLE_AFTER, 5 days by default).
        </dd>
      </div>`
    }
    <div>
      <dt>Description</dt>
      <dd data-field="description">${e.description || html`<span class="muted">none</span>`}</dd>
    </div>
    <div>
      <dt>Events</dt>
      <dd data-field="events">${eventsText(e.events)}</dd>
    </div>
    <div>
      <dt>State</dt>
      <dd data-field="state">${enabledBadge(e)}</dd>
    </div>
    <div>
      <dt>Health</dt>
      <dd>${healthHint(health)}</dd>
    </div>
    <div>
      <dt>Endpoint id</dt>
      <dd class="mono">${e.endpointId}</dd>
    </div>
    <div>
      <dt>Created</dt>
      <dd>${timeOf(e.createdAt)}</dd>
    </div>
    ${
      e.previousSecretExpiresAt &&
      e.previousSecretExpiresAt > now &&
      html`<div>
        <dt>Previous secret</dt>
        <dd>still signs until ${timeOf(e.previousSecretExpiresAt)}</dd>
      </div>`
    }
  </dl>`;

export const endpointPage = (view: {
  endpoint: WebhookEndpoint;
  csrfToken: string;
  health: Health | undefined;
  /** The secret to show: just created, rotated or revealed. */
  secret: { value: string; label: string; hint: string } | null;
  deliveries: DeliveryEntry[];
  nextCursor: string | null;
  testType: string;
  now: Date;
}): SafeHtml => {
  const e = view.endpoint;
  const href = endpointHref(e.endpointId);
  return html`${view.secret && secretBox({ secret: view.secret.value, label: view.secret.label, hint: view.secret.hint })}
    ${endpointFacts(e, view.health, view.now)}
    <section class="panel" aria-labelledby="manage-heading">
      <h2 id="manage-heading">Manage</h2>
      <div class="button-row">
        ${!view.secret && html`<form method="post" action="${href}/reveal">${csrfField(view.csrfToken)}<button type="submit" class="button">Reveal secret</button></form>`}
        <form method="post" action="${href}/rotate">
          ${csrfField(view.csrfToken)}<button
            type="submit"
            class="button"
            aria-describedby="rotate-hint"
          >
            Rotate secret
          </button>
        </form>
        <form method="post" action="${href}/enabled">
          ${csrfField(view.csrfToken)}<input
            type="hidden"
            name="enabled"
            value="${e.enabled ? 'false' : 'true'}"
          /><button type="submit" class="button">${e.enabled ? 'Disable' : 'Enable'}</button>
        </form>
        <a class="button" href="${href}/edit">Edit</a>
        <a class="button button-danger" href="${href}/delete">Delete</a>
      </div>
      <p class="hint" id="rotate-hint">
        After rotating, the old secret keeps signing beside the new one for 24 hours, so receivers
        can switch without missing an event.
      </p>
    </section>
    <section class="panel" aria-labelledby="test-heading">
      <h2 id="test-heading">Send Test Event</h2>
      <form class="inline-form" method="post" action="${href}/test">
        ${csrfField(view.csrfToken)}
        <label for="test-type">Event type</label>
        <div class="inline">
          <select id="test-type" name="type">
            ${catalogue.map(
              (group) =>
                html`<optgroup label="${group.name}">
                  ${group.entries.map(
                    (entry) =>
                      html`<option
                        value="${entry.type}"
                        ${entry.type === view.testType && html`selected`}
                      >
                        ${entry.type}
                      </option>`,
                  )}
                </optgroup>`,
            )}
          </select>
          <button type="submit" class="button button-primary">Send Test Event</button>
        </div>
        <p class="hint">
          Sends the catalogue's sample payload for the type, signed with this endpoint's secret and
          marked
          <code>X-Incentable-Test: true</code
          >.${!e.enabled && ' The endpoint is disabled: the test waits until it is enabled.'}
        </p>
      </form>
    </section>
    <section class="panel" aria-labelledby="log-heading">
      <div class="section-head">
        <h2 id="log-heading">Delivery log</h2>
        <a class="button button-small" href="${href}">Refresh</a>
      </div>
      ${
        view.deliveries.length === 0
          ? html`<p class="empty">No deliveries yet. Send a test event to try the endpoint.</p>`
          : html`<ol class="cards deliveries">
              ${view.deliveries.map((d) => deliveryCard(d, e.endpointId, view.csrfToken))}
            </ol>`
      }
      ${view.nextCursor && html`<p class="pager"><a class="button" href="${href}?cursor=${encodeURIComponent(view.nextCursor)}">Older deliveries</a></p>`}
    </section>`;
};

export const deleteConfirmPage = (view: {
  endpoint: WebhookEndpoint;
  csrfToken: string;
}): SafeHtml => {
  const href = endpointHref(view.endpoint.endpointId);
  return html`<div class="panel panel-danger">
    <p>
      Delete the endpoint
      <strong class="url">${view.endpoint.url}</strong
      >${view.endpoint.description && html` (${view.endpoint.description})`}?
    </p>
    <p>
      It stops receiving events at once, and its delivery log is deleted with it. This cannot be
      undone.
    </p>
    <form method="post" action="${href}/delete" class="actions">
      ${csrfField(view.csrfToken)}
      <button type="submit" class="button button-danger">Delete endpoint</button>
      <a class="button button-quiet" href="${href}">Cancel</a>
    </form>
  </div>`;
};

/** One delivery on its own page: where the failure e-mail's link lands. */
export const deliveryPage = (view: { entry: DeliveryEntry; csrfToken: string }): SafeHtml =>
  html`<ol class="cards deliveries">
    ${deliveryCard(view.entry, view.entry.delivery.endpointId, view.csrfToken)}
  </ol>`;
