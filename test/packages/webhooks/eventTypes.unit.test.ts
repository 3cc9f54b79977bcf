import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { eventTypesPath, renderEventTypes } from '../../../bin/webhookTypes.ts';
import {
  optInEventTypes,
  webhookEventTypes as catalogueTypes,
} from '../../../delivery/catalogue.ts';
import { webhookEventTypes } from '../../../packages/webhooks/src/events.ts';

describe('the receiver package’s event types', () => {
  it('are what the catalogue generates today', async () => {
    const committed = readFileSync(eventTypesPath, 'utf8');
    assert.equal(
      committed,
      await renderEventTypes(),
      'packages/webhooks/src/events.ts differs from delivery/catalogue.ts: run `npm run webhook-types` and commit the result',
    );
  });

  it('list every catalogue type and every opt-in type, in the catalogue’s order', () => {
    assert.deepEqual(webhookEventTypes, [...catalogueTypes, ...optInEventTypes]);
  });
});
