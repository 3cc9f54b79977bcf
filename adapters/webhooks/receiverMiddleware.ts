/** The express middleware of the receiver package (packages/webhooks, its ./express entry). */
export {
  webhookReceiver,
  type WebhookLocals,
  type WebhookReceiverOptions,
} from '../../packages/webhooks/src/express.ts';
