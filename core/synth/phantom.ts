import { deriveSeed, Prng } from './prng.js';
import { MODALITIES, type Modality, type SiteProfile } from './site-profiles.js';
import { SmoothNoise } from './smooth-noise.js';

/** The BraTS 2020 grid: 240 x 240 x 155 voxels of 1 mm. */
export const BRATS_DIMS = [240, 240, 155] as const;

/** The BraTS 2020 affine (LPS-stored data mapped to RAS+ millimetres), rows of a 4x4 matrix. */
export const BRATS_AFFINE: readonly (readonly number[])[] = [
  [-1, 0, 0, 0],
  [0, -1, 0, 239],
  [0, 0, 1, 0],
  [0, 0, 0, 1],
];

type Vec3 = readonly [number, number, number];

/**
 * Which part of the 240 x 240 x 155 grid a generated volume covers. The full case uses the
 * whole grid at 1 mm; a mini case samples a window (by default the preprocessing crop) at a
 * coarser spacing, so tiny test volumes look like downsampled preprocessed crops.
 */
export interface FieldOfView {
  /** First covered voxel position of the full grid (continuous, inclusive), per axis. */
  start: Vec3;
  /** Extent in full-grid voxels (= mm), per axis. */
  size: Vec3;
}

export interface GenerateCaseOptions {
  /** Output grid; defaults to 240 x 240 x 155. */
  dims?: Vec3;
  /** Window of the full grid to sample; defaults to the whole grid. */
  fov?: FieldOfView;
  /** Forces the glioma grade instead of drawing it from the site's lowGradeFraction. */
  grade?: 'high' | 'low';
}

/** Where the generated tumour lies, in full-grid voxel coordinates, for reports and tests. */
export interface TumourGeometry {
  centre: Vec3;
  radius: number;
  edemaRadius: number;
}

/**
 * One synthetic BraTS case in memory. Volumes are in NIfTI storage order (i fastest:
 * index = i + nx * (j + ny * k)), exactly what a NIfTI file of these dims stores.
 */
export interface SyntheticCase {
  dims: [number, number, number];
  /** Voxel size in mm along i, j, k. */
  spacing: [number, number, number];
  /** Voxel index -> RAS+ mm, rows of a 4x4 matrix. */
  affine: number[][];
  modalities: Record<Modality, Int16Array>;
  /** BraTS labels 0 / 1 (necrosis) / 2 (edema) / 4 (enhancing). */
  seg: Uint8Array;
  tumour: TumourGeometry;
}

const enum Tissue { Background, White, Grey, Csf, Edema, Necrosis, Enhancing, NonEnhancing }

/**
 * Relative signal of each tissue per modality (white matter on T1 = 1), following MR physics:
 * CSF dark on T1 and FLAIR (nulled) but bright on T2; oedema bright on T2 and FLAIR; necrosis dark on
 * T1/T1ce and bright on T2; the enhancing rim bright on T1ce only (gadolinium); a lower-grade
 * glioma's non-enhancing core bright on T2/FLAIR and unchanged between T1 and T1ce.
 */
const SIGNAL: Record<Modality, readonly number[]> = {
  //        bg   WM    GM    CSF   edema necro enhancing non-enhancing
  flair: [0, 0.6, 0.76, 0.12, 1.45, 0.85, 1.1, 1.3],
  t1: [0, 1.0, 0.72, 0.25, 0.62, 0.35, 0.7, 0.55],
  t1ce: [0, 1.0, 0.74, 0.28, 0.66, 0.3, 1.65, 0.57],
  t2: [0, 0.45, 0.66, 1.55, 1.2, 1.45, 0.85, 1.4],
};

const LABEL_OF_TISSUE = [0, 0, 0, 0, 2, 1, 4, 1] as const;

/** Crop window the tumour must sit in (SPEC section 3), in full-grid voxels. */
const CROP_LO: Vec3 = [56, 56, 13];
const CROP_HI: Vec3 = [184, 184, 141];

/**
 * Generates case `caseIndex` of a site. Deterministic: the same (seed, profile, caseIndex,
 * options) always yields the same voxels, independent of which other cases were generated.
 */
