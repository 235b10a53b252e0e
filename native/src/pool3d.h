/* 3D max-pooling forward and gradient for NDHWC float32, with TF.js's semantics: padding reads as
 * absent (not zero), and the gradient of each window goes to its LAST maximum in (d, h, w) scan order
 * (TF.js compares with >=), so results are bit-identical to TF.js's cpu kernels. */
#ifndef FEDSEG_POOL3D_H
#define FEDSEG_POOL3D_H

typedef struct {
  int batch, channels;
  int in_d, in_h, in_w;
  int out_d, out_h, out_w;
  int filter[3], stride[3], pad[3]; /* pad = before (front, top, left) */
} pool3d_shape;

int maxpool3d_forward(const pool3d_shape *s, const float *x, float *y);
int maxpool3d_backward(const pool3d_shape *s, const float *x, const float *dy, float *dx);

#endif
