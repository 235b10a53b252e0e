/**
 * The seed a site trains with in a round (patch sampling, case order, dropout): derived from the
 * federation seed, the round and the attempt, so a rerun of the same federation on the same backend
 * reproduces every local training run. The server and the in-process experiment both use it.
 */
export function roundSeed(federationSeed: number, round: number, attempt: number): number {
  return (federationSeed * 1_000_003 + round * 101 + attempt) % 2 ** 31;
}
