/**
 * NIfTI I/O for FedSeg.
 *
 * Read (NIfTI-1 and NIfTI-2, .nii or .nii.gz detected by content, either endianness):
 *   const img = await readNifti(path);            // NiftiImage
 *   img.header.dims        // [240, 240, 155] (dim[1..dim[0]])
 *   img.header.pixdim      // voxel sizes per axis
 *   img.header.datatype    // { code: 4, name: 'int16', bytesPerVoxel: 2 }
 *   img.header.affine      // 4x4 number[][]: sform if sform_code > 0, else qform if qform_code > 0,
 *                          // else pixdim-based (nibabel's get_best_affine, same numbers)
 *   img.header.scaling     // { slope, inter }, or null when unscaled (slope 0 / NaN, or 1 and 0)
 *   img.data               // raw typed array (Int16Array, Uint8Array, Float32Array, ...), NIfTI
 *                          // order: index = i + nx * (j + ny * (k + nz * c))
 *   img.text               // descrip / aux_file / intent_name / db_name / data_type: may identify a
 *                          // patient; kept apart from `header` so it is never forwarded
 *   toFloat32(img)         // new Float32Array with scl_slope/scl_inter applied
 *   valueStats(img)        // { min, max, mean, nonFinite, count } of scaled values (float64 sums)
 *   await readNiftiHeader(path)  // { header, text, compressed } without reading the voxels
 *   decodeNifti(bytes, name)     // same as readNifti for an in-memory, decompressed file
 * Supported datatypes: uint8, int8, int16, uint16, int32, uint32, int64, uint64, float32, float64.
 * Complex, RGB, binary and float128 are rejected.
 *
 * Write (NIfTI-1, little-endian, .nii or .nii.gz by extension, atomic tmp + rename, no header
 * text and no extensions, sform = affine, qform = same affine as a quaternion when possible):
 *   await writeNifti(path, { dims: [128, 128, 128, 3], affine, datatype: 'float32', data });
 *   datatype: 'uint8' | 'int16' | 'float32'; data in NIfTI order (4th axis = channels, each
 *   channel one contiguous volume); values that do not fit the datatype are an error.
 *
 * Every bad input throws FedSegError naming the file and the reason: missing file, truncated file,
 * truncated or corrupt gzip, not NIfTI (bad magic), wrong sizeof_hdr, unsupported datatype,
 * data length that does not match dims.
 */
export type { Affine } from './affine.js';
export { type NiftiDatatypeName, type NiftiTypedArray } from './datatypes.js';
export type { NiftiHeader, NiftiTextFields } from './header.js';
export { decodeNifti, type NiftiHeaderInfo, type NiftiImage, readNifti, readNiftiHeader } from './read.js';
export { toFloat32, type ValueStats, valueStats } from './values.js';
export { type WritableDatatype, writeNifti, type WriteNiftiOptions } from './write.js';
