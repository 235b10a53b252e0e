/** Voxel counts along the file's i, j, k axes. */
export type Dims3 = readonly [number, number, number];
/** Voxel size in mm along i, j, k (NIfTI pixdim[1..3]). */
export type Spacing3 = readonly [number, number, number];

/** A label map (BraTS values 0/1/2/4) on a voxel grid, NIfTI order: index = i + nx * (j + ny * k). */
export interface LabelVolume {
  data: ArrayLike<number>;
  dims: Dims3;
  spacing: Spacing3;
  /** Where the volume came from, named in errors (usually the file path). */
  source?: string;
}
