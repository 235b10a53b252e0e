import { z } from 'zod';
import { FedAvg, FedProx } from './fedavg.js';
import { FedAvgM } from './fedavgm.js';
import { FedOpt } from './fedopt.js';
import { CoordinateMedian, TrimmedMean } from './robust.js';
import type { Strategy } from './types.js';

export type { ClientUpdate, CoordinateAggregation, MeanAggregation, RoundAggregation, Strategy } from './types.js';
export { aggregateInMemory } from './aggregate-in-memory.js';
export { FedAvg, FedProx, WeightedAverage } from './fedavg.js';
export { CoordinateMedian, TrimmedMean } from './robust.js';
export { FedOpt } from './fedopt.js';
export { FedAvgM } from './fedavgm.js';

const fedOptParams = {
  eta: z.number().positive().default(0.01),
  beta1: z.number().positive().lt(1).default(0.9),
  beta2: z.number().positive().lt(1).default(0.99),
  tau: z.number().positive().default(1e-3),
};

/** The `strategy` block of a federation config. */
export const StrategyConfigSchema = z.discriminatedUnion('name', [
  z.object({ name: z.literal('fedavg') }).strict(),
  z.object({ name: z.literal('fedprox'), mu: z.number().nonnegative().default(0.01) }).strict(),
  z.object({ name: z.literal('fedavgm'), eta: z.number().positive().default(1), beta: z.number().min(0).lt(1).default(0.7) }).strict(),
  z.object({ name: z.literal('median') }).strict(),
  z.object({ name: z.literal('trimmed-mean'), beta: z.number().min(0).lt(0.5).default(0.2) }).strict(),
  z.object({ name: z.literal('fedadam'), ...fedOptParams }).strict(),
  z.object({ name: z.literal('fedyogi'), ...fedOptParams }).strict(),
]);
export type StrategyConfig = z.infer<typeof StrategyConfigSchema>;

export function createStrategy(config: StrategyConfig): Strategy {
  switch (config.name) {
    case 'fedavg': return new FedAvg();
    case 'fedprox': return new FedProx(config.mu);
    case 'fedavgm': return new FedAvgM({ eta: config.eta, beta: config.beta });
    case 'median': return new CoordinateMedian();
    case 'trimmed-mean': return new TrimmedMean(config.beta);
    case 'fedadam':
    case 'fedyogi': {
      const { name, ...params } = config;
      return new FedOpt(name, params);
    }
  }
}
