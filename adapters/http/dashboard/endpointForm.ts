import { webhookEventTypes, catalogue, optInCatalogue } from '../../../delivery/catalogue.ts';
import { html, type SafeHtml } from './html.ts';
import { csrfField } from './layout.ts';

export type EndpointFormValues = {
  url: string;
  description: string;
  events: string[];
  /** As the API takes it: null for none; NaN for what is not a number (refused by the schema). */
  rate_limit_per_second: number | null;
  /** `unordered` or `ordered` as the API takes it; anything else is refused by its schema. */
  ordering: string;
};

export type FormError = {
  field: 'url' | 'events' | 'description' | 'rate_limit_per_second' | 'ordering' | null;
  message: string;
};

const fieldError = (error: FormError | null, field: FormError['field'], id: string): SafeHtml =>
  error && error.field === field
    ? html`<p class="field-error" id="${id}">${error.message}</p>`
    : html``;

/** Add Endpoint and Edit: URL, description, the events grouped as in the docs, select all. */
export const endpointForm = (view: {
  action: string;
  submitLabel: string;
  csrfToken: string;
  values: EndpointFormValues;
  error: FormError | null;
  cancelHref: string;
}): SafeHtml => {
  const chosen = new Set(view.values.events.includes('*') ? webhookEventTypes : view.values.events);
  const all = webhookEventTypes.every((t) => chosen.has(t));
  const invalid = (field: FormError['field']) =>
    view.error?.field === field && html`aria-invalid="true"`;
  return html`${view.error && html`<div class="flash flash-error" role="alert">${view.error.message}</div>`}
    <form class="form" method="post" action="${view.action}" novalidate>
      ${csrfField(view.csrfToken)}
      <div class="field">
        <label for="url">Endpoint URL</label>
        <input
          id="url"
          name="url"
          type="url"
          inputmode="url"
          required
          maxlength="2048"
          autocomplete="off"
          spellcheck="false"
          placeholder="https://example.com/webhooks/incentable"
          value="${view.values.url}"
          aria-describedby="url-hint${view.error?.field === 'url' ? ' url-error' : ''}"
          ${invalid('url')}
        />
        <p class="hint" id="url-hint">
          We send a POST with a JSON body to this URL (https in production), or publish to a broker:
          <code>amqp://user:pass@host/vhost?exchange=NAME</code> (RabbitMQ) or
          <code>nats://host:4222?subject=PREFIX</code> (NATS JetStream). Broker credentials are
          stored encrypted and never shown again.
        </p>
        ${fieldError(view.error, 'url', 'url-error')}
      </div>
      <div class="field">
        <label for="description">Description <span class="muted">(optional)</span></label>
        <textarea
          id="description"
          name="description"
          rows="2"
          maxlength="500"
          ${invalid('description')}
        >
${view.values.description}</textarea>
        ${fieldError(view.error, 'description', 'description-error')}
      </div>
      <div class="field">
        <label for="rate_limit_per_second"
          >Rate limit <span class="muted">(optional, deliveries per second)</span></label
        >
        <input
          id="rate_limit_per_second"
          name="rate_limit_per_second"
          type="number"
          inputmode="numeric"
          min="1"
          max="10000"
          step="1"
          value="${Number.isFinite(view.values.rate_limit_per_second) ? String(view.values.rate_limit_per_second) : ''}"
          aria-describedby="rate-hint${view.error?.field === 'rate_limit_per_second' ? ' rate-error' : ''}"
          ${invalid('rate_limit_per_second')}
        />
        <p class="hint" id="rate-hint">
          At most this many deliveries a second, across every worker; the rest wait their turn (they
          are not failed). Empty: no limit.
        </p>
        ${fieldError(view.error, 'rate_limit_per_second', 'rate-error')}
      </div>
      <div class="field">
        <label for="ordering">Ordering</label>
        <select id="ordering" name="ordering" aria-describedby="ordering-hint">
          <option value="unordered" ${view.values.ordering !== 'ordered' && html`selected`}>
            Unordered: each event as soon as it is due
          </option>
          <option value="ordered" ${view.values.ordering === 'ordered' && html`selected`}>
            Ordered: each member’s, order’s and leaderboard’s events in the order they happened
          </option>
        </select>
        <p class="hint" id="ordering-hint">
          Ordered: a subject’s next event waits until the one before it was delivered or failed for
          good; each carries X-Incentable-Subject and X-Incentable-Sequence.
        </p>
        ${fieldError(view.error, 'ordering', 'ordering-error')}
      </div>
      <fieldset
        class="events"
        ${view.error?.field === 'events' && html`aria-describedby="events-error"`}
      >
        <legend>Events to receive</legend>
        ${fieldError(view.error, 'events', 'events-error')}
        <div class="check check-all">
          <input
            type="checkbox"
            id="events-all"
            name="all_events"
            value="on"
            ${all && html`checked`}
            data-select-all="events"
          />
          <label for="events-all">Select all events</label>
        </div>
        <div class="groups">
          ${catalogue.map((group) => {
            const groupId = group.name.toLowerCase().replace(/\W+/g, '-');
            return html`<fieldset class="group">
              <legend>${group.name}</legend>
              ${group.entries.map((entry) =>
                typeBox(entry, { name: 'events', checked: chosen.has(entry.type), groupId }),
              )}
            </fieldset>`;
          })}
        </div>
        ${optInGroups(chosen)}
      </fieldset>
      <div class="actions">
        <button type="submit" class="button button-primary">${view.submitLabel}</button>
        <a class="button button-quiet" href="${view.cancelHref}">Cancel</a>
      </div>
    </form>`;
};

/** The opt-in types, outside "Select all": only an endpoint that ticks one gets it. */
const optInGroups = (chosen: ReadonlySet<string>): SafeHtml =>
  html`${optInCatalogue.map(
    (group) =>
      html`<fieldset class="group">
        <legend>${group.name} (opt-in, not part of "Select all")</legend>
        ${group.entries.map((entry) =>
          typeBox(entry, { name: 'opt_in_events', checked: chosen.has(entry.type), groupId: null }),
        )}
      </fieldset>`,
  )}`;

/** One event type's checkbox, its name and its description; `groupId` ties it to Select all. */
const typeBox = (
  entry: { type: string; description: string },
  box: { name: string; checked: boolean; groupId: string | null },
): SafeHtml =>
  html`<div class="check">
    <input
      type="checkbox"
      id="event-${entry.type}"
      name="${box.name}"
      value="${entry.type}"
      ${box.checked && html`checked`}
      aria-describedby="desc-${entry.type}"
      ${box.groupId !== null && html`data-group="${box.groupId}"`}
    />
    <label for="event-${entry.type}"><code>${entry.type}</code></label>
    <p class="hint" id="desc-${entry.type}">${entry.description}</p>
  </div>`;
