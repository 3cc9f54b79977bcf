import type { ApiKeyView } from '../../db/apiKeyStore.ts';
import { html, type SafeHtml } from './html.ts';
import { base, csrfField, timeOf } from './layout.ts';

export const apiKeysBase = `${base}/settings/api-keys`;

export const signInPage = (view: {
  csrfToken: string;
  error: string | null;
  next: string | null;
}): SafeHtml =>
  html`<div class="narrow">
    <p class="lead">
      Sign in with an API key: a program key opens its program, the root key opens every program.
    </p>
    ${view.error && html`<div class="flash flash-error" role="alert" id="signin-error">${view.error}</div>`}
    <form class="form" method="post" action="${base}/sign-in">
      ${csrfField(view.csrfToken)}
      ${view.next && html`<input type="hidden" name="next" value="${view.next}" />`}
      <div class="field">
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api_key"
          type="password"
          required
          autocomplete="current-password"
          spellcheck="false"
          aria-describedby="api-key-hint${view.error ? ' signin-error' : ''}"
          ${view.error && html`aria-invalid="true"`}
        />
        <p class="hint" id="api-key-hint">
          The whole key, <code>key_….secret</code>. Only its id is kept in your session.
        </p>
      </div>
      <div class="actions">
        <button type="submit" class="button button-primary">Sign in</button>
      </div>
    </form>
  </div>`;

export const programsPage = (view: {
  programs: { id: string; name: string }[];
  current: string | null;
  csrfToken: string;
}): SafeHtml =>
  view.programs.length === 0
    ? html`<p class="empty">
        There are no programs yet. Create one with <code>POST /v1/programs</code>.
      </p>`
    : html`<ul class="cards programs">
        ${view.programs.map(
          (p) =>
            html`<li class="card">
              <h2 class="card-title">${p.name}</h2>
              <p class="mono muted">${p.id}</p>
              ${
                p.id === view.current
                  ? html`<p><span class="badge badge-ok">Current program</span></p>`
                  : html`<form method="post" action="${base}/program">
                      ${csrfField(view.csrfToken)}
                      <input type="hidden" name="program_id" value="${p.id}" />
                      <button type="submit" class="button">
                        Open <span class="visually-hidden">${p.name}</span>
                      </button>
                    </form>`
              }
            </li>`,
        )}
      </ul>`;

export const messagePage = (view: { message: string; back: string | null }): SafeHtml =>
  html`<p>${view.message}</p>
    ${view.back && html`<p><a class="button" href="${view.back}">Back</a></p>`}`;

/**
 * The program's keys with a Revoke button each. Creating a key stays with the API's root key
 * (the secret must be shown once, to whoever holds root); root keys are the CLI's.
 */
export const apiKeysPage = (view: {
  keys: ApiKeyView[];
  currentKeyId: string;
  csrfToken: string;
}): SafeHtml =>
  html`<p class="lead">
      Keys that act on this program. Revoking one takes effect at once here and within 5 seconds on
      every other server; a dashboard session opened with it ends.
    </p>
    ${
      view.keys.length === 0
        ? html`<p class="empty">
            This program has no keys yet. Create one with
            <code>POST /v1/programs/{program_id}/api-keys</code> and the root key.
          </p>`
        : html`<div class="table-wrap" role="region" aria-label="API keys" tabindex="0">
            <table class="stack">
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  <th scope="col">Label</th>
                  <th scope="col">Created</th>
                  <th scope="col">Last used</th>
                  <th scope="col">Status</th>
                </tr>
              </thead>
              <tbody>
                ${view.keys.map(
                  (k) =>
                    html`<tr>
                      <td data-label="Key">
                        <span class="mono">${k.id}</span>
                        ${k.id === view.currentKeyId && html`<span class="badge">this session</span>`}
                      </td>
                      <td data-label="Label">${k.label ?? html`<span class="muted">—</span>`}</td>
                      <td data-label="Created">${timeOf(k.createdAt)}</td>
                      <td data-label="Last used">${timeOf(k.lastUsedAt)}</td>
                      <td data-label="Status">
                        ${
                          k.revokedAt
                            ? html`<span class="badge badge-off">Revoked</span>
                                ${timeOf(k.revokedAt)}`
                            : html`<form method="post" action="${apiKeysBase}/${k.id}/revoke">
                                ${csrfField(view.csrfToken)}
                                <button type="submit" class="button button-small button-danger">
                                  Revoke <span class="visually-hidden">${k.id}</span>
                                </button>
                              </form>`
                        }
                      </td>
                    </tr>`,
                )}
              </tbody>
            </table>
          </div>`
    }`;
