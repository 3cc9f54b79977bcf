import type { FinishedAttempt } from './ports.ts';

/**
 * How emails and logs name an endpoint: its id and host. The path and query string may carry a
 * receiver's token, and an email travels further than the dashboard.
 */
export const endpointLabel = (endpointId: string, url: string): string => {
  let host = 'an unreadable URL';
  try {
    host = new URL(url).host;
  } catch {
    // Stored URLs were validated on the way in; say so rather than print the raw text.
  }
  return `${endpointId} at ${host}`;
};

/**
 * The email telling a program that a delivery failed for good, or that its endpoint answered
 * 410 Gone and was disabled. `publicUrl` is the dashboard's base, without a trailing slash; the
 * link opens the delivery's page there (adapters/http/dashboard).
 */
export const failureNotice = (
  attempt: Pick<FinishedAttempt, 'delivery' | 'result' | 'lastError' | 'decision'>,
  publicUrl: string,
): { subject: string; text: string } => {
  const { delivery } = attempt;
  const endpoint = endpointLabel(delivery.endpoint_id, delivery.url);
  const link = `${publicUrl}/dashboard/webhooks/${delivery.endpoint_id}/deliveries/${delivery.delivery_id}`;
  const gone = attempt.decision.status === 'gone';
  const lastStatus =
    attempt.result.kind === 'response' ? String(attempt.result.status) : 'no response';
  const text = [
    gone
      ? `Your webhook endpoint answered 410 Gone, so it has been disabled. No further events will be sent to it until you re-enable it.`
      : `A webhook could not be delivered after ${delivery.attempts + 1} attempts and has been marked as failed.`,
    '',
    `Endpoint: ${endpoint}`,
    `Event type: ${delivery.type}`,
    `Event id: ${delivery.envelope_id}`,
    `Delivery id: ${delivery.delivery_id}`,
    `Attempts: ${delivery.attempts + 1}`,
    `Last status: ${lastStatus}`,
    `Last error: ${attempt.lastError ?? 'none'}`,
    '',
    `Details and redelivery: ${link}`,
  ].join('\n');
  const subject = gone
    ? `Webhook endpoint disabled (410 Gone): ${endpoint}`
    : `Webhook delivery failed: ${delivery.type} to ${endpoint}`;
  return { subject, text };
};