export function generateCase(seed: number, profile: SiteProfile, caseIndex: number, options: GenerateCaseOptions = {}): SyntheticCase {
  const rng = new Prng(deriveSeed(seed, profile.site, caseIndex));
  const dims: Vec3 = options.dims ?? BRATS_DIMS;
  const fov: FieldOfView = options.fov ?? { start: [0, 0, 0], size: BRATS_DIMS };
  const [nx, ny, nz] = dims;
  const step: Vec3 = [fov.size[0] / nx, fov.size[1] / ny, fov.size[2] / nz];
  // Full-grid position of output voxel index a along each axis: origin + a * step.
  const origin: Vec3 = [fov.start[0] + step[0] / 2 - 0.5, fov.start[1] + step[1] / 2 - 0.5, fov.start[2] + step[2] / 2 - 0.5];

  const anatomy = drawAnatomy(rng);
  const tumour = drawTumour(rng, profile, anatomy, options.grade);
  const fields = drawFields(rng);

  const count = nx * ny * nz;
  const modalities = {} as Record<Modality, Int16Array>;
  for (const m of MODALITIES) modalities[m] = new Int16Array(count);
  const seg = new Uint8Array(count);
  const gains = MODALITIES.map((m) => profile.gain[m]);
  const gammas = MODALITIES.map((m) => profile.gamma[m]);
  const signals = MODALITIES.map((m) => SIGNAL[m]);
  const outputs = MODALITIES.map((m) => modalities[m]);
  const noiseRng = new Prng(deriveSeed(seed, profile.site, caseIndex, 0x015e));

  const box = brainBox(anatomy, origin, step, dims);
  for (let c = box.lo[2]; c <= box.hi[2]; c++) {
    const z = origin[2] + c * step[2];
    for (let b = box.lo[1]; b <= box.hi[1]; b++) {
      const y = origin[1] + b * step[1];
      let n = box.lo[0] + nx * (b + ny * c);
      for (let a = box.lo[0]; a <= box.hi[0]; a++, n++) {
        const x = origin[0] + a * step[0];
        const tissue = classify(x, y, z, anatomy, tumour, fields);
        if (tissue === Tissue.Background) continue;
        seg[n] = LABEL_OF_TISSUE[tissue];
        const texture = 1 + 0.05 * fields.texture.at(x, y, z);
        const bias = Math.exp(profile.biasAmplitude * fields.bias.at(x, y, z));
        const shade = tissue >= Tissue.Edema ? tumourShade(tissue, x, y, z, tumour, fields) : 1;
        for (let m = 0; m < 4; m++) {
          const signal = signals[m][tissue] * texture * shade * bias + profile.noiseSigma * noiseRng.gaussian();
          // Magnitude images are non-negative; brain voxels keep at least 1 so the skull-strip boundary stays exact.
          const value = Math.round(Math.abs(signal) ** gammas[m] * gains[m] + profile.offset);
          outputs[m][n] = value < 1 ? 1 : value > 32767 ? 32767 : value;
        }
      }
    }
  }

  const planes = Math.round(profile.sliceThickness / step[2]);
  if (planes > 1) for (const m of MODALITIES) thickSlices(modalities[m], dims, planes);

  return {
    dims: [nx, ny, nz],
    spacing: [step[0], step[1], step[2]],
    affine: caseAffine(origin, step),
    modalities,
    seg,
    tumour: { centre: tumour.centre, radius: tumour.radius, edemaRadius: tumour.radius * tumour.edemaFactor },
  };
}

interface Anatomy {
  centre: Vec3;
  radii: Vec3;
  ventricleOffset: number;
}

interface Lobe {
  /** Offset of the lobe's centre from the tumour centre, mm. */
  offset: Vec3;
  /** Lobe radius relative to the main tumour radius. */
  scale: number;
}

interface Tumour {
  centre: Vec3;
  radius: number;
  /** Per-axis stretch of the tumour ellipsoid. */
  stretch: Vec3;
  /** Extra ellipsoids merged with the main one: gliomas are rarely convex. */
  lobes: Lobe[];
  /** Lower-grade glioma: non-enhancing core, no necrosis or enhancing rim. */
  lowGrade: boolean;
  /** Inner edge of the enhancing rim (relative radius); the rim is thinner as this approaches 1. */
  necroticFraction: number;
  edemaFactor: number;
}

interface Fields {
  shape: SmoothNoise;
  gyri: SmoothNoise;
  texture: SmoothNoise;
  bias: SmoothNoise;
  tumour: SmoothNoise;
  edema: SmoothNoise;
}

function drawAnatomy(rng: Prng): Anatomy {
  return {
    centre: [120 + rng.uniform(-3, 3), 122 + rng.uniform(-3, 3), 74 + rng.uniform(-3, 3)],
    radii: [66 + rng.uniform(-3, 3), 84 + rng.uniform(-3, 3), 63 + rng.uniform(-2, 2)],
    ventricleOffset: rng.uniform(6, 8),
  };
}

