export {
  headerOf,
  standardKeyOf,
  verifyWebhook,
  type IncomingHeaders,
  type VerificationFailure,
  type VerificationResult,
  type VerifyOptions,
} from './verify.js';
export { parseWebhook, type ParseFailure, type ParseResult } from './parse.js';
export * from './events.js';
