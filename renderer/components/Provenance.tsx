/** Where a mask came from and how a saved final version differs from it, in words. */
import type { MaskProvenance, MaskVersion } from '../../preload/api.js';
import { formatScore } from '../format.js';

export function sourceText(source: MaskProvenance | { kind: 'blank' } | { kind: 'truth' }): string {
  if (source.kind === 'truth') return 'Ground truth';
  if (source.kind === 'blank') return 'Blank mask';
  if (source.kind === 'final') return `Final v${source.version}`;
  const round = source.round === null ? 'unknown round' : `round ${source.round}`;
  return `Prediction, global model ${round}${source.modelSha256 ? ` (${source.modelSha256.slice(0, 12)})` : ''}`;
}

export function ProvenanceText({ version }: { version: MaskVersion }) {
  const dice = version.diceVsSource;
  return (
    <span data-testid={`provenance-${version.version}`}>
      from {sourceText(version.source)}
      {dice && <>; Dice ET {formatScore(dice.et)} / TC {formatScore(dice.tc)} / WT {formatScore(dice.wt)}</>}
      ; WT {version.sourceVolumesMl.wt.toFixed(1)} → {version.volumesMl.wt.toFixed(1)} mL
      {version.confirmedWarnings.length > 0 && <span className="issue-warning"> · accepted: {version.confirmedWarnings.map((w) => w.message).join('; ')}</span>}
    </span>
  );
}
