/** The approval card's DP facts, rendered by React as the app renders them: the clip, the noise and epsilon so far and after the round. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { PrivacyFacts } from '../../renderer/components/PrivacyFacts.js';

test('the approval card shows the DP clip, the noise, epsilon so far and after this round, and the budget', () => {
  const html = renderToStaticMarkup(createElement(PrivacyFacts, {
    privacy: { mode: 'central', clip: 0.5, noiseMultiplier: 3.79638671875, delta: 1e-5, epsilonSoFar: 2.0123, epsilonAfterRound: 2.71828, budget: { epsilon: 8, delta: 1e-5 } },
  }));
  const text = html.replace(/<[^>]+>/g, '');
  assert.match(html, /<b data-testid="epsilon-so-far">2\.01<\/b>/);
  assert.match(html, /<b data-testid="epsilon-after">2\.72<\/b>/);
  assert.match(text, /central: your update is clipped to L2 norm 0\.5 before it leaves; the server adds Gaussian noise of standard deviation 1\.9 to the sum of updates/);
  assert.match(text, /budget ε 8 at δ = 0\.00001/);
});
