/**
 * The receiving side lives in its own package, packages/webhooks (`@incentable/webhooks`), so
 * customers verify exactly what we sign; the service and its tests import it from here.
 */
export {
  verifyWebhook,
  type IncomingHeaders,
  type VerificationFailure,
  type VerificationResult,
  type VerifyOptions,
} from '../packages/webhooks/src/verify.ts';
