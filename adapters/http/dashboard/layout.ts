import { html, type SafeHtml } from './html.ts';
import type { DashboardSession, Flash } from './sessions.ts';

export const base = '/dashboard';

export type Section = 'overview' | 'members' | 'webhooks' | 'apiKeys' | 'programs';

export type Shell = {
  title: string;
  session: DashboardSession | null;
  section: Section | null;
  programName?: string | null;
  /** Set for a root session: the programs it can switch between. */
  programs?: { id: string; name: string }[] | null;
  flash?: Flash | null;
  /** Breadcrumb links before the title, outermost first. */
  crumbs?: { href: string; label: string }[];
};

/** Every form carries the session's token; POST handlers refuse a request without it. */
export const csrfField = (token: string): SafeHtml =>
  html`<input type="hidden" name="_csrf" value="${token}" />`;

/** A `<time>` in UTC, to the second: admins compare it with receiver logs. */
export const timeOf = (at: Date | string | null | undefined): SafeHtml => {
  if (at === null || at === undefined) return html`<span class="muted">—</span>`;
  const date = typeof at === 'string' ? new Date(at) : at;
  const iso = date.toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC</time>`;
};

export const number = (n: number): string => n.toLocaleString('en-US');

const navItems: { section: Section; href: string; label: string }[] = [
  { section: 'overview', href: `${base}/overview`, label: 'Overview' },
  { section: 'members', href: `${base}/members`, label: 'Members' },
  { section: 'webhooks', href: `${base}/settings/webhooks`, label: 'Settings → Webhooks' },
  { section: 'apiKeys', href: `${base}/settings/api-keys`, label: 'Settings → API keys' },
];

const flashBlock = (flash: Flash | null | undefined): SafeHtml => {
  if (!flash || flash.kind === 'secret') return html``;
  return flash.kind === 'error'
    ? html`<div class="flash flash-error" role="alert">${flash.message}</div>`
    : html`<div class="flash" role="status">${flash.message}</div>`;
};

const programSwitcher = (shell: Shell, session: DashboardSession): SafeHtml => {
  if (shell.programs && session.principal.kind === 'root') {
    return html`<form class="switcher" method="post" action="${base}/program">
      ${csrfField(session.csrfToken)}
      <label for="program-switch">Program</label>
      <select id="program-switch" name="program_id">
        ${shell.programs.map(
          (p) =>
            html`<option value="${p.id}" ${p.id === session.programId && html`selected`}>
              ${p.name} (${p.id})
            </option>`,
        )}
      </select>
      <button type="submit" class="button button-small">Switch</button>
    </form>`;
  }
  return shell.programName
    ? html`<span class="program-name"
        ><span class="muted">Program</span> ${shell.programName}</span
      >`
    : html``;
};

/** The page around every view: skip link, header with program and sign-out, navigation, main. */
export const page = (shell: Shell, body: SafeHtml): SafeHtml => {
  const session = shell.session;
  const hasProgram = session !== null && session.programId !== null;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="same-origin" />
        <title>${shell.title} · Incentable</title>
        <link rel="stylesheet" href="${base}/static/dashboard.css" />
        <script src="${base}/static/dashboard.js" defer></script>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <div class="bar">
            <a class="brand" href="${base}/">Incentable <span class="muted">admin</span></a>
            ${
              session &&
              html`<div class="session">
                ${programSwitcher(shell, session)}
                <span class="muted key-id" title="Signed in with this API key"
                  >${session.principal.kind === 'root' ? 'root key' : 'program key'}
                  ${session.principal.keyId}</span
                >
                <form method="post" action="${base}/sign-out">
                  ${csrfField(session.csrfToken)}
                  <button type="submit" class="button button-small button-quiet">Sign out</button>
                </form>
              </div>`
            }
          </div>
          ${
            hasProgram &&
            html`<nav aria-label="Main">
              <ul>
                ${navItems.map(
                  (item) =>
                    html`<li>
                      <a
                        href="${item.href}"
                        ${item.section === shell.section && html`aria-current="page"`}
                        >${item.label}</a
                      >
                    </li>`,
                )}
                ${
                  session.principal.kind === 'root' &&
                  html`<li>
                    <a
                      href="${base}/programs"
                      ${shell.section === 'programs' && html`aria-current="page"`}
                      >Programs</a
                    >
                  </li>`
                }
              </ul>
            </nav>`
          }
        </header>
        <main id="main" tabindex="-1">
          ${
            shell.crumbs &&
            html`<nav aria-label="Breadcrumb" class="crumbs">
              <ol>
                ${shell.crumbs.map((c) => html`<li><a href="${c.href}">${c.label}</a></li>`)}
                <li aria-current="page">${shell.title}</li>
              </ol>
            </nav>`
          }
          <h1>${shell.title}</h1>
          ${flashBlock(shell.flash)} ${body}
        </main>
      </body>
    </html>`;
};
