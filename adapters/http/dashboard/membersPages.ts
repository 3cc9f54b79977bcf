import type { Queries } from '../../../projections/queries.ts';
import { html, type SafeHtml } from './html.ts';
import { base, number, timeOf } from './layout.ts';

type MemberView = NonNullable<Awaited<ReturnType<Queries['member']>>>;
type MemberRow = Awaited<ReturnType<Queries['members']>>['data'][number];
type LedgerPage = Awaited<ReturnType<Queries['ledger']>>;
type OrderView = Awaited<ReturnType<Queries['memberOrders']>>[number];

const memberHref = (id: string) => `${base}/members/${encodeURIComponent(id)}`;

const statusBadge = (status: string): SafeHtml =>
  html`<span class="badge badge-${status === 'active' ? 'ok' : 'off'}">${status}</span>`;

export const membersPage = (view: {
  q: string;
  members: MemberRow[];
  nextCursor: string | null;
}): SafeHtml =>
  html`<form class="search" method="get" action="${base}/members" role="search">
      <label for="member-search">Search by name or e-mail</label>
      <div class="inline">
        <input
          id="member-search"
          name="q"
          type="search"
          value="${view.q}"
          autocomplete="off"
          maxlength="200"
        />
        <button type="submit" class="button">Search</button>
        ${view.q && html`<a class="button button-quiet" href="${base}/members">Clear</a>`}
      </div>
    </form>
    ${
      view.members.length === 0
        ? html`<p class="empty">
            ${view.q ? 'No member matches this search.' : 'No members yet.'}
          </p>`
        : html`<div class="table-wrap" role="region" aria-label="Members" tabindex="0">
            <table class="members stack">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">E-mail</th>
                  <th scope="col">Tier</th>
                  <th scope="col" class="num">Balance</th>
                  <th scope="col">Status</th>
                </tr>
              </thead>
              <tbody>
                ${view.members.map(
                  (m) =>
                    html`<tr>
                      <td data-label="Name"><a href="${memberHref(m.id)}">${m.name}</a></td>
                      <td data-label="E-mail">${m.email}</td>
                      <td data-label="Tier">${m.tier ?? html`<span class="muted">none</span>`}</td>
                      <td data-label="Balance" class="num">${number(m.balance)}</td>
                      <td data-label="Status">${statusBadge(m.status)}</td>
                    </tr>`,
                )}
              </tbody>
            </table>
          </div>`
    }
    ${
      view.nextCursor &&
      html`<p class="pager">
        <a
          class="button"
          href="${base}/members?${new URLSearchParams({ ...(view.q && { q: view.q }), cursor: view.nextCursor }).toString()}"
          >Next page</a
        >
      </p>`
    }`;

/** Ledger points are signed (a deduction is negative); shown with a real minus sign. */
const signed = (points: number): string =>
  points >= 0 ? `+${number(points)}` : `−${number(-points)}`;

export const memberPage = (view: {
  member: MemberView;
  ledger: LedgerPage;
  orders: OrderView[];
}): SafeHtml => {
  const m = view.member;
  return html`<dl class="facts">
      <div>
        <dt>Member id</dt>
        <dd class="mono">${m.id}</dd>
      </div>
      <div>
        <dt>E-mail</dt>
        <dd>${m.email}</dd>
      </div>
      <div>
        <dt>External id</dt>
        <dd>${m.external_id ?? html`<span class="muted">none</span>`}</dd>
      </div>
      <div>
        <dt>Tier</dt>
        <dd>${m.tier ?? html`<span class="muted">none</span>`}</dd>
      </div>
      <div>
        <dt>Balance</dt>
        <dd data-stat="balance">${number(m.balance)}</dd>
      </div>
      <div>
        <dt>Lifetime points</dt>
        <dd>${number(m.lifetime_points)}</dd>
      </div>
      <div>
        <dt>Status</dt>
        <dd>${statusBadge(m.status)}</dd>
      </div>
      <div>
        <dt>Last activity</dt>
        <dd>${timeOf(m.last_activity_at)}</dd>
      </div>
      <div>
        <dt>Next expiry</dt>
        <dd data-stat="next-expiry">
          ${
            m.next_expiry
              ? html`${number(m.next_expiry.points)} points on ${timeOf(m.next_expiry.at)}`
              : html`<span class="muted">none</span>`
          }
        </dd>
      </div>
    </dl>
    <section class="panel" aria-labelledby="ledger-heading">
      <h2 id="ledger-heading">Points ledger</h2>
      ${
        view.ledger.data.length === 0
          ? html`<p class="empty">No points have moved yet.</p>`
          : html`<div class="table-wrap" role="region" aria-label="Points ledger" tabindex="0">
              <table class="ledger stack">
                <thead>
                  <tr>
                    <th scope="col">When</th>
                    <th scope="col">Kind</th>
                    <th scope="col" class="num">Points</th>
                    <th scope="col">Reason</th>
                    <th scope="col">Reference</th>
                    <th scope="col" class="num">Balance</th>
                  </tr>
                </thead>
                <tbody>
                  ${view.ledger.data.map(
                    (row) =>
                      html`<tr>
                        <td data-label="When">${timeOf(row.created_at)}</td>
                        <td data-label="Kind">${row.kind}</td>
                        <td data-label="Points" class="num points-${row.kind}">
                          ${signed(row.points)}
                        </td>
                        <td data-label="Reason">${row.reason}</td>
                        <td data-label="Reference">
                          ${row.reference ?? html`<span class="muted">—</span>`}
                        </td>
                        <td data-label="Balance" class="num">${number(row.balance)}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>
            </div>`
      }
      ${
        view.ledger.next_cursor &&
        html`<p class="pager">
          <a
            class="button"
            href="${memberHref(m.id)}?ledger_cursor=${encodeURIComponent(view.ledger.next_cursor)}"
            >Older entries</a
          >
        </p>`
      }
    </section>
    <section class="panel" aria-labelledby="orders-heading">
      <h2 id="orders-heading">Orders</h2>
      ${
        view.orders.length === 0
          ? html`<p class="empty">No orders.</p>`
          : html`<div class="table-wrap" role="region" aria-label="Orders" tabindex="0">
              <table class="stack">
                <thead>
                  <tr>
                    <th scope="col">Placed</th>
                    <th scope="col">Order</th>
                    <th scope="col">Reward</th>
                    <th scope="col" class="num">Points</th>
                    <th scope="col">Status</th>
                    <th scope="col">Tracking</th>
                  </tr>
                </thead>
                <tbody>
                  ${view.orders.map(
                    (o) =>
                      html`<tr>
                        <td data-label="Placed">${timeOf(o.created_at)}</td>
                        <td data-label="Order" class="mono">${o.id}</td>
                        <td data-label="Reward">${o.reward_name}</td>
                        <td data-label="Points" class="num">${number(o.points_spent)}</td>
                        <td data-label="Status"><span class="badge">${o.status}</span></td>
                        <td data-label="Tracking">
                          ${o.carrier ? html`${o.carrier} ${o.tracking_number}` : html`<span class="muted">—</span>`}
                        </td>
                      </tr>`,
                  )}
                </tbody>
              </table>
            </div>`
      }
    </section>`;
};