function drawTumour(rng: Prng, profile: SiteProfile, anatomy: Anatomy, grade?: 'high' | 'low'): Tumour {
  const radius = rng.uniform(profile.tumourRadius[0], profile.tumourRadius[1]);
  const location = rng.pick(profile.locations);
  const place = (axis: number): number => {
    const wanted = anatomy.centre[axis] + (location[axis] + rng.uniform(-0.1, 0.1)) * anatomy.radii[axis];
    // Keep the tumour core inside the preprocessing crop, so training crops contain it.
    const margin = Math.min(radius, 20);
    return Math.min(Math.max(wanted, CROP_LO[axis] + margin), CROP_HI[axis] - margin);
  };
  const centre: Vec3 = [place(0), place(1), place(2)];
  const lobes = Array.from({ length: rng.int(0, 2) }, (): Lobe => {
    // A random direction at 0.6-0.9 radii from the centre, so lobes bulge out of the main body.
    const direction = [rng.gaussian(), rng.gaussian(), rng.gaussian()];
    const norm = Math.hypot(...direction) || 1;
    const reach = rng.uniform(0.6, 0.9) * radius;
    return { offset: direction.map((d) => (d / norm) * reach) as unknown as Vec3, scale: rng.uniform(0.45, 0.7) };
  });
  return {
    centre,
    radius,
    stretch: [rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2)],
    lobes,
    lowGrade: grade ? grade === 'low' : rng.next() < profile.lowGradeFraction,
    necroticFraction: rng.uniform(0.35, 0.8),
    edemaFactor: rng.uniform(profile.edemaFactor[0], profile.edemaFactor[1]),
  };
}

function drawFields(rng: Prng): Fields {
  return {
    shape: new SmoothNoise(rng, BRATS_DIMS, 24),
    gyri: new SmoothNoise(rng, BRATS_DIMS, 5),
    texture: new SmoothNoise(rng, BRATS_DIMS, 8),
    bias: new SmoothNoise(rng, BRATS_DIMS, 70),
    tumour: new SmoothNoise(rng, BRATS_DIMS, 6),
    edema: new SmoothNoise(rng, BRATS_DIMS, 10),
  };
}

/** Tissue at a full-grid position: brain shell, cortex, deep grey, ventricles, then tumour on top. */
function classify(x: number, y: number, z: number, anatomy: Anatomy, tumour: Tumour, fields: Fields): Tissue {
  const dx = (x - anatomy.centre[0]) / anatomy.radii[0];
  const dy = (y - anatomy.centre[1]) / anatomy.radii[1];
  const dz = (z - anatomy.centre[2]) / anatomy.radii[2];
  // Slightly egg-shaped (wider at the back, where j grows) and lumpy.
  const widen = 1 + 0.08 * dy;
  const smooth = Math.sqrt((dx * dx) / (widen * widen) + dy * dy + dz * dz);
  if (smooth >= 1.04) return Tissue.Background; // beyond any shape perturbation: skip the noise lookup
  const rho = smooth + 0.04 * fields.shape.at(x, y, z);
  if (rho >= 1) return Tissue.Background;
  const healthy = healthyTissue(x, y, z, rho, dz, anatomy, fields);

  const t = tumourDistance(x, y, z, tumour);
  if (t < tumour.edemaFactor + 0.8) {
    const d = t + 0.15 * fields.tumour.at(x, y, z);
    if (tumour.lowGrade) {
      if (d < 1) return Tissue.NonEnhancing;
    } else {
      if (d < tumour.necroticFraction) return Tissue.Necrosis;
      if (d < 1) return Tissue.Enhancing;
    }
    // Vasogenic oedema follows white-matter tracts: it reaches furthest in white matter, less into
    // cortex, and never into CSF.
    const reach = healthy === Tissue.White ? tumour.edemaFactor + 0.4 : healthy === Tissue.Grey ? 0.8 * tumour.edemaFactor : 0;
    if (t + 0.45 * fields.edema.at(x, y, z) < reach && rho < 0.97) return Tissue.Edema;
  }
  return healthy;
}

/** Relative distance to the tumour surface (1 = on it): the smallest over the main ellipsoid and its lobes. */
function tumourDistance(x: number, y: number, z: number, tumour: Tumour): number {
  const ellipsoid = (cx: number, cy: number, cz: number, radius: number) => {
    const tx = (x - cx) / (radius * tumour.stretch[0]);
    const ty = (y - cy) / (radius * tumour.stretch[1]);
    const tz = (z - cz) / (radius * tumour.stretch[2]);
    return Math.sqrt(tx * tx + ty * ty + tz * tz);
  };
  const [cx, cy, cz] = tumour.centre;
  let t = ellipsoid(cx, cy, cz, tumour.radius);
  for (const lobe of tumour.lobes) {
    t = Math.min(t, ellipsoid(cx + lobe.offset[0], cy + lobe.offset[1], cz + lobe.offset[2], tumour.radius * lobe.scale));
  }
  return t;
}

