/** The approval card's DP facts, rendered by React as the app renders them: the clip, the noise and epsilon so far and after the round. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { siteNoiseStdOf } from '../../main/service/federation-link.js';
import { PrivacyFacts } from '../../renderer/components/PrivacyFacts.js';

test('the approval card shows the DP clip, the noise, epsilon so far and after this round, and the budget', () => {
  const html = renderToStaticMarkup(createElement(PrivacyFacts, {
    privacy: { mode: 'central', clip: 0.5, noiseMultiplier: 3.79638671875, delta: 1e-5, epsilonSoFar: 2.0123, epsilonAfterRound: 2.71828, budget: { epsilon: 8, delta: 1e-5 } },
    siteNoiseStd: null,
  }));
  const text = html.replace(/<[^>]+>/g, '');
  assert.match(html, /<b data-testid="epsilon-so-far">2\.01<\/b>/);
  assert.match(html, /<b data-testid="epsilon-after">2\.72<\/b>/);
  assert.match(text, /central: your update is clipped to L2 norm 0\.5 before it leaves; the server adds Gaussian noise of standard deviation 1\.9 to the sum of updates/);
  assert.match(text, /budget ε 8 at δ = 0\.00001/);
});

test('with distributed DP the card shows the noise this site adds, and what the sum carries', () => {
  const html = renderToStaticMarkup(createElement(PrivacyFacts, {
    privacy: { mode: 'distributed', clip: 0.5, noiseMultiplier: 3.79638671875, delta: 1e-5, epsilonSoFar: 0, epsilonAfterRound: 1, budget: { epsilon: 8, delta: 1e-5 } },
    siteNoiseStd: 1.0958,
  }));
  assert.match(html, /<b data-testid="site-noise">1\.1<\/b>/);
  assert.match(html.replace(/<[^>]+>/g, '').replace(/\s+/g, ' '), /distributed: your update is clipped to L2 norm 0\.5 before it leaves; your site adds Gaussian noise of standard deviation 1\.1 to its clipped update before secure aggregation masks it, so that the sum over the sites carries noise of standard deviation at least 1\.9/);
});

test('the app takes the site\'s noise from the announcement: sigma C / sqrt(threshold), only for distributed DP', () => {
  const privacy = { mode: 'distributed' as const, clip: 0.5, noiseMultiplier: 3.79638671875, delta: 1e-5, epsilonSoFar: 0, epsilonAfterRound: 1, budget: { epsilon: 8, delta: 1e-5 } };
  assert.equal(siteNoiseStdOf({ privacy, secureAggregation: { threshold: 3, clipRange: 1 } }), (3.79638671875 * 0.5) / Math.sqrt(3));
  assert.equal(siteNoiseStdOf({ privacy: { ...privacy, mode: 'central' }, secureAggregation: null }), null);
  assert.equal(siteNoiseStdOf({ privacy: null, secureAggregation: { threshold: 3, clipRange: 1 } }), null);
});
