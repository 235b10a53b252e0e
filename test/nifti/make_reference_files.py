"""Writes NIfTI files in every datatype FedSeg reads, gzip or not, little- or big-endian, with and
without scl_slope/scl_inter, NIfTI-1 and NIfTI-2, and prints a JSON manifest of what nibabel reads
back from each (shape, datatype, best affine, min/max/mean of scaled values, sample voxels).
Usage: /usr/bin/python3 make_reference_files.py OUT_DIR"""
import gzip
import json
import os
import sys

import nibabel as nib
import numpy as np

out_dir = sys.argv[1]
rng = np.random.default_rng(7)
shape = (7, 6, 5)

# An oblique, anisotropic sform and a different qform (with qfac -1) to tell the two apart.
theta = 0.3
rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
sform = np.eye(4)
sform[:3, :3] = rot @ np.diag([1.5, 1.0, 2.0])
sform[:3, 3] = [-90.5, 12.25, -40.0]
qform = np.diag([-1.0, -1.0, 1.0, 1.0])
qform[:3, 3] = [120.0, 119.0, -3.0]

DTYPES = {
    'uint8': (np.uint8, 0, 255), 'int8': (np.int8, -128, 127), 'int16': (np.int16, -32768, 32767),
    'uint16': (np.uint16, 0, 65535), 'int32': (np.int32, -2**31, 2**31 - 1), 'uint32': (np.uint32, 0, 2**32 - 1),
    'int64': (np.int64, -2**40, 2**40), 'uint64': (np.uint64, 0, 2**40),
    'float32': (np.float32, None, None), 'float64': (np.float64, None, None),
}


def make_data(name):
    dtype, lo, hi = DTYPES[name]
    if lo is None:
        return (rng.standard_normal(shape) * 300 + 50).astype(dtype)
    return rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64 if name != 'uint64' else np.uint64).astype(dtype)


def write_raw(path, header, data, endian):
    """Writes header and voxels ourselves so scl_slope/scl_inter are exactly what we set."""
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'wb') as f:
        header.write_to(f)
        f.write(b'\0' * (int(header['vox_offset']) - f.tell()))  # write_to already wrote the extension flag
        f.write(data.astype(data.dtype.newbyteorder(endian)).tobytes(order='F'))


manifest = []


def record(path, variant):
    img = nib.load(path)
    values = img.get_fdata(dtype=np.float64)
    samples = [[int(i), int(j), int(k), float(values[i, j, k])] for i, j, k in [(0, 0, 0), (6, 0, 0), (0, 5, 0), (0, 0, 4), (3, 2, 1), (6, 5, 4)]]
    manifest.append({
        'file': os.path.basename(path), 'variant': variant,
        'dims': [int(s) for s in img.shape], 'datatype': str(img.get_data_dtype().newbyteorder('=').name),
        'affine': img.affine.tolist(), 'min': float(values.min()), 'max': float(values.max()),
        'mean': float(values.mean()), 'samples': samples,
        'scaling': None if np.isnan(img.dataobj.slope) else [float(img.dataobj.slope), float(img.dataobj.inter)],
    })


for name in DTYPES:
    for endian, endian_name in (('<', 'le'), ('>', 'be')):
        for scaled in (False, True):
            for ext in ('.nii', '.nii.gz'):
                data = make_data(name)
                hdr = nib.Nifti1Header(endianness=endian)
                hdr.set_data_dtype(data.dtype)
                hdr.set_data_shape(shape)
                hdr.set_zooms((1.5, 1.0, 2.0))
                hdr.set_sform(sform, code=1)
                hdr.set_qform(qform, code=1)
                hdr['vox_offset'] = 352
                hdr['scl_slope'], hdr['scl_inter'] = (2.5, -10.0) if scaled else (np.nan, np.nan)
                path = os.path.join(out_dir, f'{name}_{endian_name}_{"scaled" if scaled else "raw"}{ext}')
                write_raw(path, hdr, data, endian)
                record(path, {'datatype': name, 'endian': endian_name, 'scaled': scaled, 'gzip': ext == '.nii.gz'})

# Affine fallbacks: qform only, then neither form (nibabel's base affine from pixdim).
for form in ('qform', 'none'):
    data = make_data('int16')
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape(shape)
    hdr.set_zooms((1.5, 1.0, 2.0))
    hdr['vox_offset'] = 352
    if form == 'qform':
        hdr.set_qform(qform, code=2)
    hdr.set_sform(None, code=0)
    path = os.path.join(out_dir, f'affine_{form}.nii')
    write_raw(path, hdr, data, '<')
    record(path, {'datatype': 'int16', 'endian': 'le', 'scaled': False, 'gzip': False, 'affine': form})

# NIfTI-2, written by nibabel itself, both endiannesses.
for endian, endian_name in (('<', 'le'), ('>', 'be')):
    data = make_data('float32')
    hdr = nib.Nifti2Header(endianness=endian)
    img = nib.Nifti2Image(data, sform, header=hdr)
    img.set_qform(qform, code=1)
    path = os.path.join(out_dir, f'nifti2_{endian_name}.nii.gz')
    img.to_filename(path)
    record(path, {'datatype': 'float32', 'endian': endian_name, 'scaled': False, 'gzip': True, 'version': 2})

print(json.dumps(manifest))