function healthyTissue(x: number, y: number, z: number, rho: number, dz: number, anatomy: Anatomy, fields: Fields): Tissue {
  const gyral = fields.gyri.at(x, y, z);
  if (rho > 0.965 + 0.03 * gyral) return Tissue.Csf; // sulcal CSF at the surface
  // Interhemispheric fissure in the upper half.
  if (dz > 0.15 && Math.abs(x - anatomy.centre[0]) < 1.3 && rho > 0.55) return Tissue.Csf;
  if (isVentricle(x, y, z, anatomy, fields)) return Tissue.Csf;
  if (rho > 0.84 + 0.08 * gyral) return Tissue.Grey;
  if (isDeepGrey(x, y, z, anatomy)) return Tissue.Grey;
  return Tissue.White;
}

function isVentricle(x: number, y: number, z: number, anatomy: Anatomy, fields: Fields): boolean {
  const side = x < anatomy.centre[0] ? -1 : 1;
  const vx = (x - (anatomy.centre[0] + side * anatomy.ventricleOffset)) / 5;
  const vy = (y - (anatomy.centre[1] - 2)) / 24;
  const vz = (z - (anatomy.centre[2] + 8)) / 8;
  return vx * vx + vy * vy + vz * vz + 0.25 * fields.shape.at(y, z, x) < 1;
}

function isDeepGrey(x: number, y: number, z: number, anatomy: Anatomy): boolean {
  const gx = (Math.abs(x - anatomy.centre[0]) - 15) / 7;
  const gy = (y - anatomy.centre[1] + 2) / 11;
  const gz = (z - anatomy.centre[2] + 3) / 8;
  return gx * gx + gy * gy + gz * gz < 1;
}

/** Heterogeneous tumour signal: edema fades with distance, the rim is patchy. */
function tumourShade(tissue: Tissue, x: number, y: number, z: number, tumour: Tumour, fields: Fields): number {
  if (tissue === Tissue.Edema) {
    const dx = x - tumour.centre[0];
    const dy = y - tumour.centre[1];
    const dz = z - tumour.centre[2];
    const t = Math.sqrt(dx * dx + dy * dy + dz * dz) / (tumour.radius * tumour.edemaFactor);
    return 1.1 - 0.2 * Math.min(t, 1);
  }
  return 1 + 0.08 * fields.tumour.at(z, x, y);
}

/**
 * Through-plane blur of a thick-slice acquisition: each voxel becomes the mean of `planes` voxels
 * along k centred on it (brain voxels only, so the skull-strip boundary stays exact).
 */
function thickSlices(volume: Int16Array, dims: Vec3, planes: number): void {
  const [nx, ny, nz] = dims;
  const stride = nx * ny;
  const half = Math.floor(planes / 2);
  const column = new Float64Array(nz);
  for (let base = 0; base < stride; base++) {
    for (let k = 0; k < nz; k++) column[k] = volume[base + k * stride];
    for (let k = 0; k < nz; k++) {
      if (column[k] === 0) continue;
      let sum = 0;
      let count = 0;
      for (let q = Math.max(0, k - half); q <= Math.min(nz - 1, k - half + planes - 1); q++) {
        if (column[q] !== 0) {
          sum += column[q];
          count++;
        }
      }
      volume[base + k * stride] = Math.max(1, Math.round(sum / count));
    }
  }
}

/** Inclusive output-index box that contains the brain, so voxels outside it stay 0 untouched. */
function brainBox(anatomy: Anatomy, origin: Vec3, step: Vec3, dims: Vec3): { lo: Vec3; hi: Vec3 } {
  const bound = (axis: number, side: -1 | 1): number => {
    const reach = anatomy.radii[axis] * (axis === 0 ? 1.2 : 1.1);
    const index = (anatomy.centre[axis] + side * reach - origin[axis]) / step[axis];
    return side < 0 ? Math.max(0, Math.floor(index)) : Math.min(dims[axis] - 1, Math.ceil(index));
  };
  return { lo: [bound(0, -1), bound(1, -1), bound(2, -1)], hi: [bound(0, 1), bound(1, 1), bound(2, 1)] };
}

/** BRATS_AFFINE composed with the output-index -> full-grid-index map (scale `step`, shift `origin`). */
function caseAffine(origin: Vec3, step: Vec3): number[][] {
  return BRATS_AFFINE.map((row, r) => {
    if (r === 3) return [0, 0, 0, 1];
    return [row[0] * step[0], row[1] * step[1], row[2] * step[2], row[0] * origin[0] + row[1] * origin[1] + row[2] * origin[2] + row[3]];
  });
}
