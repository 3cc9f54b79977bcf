import type { DeliveryCounts } from '../../db/dashboardQueries.ts';
import { dailyBarChart, stackedBar, type DailyPoint } from './charts.ts';
import { html, type SafeHtml } from './html.ts';
import { base, number } from './layout.ts';

/** Status colours: each has at least 3:1 contrast on white (WCAG 1.4.11, graphics). */
export const statusColours: Record<keyof DeliveryCounts, string> = {
  delivered: '#1a7f37',
  pending: '#9a6700',
  delivering: '#0969da',
  failed: '#cf222e',
  gone: '#6e40c9',
};

export const statusLabels: Record<keyof DeliveryCounts, string> = {
  delivered: 'Delivered',
  pending: 'Pending or retrying',
  delivering: 'Sending',
  failed: 'Failed',
  gone: 'Gone (410)',
};

const expiryText = (expiry: { mode: 'inactivity' | 'per_award'; days: number } | null) =>
  expiry === null
    ? 'Never'
    : expiry.mode === 'per_award'
      ? `${number(expiry.days)} days after each award`
      : `After ${number(expiry.days)} days without activity`;

export const overviewPage = (view: {
  members: number;
  awarded: number;
  redeemed: number;
  days: DailyPoint[];
  deliveries: DeliveryCounts;
  /** The program's `points_expiry`, as GET program shows it. */
  pointsExpiry: { mode: 'inactivity' | 'per_award'; days: number } | null;
  /** A rule-change job under way: members re-evaluated of the program's members. */
  reevaluation?: { handled: number; total: number } | null;
}): SafeHtml => {
  const order: (keyof DeliveryCounts)[] = ['delivered', 'pending', 'delivering', 'failed', 'gone'];
  const total = order.reduce((sum, k) => sum + view.deliveries[k], 0);
  const reevaluation = view.reevaluation ?? null;
  return html`${
      reevaluation &&
      html`<p class="flash" role="status" id="tier-reevaluation">
        Re-evaluating tiers after the rules changed: ${number(reevaluation.handled)} of
        ${number(reevaluation.total)} members
      </p>`
    }
    <section aria-labelledby="stats-heading">
      <h2 id="stats-heading" class="visually-hidden">Key figures</h2>
      <dl class="stats">
        <div class="stat">
          <dt>Members</dt>
          <dd data-stat="members">${number(view.members)}</dd>
          <dd class="stat-link"><a href="${base}/members">View members</a></dd>
        </div>
        <div class="stat">
          <dt>Points awarded, last 30 days</dt>
          <dd data-stat="awarded">${number(view.awarded)}</dd>
        </div>
        <div class="stat">
          <dt>Points redeemed, last 30 days</dt>
          <dd data-stat="redeemed">${number(view.redeemed)}</dd>
        </div>
        <div class="stat">
          <dt>Points expiry</dt>
          <dd data-stat="points-expiry">${expiryText(view.pointsExpiry)}</dd>
        </div>
        <div class="stat">
          <dt>Webhook deliveries, last 24 h</dt>
          <dd data-stat="deliveries">${number(total)}</dd>
          <dd class="stat-link"><a href="${base}/settings/webhooks">Webhook settings</a></dd>
        </div>
      </dl>
    </section>
    <section class="panel" aria-labelledby="awarded-heading">
      <h2 id="awarded-heading">Points awarded per day</h2>
      ${dailyBarChart({
        id: 'chart-awarded',
        title: 'Points awarded per day, last 30 days',
        description: `${number(view.awarded)} points in total over the last 30 days.`,
        days: view.days,
      })}
      <details>
        <summary>Show as a table</summary>
        <div class="table-wrap" role="region" aria-label="Points awarded per day" tabindex="0">
          <table>
            <thead>
              <tr>
                <th scope="col">Day</th>
                <th scope="col" class="num">Points</th>
              </tr>
            </thead>
            <tbody>
              ${view.days.map(
                (d) =>
                  html`<tr>
                    <td>${d.day}</td>
                    <td class="num">${number(d.value)}</td>
                  </tr>`,
              )}
            </tbody>
          </table>
        </div>
      </details>
    </section>
    <section class="panel" aria-labelledby="deliveries-heading">
      <h2 id="deliveries-heading">Webhook deliveries in the last 24 hours, by result</h2>
      ${stackedBar({
        id: 'chart-deliveries',
        title: 'Webhook deliveries in the last 24 hours by result',
        description: order.map((k) => `${statusLabels[k]}: ${view.deliveries[k]}`).join(', '),
        segments: order.map((k) => ({
          label: statusLabels[k],
          value: view.deliveries[k],
          colour: statusColours[k],
        })),
      })}
    </section>`;
};
