/**
 * The approval card's differential-privacy facts (docs/PRIVACY.md): how the update is protected and the
 * epsilon the released models have spent so far and will have spent after this round.
 */
import type { RoundPrivacyInfo } from '../../preload/api.js';

const fixed = (n: number) => Number(n.toPrecision(3)).toString();

/** A <dt>/<dd> pair for the card's facts list; `siteNoiseStd`: distributed DP, this site's own noise. */
export function PrivacyFacts({ privacy, siteNoiseStd }: { privacy: RoundPrivacyInfo; siteNoiseStd: number | null }) {
  return (
    <>
      <dt>Differential privacy</dt>
      <dd data-testid="privacy">
        {privacy.mode}: your update is clipped to L2 norm <b>{fixed(privacy.clip)}</b> before it leaves;{' '}
        {privacy.mode === 'central'
          ? <>the server adds Gaussian noise of standard deviation {fixed(privacy.noiseMultiplier * privacy.clip)} to the sum of updates</>
          : siteNoiseStd === null
            ? <>each site adds its share of the Gaussian noise before secure aggregation</>
            : <>your site adds Gaussian noise of standard deviation <b data-testid="site-noise">{fixed(siteNoiseStd)}</b> to its clipped update before secure aggregation masks it,
              so that the sum over the sites carries noise of standard deviation at least {fixed(privacy.noiseMultiplier * privacy.clip)}</>}
        . Privacy spent (δ = {privacy.delta}): ε <b data-testid="epsilon-so-far">{fixed(privacy.epsilonSoFar)}</b> so far,{' '}
        ε <b data-testid="epsilon-after">{fixed(privacy.epsilonAfterRound)}</b> after this round; budget ε {fixed(privacy.budget.epsilon)} at δ = {privacy.budget.delta}.
      </dd>
    </>
  );
}

