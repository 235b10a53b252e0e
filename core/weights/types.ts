/** A named float32 tensor as stored in a model file and sent over the wire (row-major, channel last). */
export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
