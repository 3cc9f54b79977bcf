import { verifyWebhook } from '../../../delivery/receiver.ts';
import { startReceiver, type Receiver } from '../../support/receiver.ts';

/** One POST as received, with what the reconciliation needs from it. */
export type Delivery = {
  at: number;
  path: string;
  /** The webhook-id header (the envelope id), null when missing. */
  envelopeId: string | null;
  raw: Buffer;
  headers: Record<string, string | string[] | undefined>;
  /** The signature checked with the endpoint's secret, as of the arrival time. */
  verified: boolean;
  /** data.transaction_id of a points.* envelope, null for other types or unreadable bodies. */
  transactionId: string | null;
  type: string | null;
};

export type WebhookRecorder = {
  /** The URL to register as the endpoint. */
  url: string;
  /** The secret the endpoint creation returned; every POST is verified with it from then on. */
  trust: (secret: string) => void;
  deliveries: Delivery[];
  close: () => Promise<void>;
};

/**
 * A customer's endpoint on loopback: answers 200 at once, records every POST's raw bytes and
 * headers, and verifies its signature as of its arrival time (Standard Webhooks headers, ten
 * minutes of tolerance: a retry sent late must not look forged).
 */
export const startWebhookRecorder = async (): Promise<WebhookRecorder> => {
  const receiver: Receiver = await startReceiver(() => ({ status: 200 }));
  let secret: string | null = null;
  const deliveries: Delivery[] = [];
  const seen = new Set<unknown>();
  const collect = () => {
    for (const request of receiver.received) {
      if (seen.has(request)) continue;
      seen.add(request);
      type Envelope = { type?: string; data?: { transaction_id?: string } };
      let body: Envelope | null = null;
      try {
        body = JSON.parse(request.body) as Envelope;
      } catch {
        body = null;
      }
      const id = request.headers['webhook-id'];
      deliveries.push({
        at: request.at,
        path: request.path,
        envelopeId: typeof id === 'string' ? id : null,
        raw: request.raw,
        headers: request.headers,
        verified:
          secret !== null &&
          verifyWebhook(request.raw, request.headers, secret, {
            toleranceSeconds: 600,
            now: new Date(request.at),
          }).ok,
        transactionId: body?.data?.transaction_id ?? null,
        type: body?.type ?? null,
      });
    }
  };
  return {
    url: receiver.url,
    trust: (value) => {
      secret = value;
    },
    get deliveries() {
      collect();
      return deliveries;
    },
    close: () => receiver.close(),
  };
};
