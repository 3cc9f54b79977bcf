import { html, type SafeHtml } from './html.ts';
import { base, csrfField } from './layout.ts';

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
