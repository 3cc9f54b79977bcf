import * as crypto from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/**
 * The two independent verifiers every signed delivery must satisfy: the public docs' snippet
 * ("Verifying Webhooks"), verbatim but for the require line, which is the `import * as crypto`
 * above; and the standardwebhooks library.
 */

/* eslint-disable -- untyped third-party JavaScript kept byte for byte; typing it would change it */
// @ts-expect-error -- the snippet's parameters are untyped JavaScript
// prettier-ignore
function verifyWebhook(payload, signature, secret) {
const expected = crypto
.createHmac('sha256', secret)
.update(payload)
.digest('hex');
return crypto.timingSafeEqual(
Buffer.from(signature),
Buffer.from(expected)
);
}
/* eslint-enable */

/** The docs' snippet throws on a signature of another length; a wrong signature is a "no". */
export const docsSnippetAccepts = (payload: string, signature: string, secret: string): boolean => {
  try {
    return (verifyWebhook as (p: string, s: string, k: string) => boolean)(
      payload,
      signature,
      secret,
    );
  } catch {
    return false;
  }
};

/** standardwebhooks' verify, as a yes or no. */
export const standardWebhooksAccepts = (
  secret: string,
  body: string,
  headers: Record<string, string>,
): boolean => {
  try {
    new Webhook(secret).verify(body, headers);
    return true;
  } catch {
    return false;
  }
};
