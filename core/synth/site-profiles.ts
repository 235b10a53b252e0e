import { MODALITIES, type Modality } from '../brats/labels.js';
import { deriveSeed, Prng } from './prng.js';

export { MODALITIES, type Modality };

/**
 * How one synthetic hospital's scanner and patient mix differ from the others, so the
 * federation sees non-IID sites as it would in practice. Min-max scaling (SPEC section 3)
 * removes a scanner's gain and offset but not its contrast (gamma), bias field, noise or slice
 * thickness, so those are what a model trained at one site must cope with at another.
 */
export interface SiteProfile {
  /** 1-based site number. */
  site: number;
  /** Human-readable description of the scanner, for reports. */
  scanner: string;
  /** Integer units per unit of relative tissue signal, per modality (scanner gain). */
  gain: Record<Modality, number>;
  /** Added to every brain voxel, in integer units (scanner offset). */
  offset: number;
  /** Strength of the smooth multiplicative bias field: signal x exp(amplitude * field), field in [-1, 1]. */
  biasAmplitude: number;
  /** Thermal noise standard deviation relative to white-matter signal. */
  noiseSigma: number;
  /** Contrast curve per modality: relative signal s is recorded as s^gamma (1 = linear). */
  gamma: Record<Modality, number>;
  /** Slice thickness in mm along k: each slice averages this many 1 mm planes (through-plane blur). */
  sliceThickness: number;
  /** Fraction of lower-grade gliomas: a non-enhancing core (label 1) and no enhancing tumour (label 4). */
  lowGradeFraction: number;
  /** Relative number of cases this hospital has (referral centres see more gliomas). */
  caseShare: number;
  /** Range of the enhancing tumour's outer radius, in mm. */
  tumourRadius: readonly [number, number];
  /** Range of the edema radius as a multiple of the tumour radius. */
  edemaFactor: readonly [number, number];
  /** Preferred tumour centres as offsets from the brain centre, in units of the brain's radii. */
  locations: readonly (readonly [number, number, number])[];
}

/** A scanner/population template: a profile before the site's jitter, with one gain scale and one gamma for all modalities. */
type Template = Omit<SiteProfile, 'site' | 'gain' | 'gamma'> & { scale: number; gamma: number };

const RIGHT_FRONTAL = [-0.35, -0.45, 0.2] as const;
const LEFT_FRONTAL = [0.35, -0.45, 0.2] as const;
const LEFT_TEMPORAL = [0.45, -0.05, -0.25] as const;
const RIGHT_TEMPORAL = [-0.45, -0.05, -0.25] as const;
const CENTRAL = [0.15, 0.05, 0.1] as const;
const PARIETAL = [0.3, 0.4, 0.3] as const;
const OCCIPITAL = [-0.25, 0.5, 0.05] as const;

/** Five scanner/population templates; sites beyond five reuse them with their own jitter. */
const TEMPLATES: readonly Template[] = [
  { scanner: '3T vendor A, tertiary referral centre (large high-grade tumours, many cases)', scale: 1.0, offset: 0, biasAmplitude: 0.1,
    noiseSigma: 0.02, gamma: 1.0, sliceThickness: 1, lowGradeFraction: 0.1, caseShare: 1.6,
    tumourRadius: [14, 20], edemaFactor: [1.5, 1.9], locations: [RIGHT_FRONTAL, LEFT_FRONTAL, CENTRAL] },
  { scanner: '1.5T vendor B, community hospital (thick slices, small tumours, noisy, few cases)', scale: 0.55, offset: 20, biasAmplitude: 0.25,
    noiseSigma: 0.07, gamma: 0.7, sliceThickness: 5, lowGradeFraction: 0.4, caseShare: 0.6,
    tumourRadius: [9, 13], edemaFactor: [1.6, 2.1], locations: [LEFT_TEMPORAL, RIGHT_TEMPORAL] },
  { scanner: '3T vendor C, research scanner (high gain, steep contrast)', scale: 1.7, offset: 0, biasAmplitude: 0.15,
    noiseSigma: 0.035, gamma: 1.45, sliceThickness: 1, lowGradeFraction: 0.2, caseShare: 1.0,
    tumourRadius: [11, 17], edemaFactor: [1.5, 2.0], locations: [CENTRAL, PARIETAL] },
  { scanner: '1.5T vendor A, older coil (strong bias field, 3 mm slices)', scale: 0.8, offset: 60, biasAmplitude: 0.4,
    noiseSigma: 0.05, gamma: 0.85, sliceThickness: 3, lowGradeFraction: 0.3, caseShare: 0.8,
    tumourRadius: [12, 18], edemaFactor: [1.4, 1.8], locations: [PARIETAL, OCCIPITAL] },
  { scanner: '3T vendor B, mixed population', scale: 1.25, offset: 0, biasAmplitude: 0.06,
    noiseSigma: 0.03, gamma: 1.2, sliceThickness: 2, lowGradeFraction: 0.25, caseShare: 1.0,
    tumourRadius: [10, 16], edemaFactor: [1.5, 2.1],
    locations: [RIGHT_FRONTAL, LEFT_TEMPORAL, CENTRAL, PARIETAL, OCCIPITAL] },
];

/** Nominal integer gain per modality before the site's scale. */
const BASE_GAIN: Record<Modality, number> = { flair: 380, t1: 520, t1ce: 620, t2: 760 };

/** The profile of site `site` (1-based) for a given dataset seed; deterministic. */
export function siteProfile(seed: number, site: number): SiteProfile {
  const template = TEMPLATES[(site - 1) % TEMPLATES.length];
  const rng = new Prng(deriveSeed(seed, site, 0x517e));
  const gain = {} as Record<Modality, number>;
  for (const modality of MODALITIES) gain[modality] = BASE_GAIN[modality] * template.scale * rng.uniform(0.9, 1.1);
  const gamma = {} as Record<Modality, number>;
  for (const modality of MODALITIES) gamma[modality] = template.gamma * rng.uniform(0.92, 1.08);
  return {
    site,
    scanner: template.scanner,
    gain,
    offset: template.offset,
    biasAmplitude: template.biasAmplitude * rng.uniform(0.85, 1.15),
    noiseSigma: template.noiseSigma * rng.uniform(0.85, 1.15),
    gamma,
    sliceThickness: template.sliceThickness,
    lowGradeFraction: template.lowGradeFraction,
    caseShare: template.caseShare,
    tumourRadius: template.tumourRadius,
    edemaFactor: template.edemaFactor,
    locations: template.locations,
  };
}
