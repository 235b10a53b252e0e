/** Dependency-free constants of the API, importable by the renderer without pulling zod into the UI bundle. */
export const MODALITIES = ['flair', 't1ce', 't2', 't1'] as const;
export type Modality = (typeof MODALITIES)[number];
/** Masks the viewer can overlay: ground truth, the model's prediction, the reviewed final mask. */
export const MASK_SOURCES = ['truth', 'prediction', 'final'] as const;
export type MaskSource = (typeof MASK_SOURCES)[number];
export const AXES = ['axial', 'coronal', 'sagittal'] as const;
export type Axis = (typeof AXES)[number];
/** Plausibility warnings a final mask can raise; saving must name each one it accepts. */
export const MASK_WARNING_CODES = ['empty', 'outside-brain', 'too-large'] as const;
